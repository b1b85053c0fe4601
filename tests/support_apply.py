"""Helpers for the apply/deploy tests: database state snapshots, bounded waits, migration folders."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Any

import asyncpg

from pgshift.tools.databases import Databases
from pgshift.tools.ledger import LEDGER, SUPABASE, prisma_table
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.sql import quote_ident

WAIT_BOUND_S = 10.0

# Every user-visible object, by name: what "the database is as before" means in these tests.
OBJECTS = """
SELECT 'relation' AS kind, n.nspname || '.' || c.relname || ':' || c.relkind::text AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
UNION ALL
SELECT 'column', c.oid::regclass::text || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE a.attnum > 0 AND NOT a.attisdropped AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%'
UNION ALL
SELECT 'type', n.nspname || '.' || t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
UNION ALL
SELECT 'function', p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'schema', nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' AND nspname <> 'information_schema'
UNION ALL
SELECT 'extension', extname FROM pg_extension
ORDER BY 1, 2
"""


async def snapshot(url: str) -> dict[str, Any]:
    """Objects and the rows of the three history tables (None for a table that does not exist)."""
    conn = await asyncpg.connect(url)
    try:
        objects = [tuple(r) for r in await conn.fetch(OBJECTS)]
        history: dict[str, Any] = {}
        for table in (LEDGER, SUPABASE, prisma_table()):
            if await conn.fetchval("SELECT to_regclass($1)", table) is None:
                history[table] = None
            else:
                history[table] = [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY 1")]
        return {"objects": objects, "history": history}
    finally:
        await conn.close()


async def history_counts(url: str) -> tuple[int, int, int]:
    """Rows in (pgshift ledger with outcome applied, supabase_migrations, finished _prisma_migrations); 0 if absent."""
    queries = (
        (LEDGER, f"SELECT count(*) FROM {LEDGER} WHERE outcome = 'applied'"),
        (SUPABASE, f"SELECT count(*) FROM {SUPABASE}"),
        (prisma_table(), f"SELECT count(*) FROM {prisma_table()} WHERE finished_at IS NOT NULL"),
    )
    conn = await asyncpg.connect(url)
    try:
        counts = []
        for table, query in queries:
            exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table)
            counts.append(int(await conn.fetchval(query)) if exists else 0)
        return counts[0], counts[1], counts[2]
    finally:
        await conn.close()


async def wait_until(conn: asyncpg.Connection, query: str, *args: object, bound_s: float = WAIT_BOUND_S) -> None:
    """Poll `query` until it returns true, failing after `bound_s` seconds."""
    deadline = time.monotonic() + bound_s
    while True:
        # Inside a transaction pg_stat_activity is a cached snapshot: drop it so each poll sees the present.
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        if await conn.fetchval(query, *args):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {bound_s} s: {query}")
        await asyncio.sleep(0.01)


WAITING_ON_LOCK = """
SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
               AND pid <> pg_backend_pid())
"""


def target(url: str, *, protected: bool = False, read_only: bool = False) -> Databases:
    from pgshift.tools.databases import Environment

    return Databases([Environment(name="target", url=url, protected=protected, read_only=read_only)])


def prisma_folder(root: Path, migrations: dict[str, str]) -> Path:
    """A prisma/migrations folder with one `<name>/migration.sql` per entry; returns the migrations folder."""
    folder = root / "prisma" / "migrations"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "migration_lock.toml").write_text('provider = "postgresql"\n')
    for name, sql in migrations.items():
        (folder / name).mkdir(exist_ok=True)
        (folder / name / "migration.sql").write_text(sql)
    return folder


async def run_sql(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def new_database(server: LocalPostgres, prefix: str = "apply") -> str:
    """A new empty database on `server`; its URL."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(server.url())
    try:
        await conn.execute(f"CREATE DATABASE {quote_ident(name)}")
    finally:
        await conn.close()
    return server.url(name)


async def remove_database(server: LocalPostgres, url: str) -> None:
    conn = await asyncpg.connect(server.url())
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(url.rsplit('/', 1)[1])} WITH (FORCE)")
    finally:
        await conn.close()
