"""deploy and list_migrations on real PostgreSQL, with the corpus chains and odd folder names."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from conftest import corpus_root
from support_apply import history_counts, new_database, prisma_folder, remove_database, run_sql, snapshot, target

from pgshift.tools.apply import apply_migration
from pgshift.tools.approval import ApprovalStore
from pgshift.tools.databases import Databases
from pgshift.tools.deploy import deploy, list_migrations
from pgshift.tools.errors import NotAllowed
from pgshift.tools.judge import judge_equal
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.migrations.folder import read_migrations

SUPABASE_SHAPE = Path(__file__).resolve().parents[1] / "tools" / "sample" / "supabase_shape.sql"
HOPPSCOTCH = corpus_root() / "prisma" / "hoppscotch" / "migrations"
CHATBOT_UI = corpus_root() / "supabase" / "chatbot-ui" / "supabase" / "migrations"
DROP_HISTORY = (
    "DROP SCHEMA pgshift CASCADE; DROP SCHEMA supabase_migrations CASCADE; DROP TABLE public._prisma_migrations;"
)


async def psql_replay(bin_dir: Path, url: str, files: list[str]) -> None:
    """Replay migration files with psql, stopping at the first error (the reference we compare against)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for path in files:
        proc = await asyncio.create_subprocess_exec(
            *(str(bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", path),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, f"psql failed on {path}: {err.decode()}"


@pytest.fixture
async def pg15_pair(pg15: LocalPostgres) -> AsyncIterator[tuple[str, str]]:
    a, b = await new_database(pg15), await new_database(pg15)
    yield a, b
    await remove_database(pg15, a)
    await remove_database(pg15, b)


async def test_deploying_hoppscotch_into_empty_pg15_matches_raw_replay_and_records_everything(
    pg15: LocalPostgres, pg18: LocalPostgres, pg15_pair: tuple[str, str]
) -> None:
    deployed, replayed = pg15_pair
    directory = HOPPSCOTCH
    migrations = read_migrations(directory).migrations
    db = target(deployed)
    try:
        first = await deploy(db, "target", str(directory))
        after_first = await snapshot(deployed)
        second = await deploy(db, "target", str(directory))
        status = await list_migrations(db, str(directory))
    finally:
        await db.close()
    assert first.status == "deployed", first.message
    assert [a.version for a in first.applied] == [m.version for m in migrations]
    assert second.status == "up_to_date"
    assert await snapshot(deployed) == after_first
    assert await history_counts(deployed) == (21, 21, 21)
    assert status.environments[0].in_sync and status.environments[0].applied == 21

    conn = await asyncpg.connect(deployed)
    try:
        recorded = await conn.fetch("SELECT migration_name, checksum FROM _prisma_migrations ORDER BY migration_name")
    finally:
        await conn.close()
    assert [(r[0], r[1]) for r in recorded] == [(m.prisma_name, m.checksum) for m in migrations]

    await psql_replay(pg15.bin_dir, replayed, [m.path for m in migrations if m.path])
    await run_sql(deployed, DROP_HISTORY)
    equal, diff = await judge_equal(deployed, replayed, pg18.bin_dir)
    assert equal, diff


async def test_chatbot_ui_stops_at_the_migration_needing_http_before_any_of_its_statements_runs(fresh_db: str) -> None:
    await run_sql(fresh_db, SUPABASE_SHAPE.read_text())
    before = await snapshot(fresh_db)
    db = target(fresh_db)
    try:
        result = await deploy(db, "target", str(CHATBOT_UI))
    finally:
        await db.close()
    assert result.status == "failed"
    assert result.failed == "20240108234540_setup"
    assert result.applied == []
    assert result.error is not None and "http" in result.error and "Nothing was run" in result.error
    assert len(result.not_run) == 24
    assert await snapshot(fresh_db) == before


ODD = {
    "20240101_init": 'CREATE TABLE "Team" (id serial PRIMARY KEY);\n',
    "20240102 spaced name": 'ALTER TABLE "Team" ADD COLUMN name text;\n',
    "20240103-hyphen-name": 'CREATE INDEX CONCURRENTLY "Team_name_idx" ON "Team" (name);\n',
    "20240104120000_folder.sql": (
        'CREATE TYPE "Role" AS ENUM (\'A\', \'B\');\nALTER TABLE "Team" ADD COLUMN role "Role";\n'
    ),
}


async def test_odd_folder_names_deploy_in_prisma_order_and_record_their_folder_names(db18: str, tmp_path: Path) -> None:
    folder = prisma_folder(tmp_path, ODD)
    db = target(db18)
    try:
        result = await deploy(db, "target", str(folder))
    finally:
        await db.close()
    assert result.status == "deployed", result.message
    assert [a.version for a in result.applied] == ["20240101", "20240102", "20240103", "20240104120000"]
    conn = await asyncpg.connect(db18)
    try:
        names = [r[0] for r in await conn.fetch("SELECT migration_name FROM _prisma_migrations ORDER BY started_at")]
    finally:
        await conn.close()
    assert names == sorted(ODD, key=str.encode)


async def test_deploy_stops_at_the_first_failure_with_it_undone_and_the_earlier_ones_recorded(
    fresh_db: str, tmp_path: Path
) -> None:
    folder = prisma_folder(
        tmp_path,
        {
            "20240101000000_one": "CREATE TABLE one (id int);\n",
            "20240102000000_two": "CREATE TABLE two (id int);\n",
            "20240103000000_bad": "CREATE TABLE three (id int);\nINSERT INTO one VALUES ('x');\n",
            "20240104000000_four": "CREATE TABLE four (id int);\n",
        },
    )
    db = target(fresh_db)
    try:
        result = await deploy(db, "target", str(folder))
    finally:
        await db.close()
    assert result.status == "failed"
    assert [a.version for a in result.applied] == ["20240101000000", "20240102000000"]
    assert result.failed == "20240103000000_bad"
    assert result.not_run == ["20240104000000_four"]
    assert result.error is not None and "22P02" in result.error and "nothing of this migration remains" in result.error
    assert await history_counts(fresh_db) == (2, 2, 2)
    conn = await asyncpg.connect(fresh_db)
    try:
        tables = [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    finally:
        await conn.close()
    assert sorted(tables) == ["_prisma_migrations", "one", "two"]


async def test_list_migrations_shows_each_environment_side_by_side(
    db18: str, pg18: LocalPostgres, tmp_path: Path
) -> None:
    production = await new_database(pg18)
    folder = prisma_folder(
        tmp_path,
        {
            "20240101000000_one": "CREATE TABLE one (id int);\n",
            "20240102000000_two": "CREATE TABLE two (id int);\n",
            "20240103000000_three": "CREATE TABLE three (id int);\n",
        },
    )
    db = Databases.from_urls({"local": db18, "production": production})
    try:
        await deploy(db, "local", str(folder))
        await apply_migration(db, "production", "one", migration=str(folder / "20240101000000_one"))
        await apply_migration(db, "production", "two", migration=str(folder / "20240102000000_two"))
        await apply_migration(db, "production", "hotfix", sql="CREATE TABLE hotfix (id int);", version="20240105000000")
        (folder / "20240102000000_two" / "migration.sql").write_text("CREATE TABLE two (id bigint);\n")
        status = await list_migrations(db, str(folder))
    finally:
        await db.close()
        await remove_database(pg18, production)
    states = {(row.version, row.local): row.states for row in status.migrations.data}
    assert states[("20240101000000", True)] == {"local": "applied", "production": "applied"}
    assert states[("20240102000000", True)] == {"local": "edited", "production": "edited"}
    assert states[("20240103000000", True)] == {"local": "applied", "production": "pending"}
    assert states[("20240105000000", False)] == {"production": "missing_locally"}
    summary = {s.environment: s for s in status.environments}
    assert (summary["local"].applied, summary["local"].edited, summary["local"].in_sync) == (2, 1, False)
    assert (summary["production"].pending, summary["production"].missing_locally) == (1, 1)


async def test_list_migrations_reports_an_unreachable_environment_without_failing(db18: str, tmp_path: Path) -> None:
    folder = prisma_folder(tmp_path, {"20240101000000_one": "CREATE TABLE one (id int);\n"})
    dead = db18.rsplit("/", 1)[0] + "/no_such_database_here"
    db = Databases.from_urls({"local": db18, "production": dead})
    try:
        status = await list_migrations(db, str(folder))
    finally:
        await db.close()
    summary = {s.environment: s for s in status.environments}
    assert summary["local"].reachable and summary["local"].pending == 1
    assert not summary["production"].reachable and "does not exist" in (summary["production"].error or "")


async def test_deploy_refuses_while_the_history_records_a_failed_migration(db18: str, tmp_path: Path) -> None:
    folder = prisma_folder(
        tmp_path,
        {
            "20240101000000_cic": "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY t_idx ON t (id);\n"
            "SELECT 1 / 0;\n",
            "20240102000000_next": "CREATE TABLE n (id int);\n",
        },
    )
    db = target(db18)
    try:
        first = await deploy(db, "target", str(folder))
        before = await snapshot(db18)
        with pytest.raises(NotAllowed, match="failed migration"):
            await deploy(db, "target", str(folder))
        status = await list_migrations(db, str(folder))
    finally:
        await db.close()
    assert first.status == "failed" and first.error is not None and "Statements 1, 2 of 3 ran" in first.error
    assert await snapshot(db18) == before
    assert status.migrations.data[0].states == {"target": "failed"}


async def test_a_protected_environment_deploys_only_once_a_person_approved(db18: str, tmp_path: Path) -> None:
    folder = prisma_folder(tmp_path, {"20240101000000_one": "CREATE TABLE one (id int);\n"})
    db = target(db18, protected=True)
    approvals = ApprovalStore(tmp_path / "state")
    before = await snapshot(db18)
    try:
        plan = await deploy(db, "target", str(folder), approvals=approvals)
        assert plan.status == "confirmation_required" and plan.pending == ["20240101000000_one"]
        assert plan.approval_id is not None
        assert await snapshot(db18) == before
        for bogus in ["1.bogus", "0123456789abcdef", plan.approval_id]:  # forged, unknown, not approved yet
            with pytest.raises(NotAllowed):
                await deploy(db, "target", str(folder), bogus, approvals=approvals)
        assert await snapshot(db18) == before
        approvals.approve(plan.approval_id)
        done = await deploy(db, "target", str(folder), plan.approval_id, approvals=approvals)
    finally:
        await db.close()
    assert done.status == "deployed"
    assert await history_counts(db18) == (1, 1, 1)


async def test_a_supabase_folder_is_recorded_under_its_own_versions_like_the_supabase_cli(
    db18: str, tmp_path: Path
) -> None:
    folder = tmp_path / "supabase" / "migrations"
    folder.mkdir(parents=True)
    (folder / "20240108234540_setup.sql").write_text("create table notes (id bigint primary key);\n")
    (folder / "20240108234541_add_title.sql").write_text("alter table notes add column title text;\n")
    db = target(db18)
    try:
        result = await deploy(db, "target", str(tmp_path))
        status = await list_migrations(db, str(tmp_path))
    finally:
        await db.close()
    assert result.status == "deployed"
    conn = await asyncpg.connect(db18)
    try:
        rows = await conn.fetch(
            "SELECT version, name, statements FROM supabase_migrations.schema_migrations ORDER BY 1"
        )
        assert await conn.fetchval("SELECT to_regclass('public._prisma_migrations')") is None
    finally:
        await conn.close()
    assert [(r[0], r[1]) for r in rows] == [("20240108234540", "setup"), ("20240108234541", "add_title")]
    # as written (what `supabase migration fetch` writes back); our ledger keeps what ran
    assert [r[2] for r in rows] == [
        ["create table notes (id bigint primary key)"],
        ["alter table notes add column title text"],
    ]
    assert result.applied[0].statements[0].original == "create table notes (id bigint primary key)"
    assert status.environments[0].in_sync


async def test_status_and_deploy_render_as_text_for_the_cli(db18: str, tmp_path: Path) -> None:
    from pgshift.tools.deploy import render_deploy, render_status

    folder = prisma_folder(tmp_path, {"20240101000000_one": "CREATE TABLE one (id int);\n"})
    db = target(db18)
    try:
        result = await deploy(db, "target", str(folder))
        status = await list_migrations(db, str(folder))
    finally:
        await db.close()
    assert "applied 20240101000000 one" in render_deploy(result)
    text = render_status(status)
    assert ["20240101000000", "one", "applied"] in [line.split() for line in text.splitlines()]
    assert "target: in sync" in text


async def test_a_failed_migration_fixed_and_reapplied_settles_every_history(db18: str, tmp_path: Path) -> None:
    cic = "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY t_idx ON t (id);\n"
    folder = prisma_folder(
        tmp_path, {"20240101000000_cic": cic + "SELECT 1 / 0;\n", "20240102000000_next": "CREATE TABLE n (id int);\n"}
    )
    db = target(db18)
    try:
        failed = await deploy(db, "target", str(folder))
        # A script holding CREATE INDEX CONCURRENTLY cannot be proven in a transaction, so pgshift adds no guards
        # to it (tools.migrations.check.prove_rewrite): the author's fix makes the re-run safe itself.
        rerunnable = (
            "CREATE TABLE IF NOT EXISTS t (id int);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_idx ON t (id);\n"
        )
        (folder / "20240101000000_cic" / "migration.sql").write_text(rerunnable + "SELECT 1;\n")
        fixed = await apply_migration(db, "target", "cic", migration=str(folder / "20240101000000_cic"))
        rest = await deploy(db, "target", str(folder))
        status = await list_migrations(db, str(folder))
    finally:
        await db.close()
    assert failed.status == "failed" and fixed.status == "applied" and rest.status == "deployed"
    assert status.environments[0].in_sync
    conn = await asyncpg.connect(db18)
    try:
        rows = await conn.fetch(
            "SELECT finished_at IS NOT NULL, rolled_back_at IS NOT NULL FROM _prisma_migrations "
            "WHERE migration_name = '20240101000000_cic' ORDER BY started_at"
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [(False, True), (True, False)]


async def test_a_database_migrated_by_prisma_alone_reads_as_applied_and_deploy_skips_it(
    db18: str, tmp_path: Path
) -> None:
    from pgshift.tools.ledger import create_prisma_sql
    from pgshift.tools.migrations.folder import checksum

    one = "CREATE TABLE one (id int);\n"
    folder = prisma_folder(tmp_path, {"20240101000000_one": one, "20240102000000_two": "CREATE TABLE two (id int);\n"})
    # What `prisma migrate deploy` leaves: the table, and its own history only (plus one folder we do not have).
    await run_sql(db18, one + create_prisma_sql())
    conn = await asyncpg.connect(db18)
    try:
        for name, digest in [("20240101000000_one", checksum(one)), ("20231201000000_gone", "0" * 64)]:
            await conn.execute(
                "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count) "
                "VALUES (gen_random_uuid()::text, $1, now(), $2, 1)",
                digest,
                name,
            )
    finally:
        await conn.close()
    db = target(db18)
    try:
        before = await list_migrations(db, str(folder))
        result = await deploy(db, "target", str(folder))
    finally:
        await db.close()
    states = {(m.version, m.name): m.states["target"] for m in before.migrations.data}
    assert states == {
        ("20240101000000", "one"): "applied",
        ("20240102000000", "two"): "pending",
        ("20231201000000", "gone"): "missing_locally",
    }
    assert [a.version for a in result.applied] == ["20240102000000"]


async def test_on_a_supabase_database_extensions_are_created_in_the_extensions_schema(
    db18: str, tmp_path: Path
) -> None:
    await run_sql(db18, SUPABASE_SHAPE.read_text())
    folder = prisma_folder(tmp_path, {"20240226053141_search": "CREATE EXTENSION IF NOT EXISTS pg_trgm;\n"})
    db = target(db18)
    try:
        result = await deploy(db, "target", str(folder))
    finally:
        await db.close()
    assert result.status == "deployed", result.message
    (statement,) = result.applied[0].statements
    assert statement.original == "CREATE EXTENSION IF NOT EXISTS pg_trgm" and statement.rewrites
    conn = await asyncpg.connect(db18)
    try:
        schema = await conn.fetchval(
            "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'"
        )
    finally:
        await conn.close()
    assert schema == "extensions"
