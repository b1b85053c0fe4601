"""Every write outcome, then every read: after each way a write can end (applied; failed halfway; rolled back; kept
data discarded; drift adopted; an approval pending, declined or expired), `pgshift status`, get_status,
list_migrations, list_snapshots, detect_drift and the dashboard (its page and /status.json) all answer without an
internal error, and say the state in words.

Each case gets its own two databases on the session's PostgreSQL 18 (`local`, written directly; `production`,
protected, written only through an approval) and a Prisma project as the current folder."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from conftest import create_database, drop_database
from mcp import Client, types
from support_apply import prisma_folder

from pgshift.server.app import build_app
from pgshift.server.cli import main
from pgshift.server.dashboard import dashboard_app
from pgshift.tools.approval import ApprovalStore
from pgshift.tools.databases import Databases, Environment
from pgshift.tools.deploy import deploy
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.undo.rollback import rollback
from pgshift.tools.undo.snapshots import discard_kept_data

ONE = "20240101000000_one"
TWO = "20240102000000_two"
MIGRATIONS = {
    ONE: "CREATE TABLE one (id int PRIMARY KEY, note text);\nINSERT INTO one VALUES (1, 'a'), (2, 'b');\n",
    TWO: "DROP TABLE one;\n",  # kept for undo: its rows are saved before the drop
}
# Not transactional (CREATE INDEX CONCURRENTLY runs on its own): the first statements stay, the history says failed.
BOOM = (
    "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY t_idx ON t (id);\n"
    "DO $$ BEGIN RAISE EXCEPTION 'boom'; END $$;\n"
)


@dataclass(frozen=True)
class World:
    local: str
    production: str
    project: Path
    folder: Path
    server: LocalPostgres

    def environments(self) -> list[Environment]:
        return [
            Environment(name="local", url=self.local),
            Environment(name="production", url=self.production, protected=True),
        ]


@pytest.fixture
async def world(pg18: LocalPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    local, production = await create_database(pg18, "state"), await create_database(pg18, "state")
    project = tmp_path / "project"
    folder = prisma_folder(project, MIGRATIONS)
    (project / "pgshift.toml").write_text(
        f"[environments.local]\nurl = '{local}'\n\n[environments.production]\nurl = '{production}'\nprotected = true\n"
    )
    monkeypatch.chdir(project)
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))
    yield World(local, production, project, folder, pg18)
    await drop_database(pg18, local)
    await drop_database(pg18, production)


def engines(world: World) -> Databases:
    return Databases([Environment(name="local", url=world.local), Environment(name="production", url=world.production)])


async def run_sql(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def client(world: World, **kwargs: Any) -> Client:
    return Client(build_app(world.environments), raise_exceptions=False, **kwargs)


# The writes: each leaves the world in one state, and returns the words a read must use for it.


async def applied(world: World) -> str:
    db = engines(world)
    try:
        assert (await deploy(db, "local", str(world.folder))).status == "deployed"
    finally:
        await db.close()
    return "applied"


async def failed_halfway(world: World) -> str:
    (world.folder / "20240103000000_boom").mkdir()
    (world.folder / "20240103000000_boom" / "migration.sql").write_text(BOOM)
    db = engines(world)
    try:
        assert (await deploy(db, "local", str(world.folder))).status == "failed"
    finally:
        await db.close()
    return "failed"


async def rolled_back(world: World) -> str:
    db = engines(world)
    try:
        await deploy(db, "local", str(world.folder))
        result = await rollback(db, "local", migration=TWO.split("_")[0], shadow=world.server)
        assert result.status == "rolled_back", result
    finally:
        await db.close()
    return "rolled back"


async def kept_data_discarded(world: World) -> str:
    db = engines(world)
    try:
        await deploy(db, "local", str(world.folder))
        assert (await discard_kept_data(db, "local")).discarded == 1
    finally:
        await db.close()
    return "applied"


async def drift_adopted(world: World) -> str:
    db = engines(world)
    try:
        await deploy(db, "local", str(world.folder))
    finally:
        await db.close()
    await run_sql(world.local, "CREATE TABLE hotfix (id int)")
    async with client(world) as mcp:
        adopted = await mcp.call_tool("adopt_drift", {"environment": "local", "name": "hotfix"})
    assert not adopted.is_error and adopted.structured_content is not None, adopted.content
    assert adopted.structured_content["status"] == "written"
    return "pending"  # the adopted file is not recorded as applied yet: status says so


async def approval_pending(world: World) -> str:
    async with client(world) as mcp:  # no elicitation: the request is filed for `pgshift approve`
        answer = await mcp.call_tool("deploy", {"environment": "production"})
    assert answer.structured_content is not None and answer.structured_content["approval_id"], answer.content
    assert len(ApprovalStore().listed()) == 1
    return "approval"


async def approval_declined(world: World) -> str:
    async def decline(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="decline")

    async with client(world, elicitation_callback=decline) as mcp:
        answer = await mcp.call_tool("deploy", {"environment": "production"})
    assert answer.structured_content is not None and "declined" in answer.structured_content["message"]
    assert ApprovalStore().listed() == []
    return "pending"


async def approval_expired(world: World) -> str:
    await approval_pending(world)
    store = ApprovalStore()
    (request,) = store.listed()
    path = store.directory / f"{request.id}.json"
    path.write_text(request.model_copy(update={"expires_at": time.time() - 1}).model_dump_json())
    assert store.listed() == []
    return "pending"


WRITES: dict[str, Callable[[World], Awaitable[str]]] = {
    "applied": applied,
    "failed halfway": failed_halfway,
    "rolled back": rolled_back,
    "kept data discarded": kept_data_discarded,
    "drift adopted": drift_adopted,
    "approval pending": approval_pending,
    "approval declined": approval_declined,
    "approval expired": approval_expired,
}


# The reads.

INTERNAL = ("Traceback", "unexpected ", "Error executing tool", "ValidationError", "Internal Server Error")


def assert_no_internal_error(where: str, text: str) -> None:
    found = [marker for marker in INTERNAL if marker in text]
    assert not found, f"{where}: internal error {found}: {text[:2000]}"


def cli_status(capsys: pytest.CaptureFixture[str], world: World) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["status", "--migrations", str(world.folder)])
    out, err = capsys.readouterr()
    assert_no_internal_error("pgshift status", out + err)
    assert code in (0, 2), f"pgshift status exited {code}: {err}"
    return code, out + err


async def mcp_reads(world: World) -> dict[str, str]:
    reads = {
        "get_status": {},
        "list_migrations": {},
        "list_snapshots": {"environment": "local"},
        "detect_drift": {"environment": "local"},
    }
    out = {}
    async with client(world) as mcp:
        for tool, args in reads.items():
            result = await mcp.call_tool(tool, args)
            text = " ".join(getattr(c, "text", "") for c in result.content)
            assert_no_internal_error(tool, text)
            assert not result.is_error and result.structured_content is not None, f"{tool}: {text[:2000]}"
            out[tool] = text
    return out


def dashboard_reads(world: World) -> tuple[str, dict[str, Any]]:
    from starlette.testclient import TestClient

    app = dashboard_app(world.environments(), str(world.folder), approvals=ApprovalStore())
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as http:
        page = http.get("/")
        status = http.get("/status.json")
    assert page.status_code == 200 and "<html" in page.text.lower(), page.text[:500]
    assert_no_internal_error("dashboard /status.json", status.text)
    assert status.status_code == 200, status.text[:2000]
    return page.text, status.json()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("outcome", list(WRITES))
async def test_after_every_write_outcome_every_read_answers_and_says_the_state_in_words(
    world: World, capsys: pytest.CaptureFixture[str], outcome: str
) -> None:
    words = await WRITES[outcome](world)

    code, cli = await asyncio.to_thread(cli_status, capsys, world)
    reads = await mcp_reads(world)
    page, status = await asyncio.to_thread(dashboard_reads, world)

    assert words in cli.lower(), f"pgshift status does not say '{words}':\n{cli}"
    assert words in reads["get_status"].lower().replace("_", " "), reads["get_status"][:3000]
    assert words in json.dumps(status).lower().replace("_", " "), json.dumps(status)[:3000]
    assert "local" in page or "status.json" in page  # the page itself is static; its data is status.json
    local = {e["environment"]: e for e in status["environments"]}["local"]
    assert local["reachable"] and not local["error"], local
    if outcome == "rolled back":
        assert (
            "rolled back" in reads["list_migrations"].lower().replace("_", " ")
            or "pending" in reads["list_migrations"].lower()
        )
    if outcome.startswith("approval"):
        pending = outcome == "approval pending"
        assert ("pgshift approve" in cli) == pending, cli
        assert bool(status["approvals"]) == pending
        assert ('"pending_approvals":1' in reads["get_status"]) == pending, reads["get_status"][:3000]
    if outcome == "kept data discarded":
        assert json.loads(reads["list_snapshots"])["total_kept_bytes"] == 0, reads["list_snapshots"]
        assert local["snapshots"]["kept_bytes"] == 0 and local["snapshots"]["count"] >= 1, local["snapshots"]
    if outcome == "drift adopted":
        assert local["pending"] == 1 and "hotfix" in reads["detect_drift"]
    if outcome == "failed halfway":
        assert code == 2 and "boom" in cli
