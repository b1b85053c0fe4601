"""detect_drift's remaining parts on real PostgreSQL: since_last_apply (the live schema against the schema the last
apply left, from undo's snapshots), the paged MCP answer, the status column with the real drift provider, and the
sandboxed shadow a replayed migration runs in. Checks read the database (or the machine) on their own."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from conftest import create_database, drop_database
from mcp import Client
from test_drift import ENV, deployed, execute, write_prisma

from pgshift.server.app import build_app
from pgshift.tools.databases import Databases, Environment
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.undo.snapshots import snapshot_schema
from pgshift.tools.watch.drift import detect_drift
from pgshift.tools.watch.status import default_providers, gather_status


@pytest.fixture
async def target(pg18: LocalPostgres) -> AsyncIterator[tuple[Databases, str]]:
    url = await create_database(pg18, "drift")
    db = Databases([Environment(name=ENV, url=url)])
    yield db, url
    await db.close()
    await drop_database(pg18, url)


async def test_since_last_apply_is_unchanged_after_a_deploy_and_names_a_column_added_by_hand_after_it(
    pg18: LocalPostgres, target: tuple[Databases, str], tmp_path: Path
) -> None:
    db, url = target
    folder = write_prisma(tmp_path)
    await deployed(db, folder)  # a snapshot before each migration: the newest precedes 20240102000000_posts
    state = tmp_path / "state"

    after_deploy = await detect_drift(db, ENV, str(folder), since=True, shadow=pg18, state_dir=state)
    await execute(url, "ALTER TABLE account ADD COLUMN nickname text")
    cheap = await detect_drift(db, ENV, str(folder), shadow=pg18, state_dir=state)
    compared = await detect_drift(db, ENV, str(folder), since=True, shadow=pg18, state_dir=state)

    since = after_deploy.since_last_apply
    assert since is not None and since.snapshot is not None
    assert since.snapshot.data.precedes == "20240102000000_posts" and "replayed" in since.compared
    assert since.state == "unchanged" and since.matches_snapshot is False  # the snapshot is the schema before posts
    assert since.reference_fingerprint == since.live_fingerprint
    assert cheap.since_last_apply is not None and cheap.since_last_apply.state == "not_compared"
    later = compared.since_last_apply
    assert later is not None and later.state == "changed" and later.differences is not None
    assert [(d.kind, d.name, d.change) for d in later.differences.data] == [
        ("column", "public.account.nickname", "added")
    ]
    conn = await asyncpg.connect(url)  # the target's own record: the fingerprint compared is the snapshot's
    try:
        recorded = await conn.fetchval("SELECT fingerprint FROM pgshift.snapshots ORDER BY id DESC LIMIT 1")
    finally:
        await conn.close()
    assert since.snapshot_fingerprint == recorded


async def test_a_manual_snapshot_is_compared_by_fingerprint_alone_and_reads_changed_after_ddl(
    pg18: LocalPostgres, target: tuple[Databases, str], tmp_path: Path
) -> None:
    db, url = target
    folder = write_prisma(tmp_path)
    await deployed(db, folder)
    await snapshot_schema(db, ENV, label="checkpoint")
    state = tmp_path / "state"

    same = await detect_drift(db, ENV, str(folder), shadow=pg18, state_dir=state)
    await execute(url, "CREATE INDEX account_email_lower ON account (lower(email))")
    changed = await detect_drift(db, ENV, str(folder), shadow=pg18, state_dir=state)

    assert same.since_last_apply is not None and same.since_last_apply.state == "unchanged"
    assert "snapshot_schema" in same.since_last_apply.compared
    assert changed.since_last_apply is not None and changed.since_last_apply.state == "changed"
    assert changed.since_last_apply.matches_snapshot is False and changed.since_last_apply.differences is None


async def pages(client: Client, limit: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    for _ in range(30):
        args = {"environment": ENV, "directory": "prisma/migrations", "limit": limit, "allow_data_loss": True}
        result = await client.call_tool("detect_drift", {**args, **({"cursor": cursor} if cursor else {})})
        assert not result.is_error and result.structured_content is not None, result.content
        out.append(result.structured_content)
        cursor = result.structured_content["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("more than 30 pages")


async def test_detect_drift_over_mcp_pages_every_difference_and_revert_statement_once_with_the_verdict_first(
    pg18: LocalPostgres, target: tuple[Databases, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, url = target
    folder = write_prisma(tmp_path)
    await deployed(db, folder)
    await execute(url, "; ".join(f"CREATE TABLE manual_{i:02} (id int PRIMARY KEY, note text)" for i in range(25)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))
    whole = await detect_drift(db, ENV, "prisma/migrations", allow_data_loss=True, shadow=pg18)
    assert whole.revert is not None

    async with Client(build_app(lambda: [Environment(name=ENV, url=url)]), raise_exceptions=False) as client:
        got = await pages(client, limit=10)
        first = await client.call_tool("detect_drift", {"environment": ENV, "directory": "prisma/migrations"})
        stale = await client.call_tool(
            "detect_drift", {"environment": ENV, "directory": "prisma/migrations", "cursor": "10.0.0.000000000000"}
        )

    assert len(got) >= 3 and all(p["from_fast_path"] for p in got)
    names = [(d["kind"], d["name"], d["change"]) for p in got for d in p["differences"]["data"]]
    assert names == [(d.kind, d.name, d.change) for d in whole.differences.data]
    sql = [s["sql"] for p in got for s in p["revert_statements"]["data"]]
    assert sql == [s.sql for s in whole.revert.data.statements]
    figures = [(p["summary"], p["repair"]["revert"]["hazards"], p["repair"]["adopt"]["statements"]) for p in got]
    assert all(f == figures[0] for f in figures), "every page repeats the verdict and the repairs in figures"
    repair = got[0]["repair"]
    assert repair["revert"]["statements"] == len(sql) and repair["revert"]["destructive_count"] == 25
    assert repair["adopt_file"].endswith("<YYYYMMDDHHMMSS>_<NAME>/migration.sql")
    text = getattr(first.content[0], "text", "")
    assert text.index('"summary"') < text.index('"repair"') < text.index('"differences"')
    assert json.loads(text)["repair"]["revert"]["blocked_by_data_loss"] is True and "revert_script" not in text
    assert stale.is_error and "changed since that cursor" in getattr(stale.content[0], "text", "")


async def test_the_status_drift_column_shows_drift_for_a_manual_change_with_the_real_provider(
    pg18: LocalPostgres, target: tuple[Databases, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, url = target
    folder = write_prisma(tmp_path)
    await deployed(db, folder)
    await execute(url, "ALTER TABLE post ADD COLUMN draft boolean")
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))
    await detect_drift(db, ENV, str(folder), shadow=pg18)  # the full check on the test's server; status reuses it

    status = await gather_status(db, str(folder), providers=default_providers())

    [row] = status.environments
    assert row.drift is not None and row.drift.state == "drift" and row.drift.objects == 1
    assert row.drift.from_fast_path and any(p.startswith("drift") for p in row.problems)


async def test_a_replayed_migration_cannot_run_a_program_on_the_machine(
    pg18: LocalPostgres, target: tuple[Databases, str], tmp_path: Path
) -> None:
    db, _ = target
    folder = write_prisma(tmp_path)
    await deployed(db, folder)
    marker = Path("/tmp") / f"pgshift-drift-escape-{secrets.token_hex(6)}"
    # Edited after apply (the replay runs the file); dynamic SQL, so no parse-tree check of the file sees the COPY.
    (folder / "20240102000000_posts" / "migration.sql").write_text(
        f"DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ' || quote_literal('touch {marker}'); END $$;\n"
    )

    found = await detect_drift(db, ENV, str(folder), shadow=pg18, state_dir=tmp_path / "state")

    assert not marker.exists(), "the shadow ran a program on the machine"
    assert found.state == "unknown" and found.error is not None and "20240102000000_posts" in found.error
