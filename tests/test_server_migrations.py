"""check_migration, apply_migration, list_migrations and deploy through an in-memory mcp.Client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from mcp import Client, types
from test_server_tools import call, call_error

from pgshift.server.app import build_app
from pgshift.tools.databases import Environment
from pgshift.tools.localpg import LocalPostgres

ROOT = Path(__file__).resolve().parents[1]
SUPABASE_SHAPE = (ROOT / "tools" / "sample" / "supabase_shape.sql").read_text()
INIT = """-- CreateTable
CREATE TABLE "Note" ("id" TEXT NOT NULL, "body" TEXT NOT NULL, CONSTRAINT "Note_pkey" PRIMARY KEY ("id"));
"""
SECOND = """-- AlterTable
ALTER TABLE "Note" ADD COLUMN "pinned" BOOLEAN NOT NULL DEFAULT false;
"""


@pytest.fixture
async def production(pg: LocalPostgres) -> AsyncIterator[str]:
    from conftest import create_database, drop_database

    url = await create_database(pg, "prod")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(SUPABASE_SHAPE)
    finally:
        await conn.close()
    yield url
    await drop_database(pg, url)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Prisma project directory, made the server's working directory."""
    for folder, sql in [("20240101000000_init", INIT), ("20240202000000_pinned", SECOND)]:
        (tmp_path / "prisma" / "migrations" / folder).mkdir(parents=True)
        (tmp_path / "prisma" / "migrations" / folder / "migration.sql").write_text(sql)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Approval requests go to a directory of this test's own."""
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def client_for(url: str, **kwargs: Any) -> Client:
    envs = [Environment(name="production", url=url, protected=True)]
    return Client(build_app(lambda: envs), **kwargs)


async def columns(url: str, table: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position", table
        )
        return [r[0] for r in rows]
    finally:
        await conn.close()


async def test_check_migration_rewrites_lints_and_dry_runs_without_committing(production: str, project: Path) -> None:
    async with client_for(production) as client:
        out = await call(
            client, "check_migration", environment="production", migration="prisma/migrations/20240101000000_init"
        )
    assert out["dry_run"]["succeeded"] is True
    assert any(c["kind"] == "table" and c["change"] == "added" for c in out["dry_run"]["changes"]["data"])
    assert "IF NOT EXISTS" in out["script"]
    assert await columns(production, "Note") == []


async def test_apply_on_a_protected_environment_runs_once_a_person_approved_then_records_history(
    production: str, project: Path
) -> None:
    from pgshift.tools.approval import ApprovalStore

    init = {"environment": "production", "name": "init", "migration": "prisma/migrations/20240101000000_init"}
    async with client_for(production) as client:
        first = await call(client, "apply_migration", **init)
        assert first["status"] == "confirmation_required" and first["approval_id"]
        assert await columns(production, "Note") == []
        ApprovalStore().approve(first["approval_id"])  # the person, through the engine `pgshift approve` uses
        done = await call(client, "apply_migration", **init, approval_id=first["approval_id"])
        status = await call(client, "list_migrations", environments=["production"])
    assert done["status"] == "applied"
    assert await columns(production, "Note") == ["id", "body"]
    states = {m["version"]: m["states"]["production"] for m in status["migrations"]["data"]}
    assert states == {"20240101000000": "applied", "20240202000000": "pending"}


async def test_a_client_with_elicitation_is_asked_and_its_approval_applies(production: str, project: Path) -> None:
    asked: list[str] = []

    async def approve(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"approve": True})

    async with client_for(production, elicitation_callback=approve) as client:
        out = await call(client, "deploy", environment="production", directory="prisma/migrations")
    assert out["status"] == "deployed" and out["counts"]["applied"] == 2
    assert asked and "protected environment 'production'" in asked[0]
    assert await columns(production, "Note") == ["id", "body", "pinned"]


async def test_a_declined_elicitation_runs_nothing(production: str, project: Path) -> None:
    async def decline(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="decline")

    async with client_for(production, elicitation_callback=decline) as client:
        out = await call(client, "deploy", environment="production", directory="prisma/migrations")
    assert out["status"] == "confirmation_required" and "declined" in out["message"]
    assert out["approval_id"] is None
    assert await columns(production, "Note") == []


async def test_paths_outside_the_project_are_refused(production: str, project: Path) -> None:
    async with client_for(production) as client:
        msg = await call_error(client, "check_migration", environment="production", migration="/etc/passwd")
        msg2 = await call_error(client, "list_migrations", directory="../../")
    assert "outside the project directory" in msg and "outside the project directory" in msg2
