"""The history tables pgshift creates on a Supabase database are not reachable through the Data API.

On Supabase, `public` is exposed through PostgREST to the `anon` and `authenticated` roles, and the platform's default
privileges grant them every table the `postgres` role creates in `public`. A `_prisma_migrations` that pgshift creates
there must not be readable or writable by them (it names every migration and its checksum; a forged row would make a
migration look applied); neither may our ledger or Supabase's history. Checked as those roles on a connection of
the test's own, with a control table of the migration's that the default privileges do expose.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from support_apply import prisma_folder, target

from pgshift.tools.deploy import deploy
from pgshift.tools.ledger import create_prisma_sql

SUPABASE_SHAPE = (Path(__file__).resolve().parents[1] / "tools" / "sample" / "supabase_shape.sql").read_text()
# What a Supabase project grants on objects the `postgres` role creates in `public` (its default privileges).
SUPABASE_DEFAULT_GRANTS = """
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
"""
INIT = '-- CreateTable\nCREATE TABLE "Note" ("id" TEXT NOT NULL, CONSTRAINT "Note_pkey" PRIMARY KEY ("id"));\n'
HISTORY_TABLES = ("public._prisma_migrations", "pgshift.migrations", "supabase_migrations.schema_migrations")
API_ROLES = ("anon", "authenticated")


@pytest.fixture
async def supabase_db(db18: str) -> AsyncIterator[str]:
    conn = await asyncpg.connect(db18)
    try:
        await conn.execute(SUPABASE_SHAPE + SUPABASE_DEFAULT_GRANTS)
    finally:
        await conn.close()
    yield db18


async def rows_seen_as(conn: asyncpg.Connection, role: str, table: str) -> int | None:
    """How many rows `role` sees in `table`; None when it may not read it at all."""
    async with conn.transaction():
        await conn.execute(f"SET LOCAL ROLE {role}")
        try:
            return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
        except asyncpg.InsufficientPrivilegeError:
            return None


async def insert_refused_as(conn: asyncpg.Connection, role: str) -> bool:
    """Whether `role` is refused when it forges a finished Prisma migration row."""
    tr = conn.transaction()
    await tr.start()
    try:
        await conn.execute(f"SET LOCAL ROLE {role}")
        await conn.execute(
            "INSERT INTO public._prisma_migrations (id, checksum, migration_name, finished_at, applied_steps_count) "
            "VALUES ('forged', 'x', '29990101000000_forged', now(), 1)"
        )
        return False
    except asyncpg.InsufficientPrivilegeError:  # 42501: no grant, or a row-level security policy refuses it
        return True
    finally:
        await tr.rollback()


@pytest.mark.parametrize("made_by", ["pgshift", "prisma"])
async def test_history_tables_on_supabase_cannot_be_read_or_forged_by_the_data_api_roles(
    supabase_db: str, tmp_path: Path, made_by: str
) -> None:
    """Whether pgshift creates `_prisma_migrations` or finds the one `prisma migrate` created (exposed by the default
    grants), after a deploy neither `anon` nor `authenticated` can read or write any history."""
    if made_by == "prisma":
        conn = await asyncpg.connect(supabase_db)
        try:
            await conn.execute(create_prisma_sql())
        finally:
            await conn.close()
    folder = prisma_folder(tmp_path, {"20240101000000_init": INIT})
    result = await deploy(target(supabase_db), "target", str(folder))
    assert result.status == "deployed", result.message

    conn = await asyncpg.connect(supabase_db)
    try:
        for table in HISTORY_TABLES:  # as the owner every history has its row
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 1, table
        for role in API_ROLES:
            assert await rows_seen_as(conn, role, 'public."Note"') == 0, "control: the default grants expose app tables"
            seen = {table: await rows_seen_as(conn, role, table) for table in HISTORY_TABLES}
            assert all(n in (None, 0) for n in seen.values()), f"{role} reads migration history: {seen}"
            assert await insert_refused_as(conn, role), f"{role} can forge a row in _prisma_migrations"
    finally:
        await conn.close()
