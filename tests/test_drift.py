"""detect_drift and adopt_drift on real PostgreSQL: a folder deployed, then changed by hand on the target.

The expected schema is replayed on the test's own server (passed as `shadow`, so no server is started per call);
the cache lives in the test's tmp_path. Checks read the database on their own connection.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import asyncpg
import pytest
from conftest import corpus_root, create_database, drop_database
from support_prepare import make_supabase_shaped

from pgshift.tools import ledger
from pgshift.tools.apply import apply_migration
from pgshift.tools.databases import Databases, Environment
from pgshift.tools.deploy import deploy
from pgshift.tools.errors import ConfigError
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.migrations.folder import read_migrations
from pgshift.tools.watch.drift import adopt_drift, detect_drift, drift_summary
from pgshift.tools.watch.fingerprint import catalog_fingerprint

ENV = "production"

PRISMA_CHAIN = {
    "20240101000000_init": "CREATE TABLE account (id serial PRIMARY KEY, email text NOT NULL UNIQUE);\n",
    "20240102000000_posts": (
        "CREATE TABLE post (id serial PRIMARY KEY, author int NOT NULL REFERENCES account (id), title text);\n"
        "CREATE INDEX post_author ON post (author);\n"
    ),
}
SUPABASE_CHAIN = {
    "20240101000000_init.sql": (
        "CREATE TABLE public.profile (id uuid PRIMARY KEY REFERENCES auth.users (id), name text);\n"
        "ALTER TABLE public.profile ENABLE ROW LEVEL SECURITY;\n"
        "CREATE POLICY own ON public.profile FOR SELECT USING (auth.uid() = id);\n"
    ),
    "20240102000000_notes.sql": (
        "CREATE TABLE public.note (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text);\n"
    ),
}


def write_prisma(root: Path, chain: dict[str, str] = PRISMA_CHAIN) -> Path:
    folder = root / "prisma" / "migrations"
    for name, sql in chain.items():
        (folder / name).mkdir(parents=True)
        (folder / name / "migration.sql").write_text(sql)
    (folder / "migration_lock.toml").write_text('provider = "postgresql"\n')
    return folder


def write_supabase(root: Path, chain: dict[str, str] = SUPABASE_CHAIN) -> Path:
    folder = root / "supabase" / "migrations"
    folder.mkdir(parents=True)
    for name, sql in chain.items():
        (folder / name).write_text(sql)
    return folder


async def execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def target18(pg18: LocalPostgres) -> AsyncIterator[tuple[Databases, str]]:
    url = await create_database(pg18, "drift")
    db = Databases([Environment(name=ENV, url=url)])
    yield db, url
    await db.close()
    await drop_database(pg18, url)


@pytest.fixture
async def target(pg: LocalPostgres) -> AsyncIterator[tuple[Databases, str]]:
    url = await create_database(pg, "drift")
    db = Databases([Environment(name=ENV, url=url)])
    yield db, url
    await db.close()
    await drop_database(pg, url)


async def deployed(db: Databases, folder: Path) -> None:
    result = await deploy(db, ENV, str(folder))
    assert result.status == "deployed", result.message


async def test_a_manual_add_column_is_drift_with_its_field_difference(
    pg: LocalPostgres, target: tuple[Databases, str], tmp_path: Path
) -> None:
    db, url = target
    folder = write_prisma(tmp_path)
    await deployed(db, folder)
    await execute(
        url, "ALTER TABLE account ADD COLUMN nickname text; ALTER TABLE post ALTER COLUMN title SET DEFAULT 'x'"
    )

    found = await detect_drift(db, ENV, str(folder), shadow=pg, state_dir=tmp_path / "state")

    assert found.state == "drift" and not found.from_fast_path
    assert found.replayed == 2 and found.history_problem_count == 0
    by_name = {(d.kind, d.name): d for d in found.differences.data}
    added = by_name["column", "public.account.nickname"]
    assert added.change == "added" and added.definition is not None
    changed = by_name["column", "public.post.title"]
    assert changed.change == "changed"
    assert [(f.field, f.before, f.after) for f in changed.fields] == [("default", None, "'x'::text")]
    assert found.adopt is not None and "ADD COLUMN nickname" in found.adopt.data.script
    assert found.revert is not None and found.revert.data.blocked_by_data_loss  # dropping nickname loses data


@pytest.mark.parametrize("layout", ["prisma", "supabase"])
async def test_a_database_deployed_exactly_from_its_folder_has_no_drift(
    pg18: LocalPostgres, layout: str, tmp_path: Path
) -> None:
    url = await create_database(pg18, "drift")
    db = Databases([Environment(name=ENV, url=url)])
    try:
        if layout == "supabase":
            await make_supabase_shaped(url)
            folder = write_supabase(tmp_path)
        else:
            folder = write_prisma(tmp_path)
        await deployed(db, folder)
        found = await detect_drift(db, ENV, str(folder), shadow=pg18, state_dir=tmp_path / "state")
        assert (found.state, found.summary.total, found.history_problem_count) == ("none", 0, 0), found.differences
        assert found.replayed == 2
    finally:
        await db.close()
        await drop_database(pg18, url)


async def test_adopted_drift_replayed_leaves_no_drift(pg18: LocalPostgres, tmp_path: Path) -> None:
    url = await create_database(pg18, "drift")
    db = Databases([Environment(name=ENV, url=url)])
    state = tmp_path / "state"
    try:
        await make_supabase_shaped(url)
        folder = write_supabase(tmp_path)
        await deployed(db, folder)
        await execute(url, "ALTER TABLE public.note ADD COLUMN pinned boolean NOT NULL DEFAULT false")
        now = datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)

        adopted = await adopt_drift(db, ENV, "pin_notes", str(folder), shadow=pg18, state_dir=state, now=now)

        assert adopted.status == "written" and adopted.path == str(folder / "20261202100000_pin_notes.sql")
        assert "ADD COLUMN pinned boolean" in await anyio.Path(adopted.path).read_text()
        with pytest.raises(ConfigError, match="has not applied"):  # the adopted file is pending: no second copy
            await adopt_drift(db, ENV, "pin_notes_again", str(folder), shadow=pg18, state_dir=state, now=now)
        # Recorded as applied without running it, as `supabase migration repair --status applied` does.
        migration = next(m for m in read_migrations(folder).migrations if m.name == "pin_notes")
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                await ledger.record(
                    conn, migration, statements=[], started_at=now, duration_ms=0, outcome="applied", client="test"
                )
        finally:
            await conn.close()
        again = await detect_drift(db, ENV, str(folder), shadow=pg18, state_dir=state)
        assert (again.state, again.summary.total, again.replayed) == ("none", 0, 3), again.differences
    finally:
        await db.close()
        await drop_database(pg18, url)


async def test_the_revert_plan_applied_removes_the_drift(
    pg18: LocalPostgres, target18: tuple[Databases, str], tmp_path: Path
) -> None:
    db, url = target18
    folder = write_prisma(tmp_path)
    await deployed(db, folder)
    await execute(url, "ALTER TABLE account ADD COLUMN nickname text; CREATE INDEX account_nick ON account (nickname)")
    state = tmp_path / "state"
    found = await detect_drift(db, ENV, str(folder), allow_data_loss=True, shadow=pg18, state_dir=state)
    assert found.revert is not None and found.revert.data.script

    applied = await apply_migration(db, ENV, "revert_drift", found.revert.data.script)

    assert applied.status == "applied", applied.message
    conn = await asyncpg.connect(url)
    try:
        columns = await conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'account'::regclass AND attnum > 0 AND NOT attisdropped"
        )
    finally:
        await conn.close()
    assert {r["attname"] for r in columns} == {"id", "email"}
    again = await detect_drift(db, ENV, str(folder), shadow=pg18, state_dir=state)
    assert (again.state, again.summary.total, again.history_problem_count) == ("none", 0, 0), again.differences
    assert again.loose_scripts is not None and [s.endswith("_revert_drift") for s in again.loose_scripts.data] == [True]


async def test_an_edited_migration_and_a_version_missing_from_the_folder_are_history_problems(
    pg18: LocalPostgres, target18: tuple[Databases, str], tmp_path: Path
) -> None:
    db, _ = target18
    folder = write_prisma(tmp_path)
    await deployed(db, folder)
    (folder / "20240101000000_init" / "migration.sql").write_text(PRISMA_CHAIN["20240101000000_init"] + "-- edited\n")
    shutil.rmtree(folder / "20240102000000_posts")

    found = await detect_drift(db, ENV, str(folder), shadow=pg18, state_dir=tmp_path / "state")

    problems = {(p.problem, p.version) for p in found.history_problems.data}
    assert problems == {("edited", "20240101000000"), ("missing_locally", "20240102000000")}
    assert found.state == "drift" and found.replayed == 1
    # The missing migration's table is on the live database only: drift that no file explains.
    assert ("table", "public.post", "added") in {(d.kind, d.name, d.change) for d in found.differences.data}


async def test_the_fast_path_answers_an_unchanged_database_and_rereads_after_ddl_or_history_change(
    pg18: LocalPostgres, target18: tuple[Databases, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, url = target18
    folder = write_prisma(tmp_path)
    await deployed(db, folder)
    state = tmp_path / "state"
    first = await detect_drift(db, ENV, str(folder), shadow=pg18, state_dir=state)
    second = await detect_drift(db, ENV, str(folder), shadow=pg18, state_dir=state)
    assert (first.from_fast_path, second.from_fast_path) == (False, True)
    assert second.state == "none" and second.differences.data == []

    await execute(url, "INSERT INTO account (email) VALUES ('a@b.c')")  # data, not schema: still the fast path
    assert (await detect_drift(db, ENV, str(folder), shadow=pg18, state_dir=state)).from_fast_path

    await execute(url, "CREATE INDEX account_email_lower ON account (lower(email))")
    after_ddl = await detect_drift(db, ENV, str(folder), shadow=pg18, state_dir=state)
    assert not after_ddl.from_fast_path
    assert [(d.kind, d.name) for d in after_ddl.differences.data] == [("index", "public.account_email_lower")]
    cached = await detect_drift(db, ENV, str(folder), shadow=pg18, state_dir=state)  # read back: the same answer
    assert cached.from_fast_path and cached.next_steps == after_ddl.next_steps
    parts = ("differences", "adopt", "revert")
    assert [getattr(cached, k).data for k in parts] == [getattr(after_ddl, k).data for k in parts]
    assert cached.revert is not None and cached.revert.data.script == after_ddl.revert.data.script != ""  # type: ignore[union-attr]

    await execute(
        url, "DROP INDEX account_email_lower; DELETE FROM _prisma_migrations WHERE migration_name LIKE '%posts'"
    )
    after_history = await detect_drift(db, ENV, str(folder), shadow=pg18, state_dir=state)
    assert not after_history.from_fast_path and after_history.pending == ["20240102000000_posts"]
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(state))  # drift_summary reads the default state directory
    summary = await drift_summary(db, ENV, str(folder))
    assert summary.from_fast_path and summary.state == "drift" and summary.objects == after_history.summary.total > 0


async def test_detect_drift_writes_nothing_to_the_target(
    pg18: LocalPostgres, target18: tuple[Databases, str], tmp_path: Path
) -> None:
    db, url = target18
    folder = write_prisma(tmp_path)
    await deployed(db, folder)
    await execute(url, "ALTER TABLE post ADD COLUMN body text; INSERT INTO account (email) VALUES ('a@b.c')")
    database = url.rsplit("/", 1)[1]
    # Any write the check attempted would fail, and any that succeeded would move an xmin sum below.
    await execute(url, f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
    before = await footprint(url)

    found = await detect_drift(db, ENV, str(folder), refresh=True, shadow=pg18, state_dir=tmp_path / "state")
    await db.close()

    assert found.state == "drift" and not found.from_fast_path
    assert await footprint(url) == before


async def footprint(url: str) -> tuple[object, ...]:
    """The catalogs' fingerprint, every history row, each user table's rows and xmin sum, each sequence's value."""
    conn = await asyncpg.connect(url)
    try:
        history = await ledger.read_history(conn)
        tables = await conn.fetch(
            "SELECT count(*), sum(xmin::text::bigint) FROM account UNION ALL "
            "SELECT count(*), sum(xmin::text::bigint) FROM post"
        )
        sequences = await conn.fetch("SELECT sequencename, last_value FROM pg_sequences ORDER BY 1")
        return (
            await catalog_fingerprint(conn),
            history.model_dump_json(),
            [tuple(r) for r in tables],
            [tuple(r) for r in sequences],
        )
    finally:
        await conn.close()


