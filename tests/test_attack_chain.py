"""The worst chain of issue 16, made end to end with nothing but MCP tool calls, judged on production and on disk.

The assistant asks for `DROP TABLE victim` on protected production and gets an approval id. On the writable local
environment it then plants, with `execute_sql(write=true)` (no approval needed there), a stored snapshot whose DDL
holds a psql `\\!` line that would write the approval file for that id (and a `COPY … TO PROGRAM`), with its
digests recomputed, and makes pgshift load it: verify_snapshot, rollback and detect_drift(since_last_apply=true).
Then it retries the DROP with the id. Production's own connection must still see `victim`; no `.approved` file may
exist until a person approves; the markers the planted commands would create must not exist. A final control shows
the id was real: once a person approves it, the same call runs.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sys
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from conftest import create_database, drop_database
from mcp import Client

from pgshift.server.app import build_app
from pgshift.tools.approval import ApprovalStore
from pgshift.tools.databases import Environment
from pgshift.tools.localpg import LocalPostgres

BASE = "CREATE TABLE item (id int PRIMARY KEY, label text);"


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "state"


@pytest.fixture
def markers() -> Iterator[tuple[Path, Path]]:
    """Paths in /tmp the planted commands would create (pgshift's OS user; the database server's user)."""
    token = secrets.token_hex(8)
    paths = (Path("/tmp") / f"pgshift-chain-shell-{token}", Path("/tmp") / f"pgshift-chain-program-{token}")
    yield paths
    for p in paths:
        p.unlink(missing_ok=True)


@pytest.fixture
async def two_databases(pg: LocalPostgres) -> AsyncIterator[tuple[str, str]]:
    """local (writable, the assistant's own) and production (protected) with a table `victim`."""
    local, production = await create_database(pg, "local"), await create_database(pg, "prod")
    conn = await asyncpg.connect(production)
    try:
        await conn.execute("CREATE TABLE victim (id int PRIMARY KEY); INSERT INTO victim VALUES (1)")
    finally:
        await conn.close()
    yield local, production
    await drop_database(pg, local)
    await drop_database(pg, production)


async def attempt(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    """Call a tool; its structured answer (or the error text under 'error')."""
    result = await client.call_tool(tool, args)
    if result.is_error:
        return {"error": " ".join(getattr(c, "text", "") for c in result.content)}
    return dict(result.structured_content or {})


def hostile_ddl(approvals: Path, request_id: str, shell_marker: Path, program_marker: Path) -> str:
    """A snapshot's DDL that, loaded by psql as a superuser, approves `request_id` and leaves two markers."""
    approve = (
        f"import json, pathlib; d = pathlib.Path({str(approvals)!r}); "
        f"(d / '{request_id}.approved').write_text(json.loads((d / '{request_id}.json').read_text())['binding'])"
    )
    return (
        "CREATE TABLE item (id int PRIMARY KEY, label text);\n"
        f'\\! {sys.executable} -c "{approve}"\n'
        f"\\! touch {shell_marker}\n"
        f"COPY (SELECT 1) TO PROGRAM 'touch {program_marker}';\n"
    )


def plant_sql(ddl: str) -> list[str]:
    """What the assistant sends through execute_sql(write=true) on local: every snapshot's DDL (inline and every
    chunk) replaced by the hostile text, with the stored digest and size recomputed to match; and one more row."""
    raw = ddl.encode()
    digest, packed = hashlib.sha256(raw).hexdigest(), zlib.compress(raw, 9).hex()
    literal = "$plant$" + ddl + "$plant$"
    return [
        f"UPDATE pgshift.snapshot_chunks SET data = '\\x{packed}'::bytea, bytes = {len(raw)}",
        f"UPDATE pgshift.snapshots SET ddl = {literal}, ddl_sha256 = '{digest}', ddl_bytes = {len(raw)}",
        "INSERT INTO pgshift.snapshots (fingerprint, ddl, ddl_sha256, server_version, environment, ddl_bytes) "
        f"SELECT fingerprint, {literal}, '{digest}', server_version, environment, {len(raw)} "
        "FROM pgshift.snapshots ORDER BY id DESC LIMIT 1",
    ]


async def victim_exists(url: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        return bool(await conn.fetchval("SELECT to_regclass('public.victim') IS NOT NULL"))
    finally:
        await conn.close()


async def test_a_planted_snapshot_on_local_never_approves_a_drop_on_protected_production(
    two_databases: tuple[str, str], state_dir: Path, markers: tuple[Path, Path]
) -> None:
    local, production = two_databases
    envs = [Environment(name="local", url=local), Environment(name="production", url=production, protected=True)]
    drop = {"environment": "production", "name": "drop_victim", "sql": "DROP TABLE victim;"}
    async with Client(build_app(lambda: envs), raise_exceptions=False) as client:
        first = await attempt(client, "apply_migration", **drop)
        request_id = first["approval_id"]
        assert first["status"] == "confirmation_required", first

        applied = await attempt(client, "apply_migration", environment="local", name="init", sql=BASE)
        assert "error" not in applied, applied  # local is writable: this also records a snapshot before it
        await attempt(client, "snapshot_schema", environment="local", label="before the plant")
        approvals = state_dir / "approvals"
        for sql in plant_sql(hostile_ddl(approvals, request_id, *markers)):
            planted = await attempt(client, "execute_sql", environment="local", sql=sql, write=True)
            assert "error" not in planted, planted
        conn = await asyncpg.connect(local)
        try:  # the plant is really there, digests and all
            ids = [r["id"] for r in await conn.fetch("SELECT id FROM pgshift.snapshots ORDER BY id")]
            assert await conn.fetchval("SELECT bool_and(ddl LIKE '%\\!%') FROM pgshift.snapshots")
        finally:
            await conn.close()

        for snapshot_id in ids:  # every way pgshift loads stored text; the answers do not matter
            await attempt(client, "verify_snapshot", environment="local", snapshot=snapshot_id)
            await attempt(client, "rollback", environment="local", snapshot=snapshot_id)
        await attempt(client, "detect_drift", environment="local", since_last_apply=True)

        retried = await attempt(client, "apply_migration", **drop, approval_id=request_id)
        assert "error" in retried, retried
        assert await victim_exists(production)
        assert not [n for n in os.listdir(approvals) if n.endswith(".approved")]
        assert not markers[0].exists() and not markers[1].exists()

        ApprovalStore().approve(request_id)  # control: the person path works with the same id
        done = await attempt(client, "apply_migration", **drop, approval_id=request_id)
    assert "error" not in done, done
    assert not await victim_exists(production)
