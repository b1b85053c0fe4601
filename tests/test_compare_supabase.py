"""Comparing a local database with a Supabase-shaped one: platform configuration is not app drift."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from pgshift.tools.compare import PlanOptions, compare_schemas
from pgshift.tools.databases import Databases, Environment
from pgshift.tools.localpg import LocalPostgres

SUPABASE_SHAPE = (Path(__file__).resolve().parents[1] / "tools" / "sample" / "supabase_shape.sql").read_text()
APP = 'CREATE TABLE "Note" ("id" TEXT PRIMARY KEY, "body" TEXT);'


@pytest.fixture
async def pair(pg: LocalPostgres) -> AsyncIterator[Databases]:
    from conftest import create_database, drop_database

    local, prod = await create_database(pg, "loc"), await create_database(pg, "sb")
    for url, scripts in [(local, [APP]), (prod, [SUPABASE_SHAPE, APP, 'GRANT ALL ON "Note" TO anon, authenticated'])]:
        conn = await asyncpg.connect(url)
        try:
            for script in scripts:
                await conn.execute(script)
        finally:
            await conn.close()
    db = Databases([Environment(name="local", url=local), Environment(name="production", url=prod)])
    yield db
    await db.close()
    await drop_database(pg, local)
    await drop_database(pg, prod)


async def test_grants_supabase_gives_its_platform_roles_are_not_drift_and_never_revoked(pair: Databases) -> None:
    result = await compare_schemas(pair, "local", "production", plan=PlanOptions())
    assert result.in_sync, [d.name for d in result.differences.data]
    assert result.plan is not None and result.plan.data.statements == ()


async def test_platform_grants_are_compared_when_managed_objects_are_included(pair: Databases) -> None:
    result = await compare_schemas(pair, "local", "production", include_kinds=["privilege"], include_managed=True)
    grantees = {d.definition["grantee"] for d in result.differences.data if d.definition}
    assert {"anon", "authenticated"} <= grantees


async def _run(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def test_an_extension_the_supabase_rewrite_moved_to_extensions_is_in_sync_and_plans_nothing(
    pair: Databases,
) -> None:
    await _run(pair.environment("local").url, "CREATE EXTENSION pg_trgm; CREATE TABLE _prisma_migrations (id text)")
    await _run(pair.environment("production").url, "CREATE EXTENSION pg_trgm WITH SCHEMA extensions")
    result = await compare_schemas(pair, "local", "production", plan=PlanOptions())
    assert result.in_sync, [(d.kind, d.name) for d in result.differences.data]
    assert result.plan is not None and result.plan.data.statements == ()