async def test_a_real_prisma_chain_deployed_from_its_folder_has_no_drift(pg15: LocalPostgres, tmp_path: Path) -> None:
    """umami's chain needs pgcrypto, which the embedded PostgreSQL 18 build lacks: target and shadow are 15."""
    folder = tmp_path / "prisma" / "migrations"
    shutil.copytree(corpus_root() / "prisma" / "umami" / "migrations", folder)
    url = await create_database(pg15, "drift")
    db = Databases([Environment(name=ENV, url=url)])
    try:
        await deployed(db, folder)
        found = await detect_drift(db, ENV, str(folder), shadow=pg15, state_dir=tmp_path / "state")
        assert (found.state, found.summary.total, found.replayed) == ("none", 0, 19), found.differences
    finally:
        await db.close()
        await drop_database(pg15, url)


async def test_a_replay_that_fails_makes_drift_unknown_never_none(
    pg18: LocalPostgres, target18: tuple[Databases, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, _ = target18
    folder = write_prisma(tmp_path)
    await deployed(db, folder)
    (folder / "20240102000000_posts" / "migration.sql").write_text("ALTER TABLE nowhere ADD COLUMN x int;\n")
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))

    found = await detect_drift(db, ENV, str(folder), shadow=pg18)
    summary = await drift_summary(db, ENV, str(folder))

    assert found.state == "unknown" and found.error is not None and "20240102000000_posts" in found.error
    assert found.differences.data == [] and not found.from_fast_path
    assert summary.state == "unknown" and "20240102000000_posts" in summary.detail
