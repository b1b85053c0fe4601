"""What a Supabase project holds besides the app: history tables, and extensions where Supabase keeps them.

- History tables (pgshift's `pgshift` schema, Prisma's `_prisma_migrations` in any schema, the Supabase CLI's
  `supabase_migrations`) are never schema: never in a compare, never in a plan, in either direction.
- On a Supabase target an extension in `extensions` (where pgshift's rewrite puts it) is the one the source
  has in `public`, and so is every reference to it (`extensions.gin_trgm_ops`, `extensions.uuid_generate_v4()`).
- An extension the source has and the target lacks is always planned, Supabase default or not.

Every plan is applied and the database is read back with a plain connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from conftest import create_database, drop_database
from support_plan import apply_plan, read_schema, run_sql

from pgshift.tools.diff import diff_schemas
from pgshift.tools.introspect import introspect
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.model import Schema
from pgshift.tools.plan import plan_migration

SUPABASE_SHAPE = (Path(__file__).resolve().parents[1] / "tools" / "sample" / "supabase_shape.sql").read_text()

HISTORY = """
CREATE SCHEMA pgshift;
CREATE TABLE pgshift.migrations (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, version text NOT NULL);
CREATE INDEX migrations_version ON pgshift.migrations (version);
CREATE SCHEMA supabase_migrations;
CREATE TABLE supabase_migrations.schema_migrations (version text NOT NULL PRIMARY KEY, statements text[], name text);
CREATE TABLE public._prisma_migrations (
    id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL, finished_at timestamptz,
    migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamptz,
    started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count integer NOT NULL DEFAULT 0
);
CREATE SCHEMA IF NOT EXISTS app;
CREATE TABLE app._prisma_migrations (id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL);
GRANT SELECT ON public._prisma_migrations TO PUBLIC;
"""
APP = "CREATE SCHEMA IF NOT EXISTS app; CREATE TABLE public.notes (id int PRIMARY KEY, body text);"


@pytest.fixture
async def pair(pg: LocalPostgres) -> AsyncIterator[tuple[str, str]]:
    """(source, target): two new empty databases on the same server."""
    source, target = await asyncio.gather(create_database(pg, "src"), create_database(pg, "tgt"))
    yield source, target
    await asyncio.gather(drop_database(pg, source), drop_database(pg, target))


async def _read(url: str, include_managed: bool = False) -> Schema:
    conn = await asyncpg.connect(url)
    try:
        return await introspect(conn, include_managed=include_managed)
    finally:
        await conn.close()


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


def _changes(source: Schema, target: Schema) -> list[tuple[str, str, str]]:
    return [(c.kind, c.key, c.change) for c in diff_schemas(source, target).changes]


async def test_history_tables_of_pgshift_prisma_and_supabase_never_appear_in_a_compare_or_a_plan(
    pair: tuple[str, str],
) -> None:
    source, target = pair
    await asyncio.gather(run_sql(source, APP), run_sql(target, APP + HISTORY))
    for managed in (False, True):
        src, tgt = await asyncio.gather(_read(source, managed), _read(target, managed))
        assert _changes(src, tgt) == [] and _changes(tgt, src) == []
        assert plan_migration(src, tgt, allow_data_loss=True).is_empty
        assert plan_migration(tgt, src, allow_data_loss=True).is_empty
    tables = {(r[0], r[1]) for r in await _fetch(target, "SELECT schemaname, tablename FROM pg_tables")}
    assert {("pgshift", "migrations"), ("public", "_prisma_migrations"), ("app", "_prisma_migrations")} <= tables


SUPABASE_TRGM = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA extensions;"
    + """
CREATE TABLE public.docs (id int PRIMARY KEY, title text NOT NULL);
CREATE INDEX docs_title_trgm ON public.docs USING gin (title extensions.gin_trgm_ops);
"""
)
LOCAL_TRGM = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE public.docs (id int PRIMARY KEY, title text NOT NULL);
CREATE INDEX docs_title_trgm ON public.docs USING gin (title public.gin_trgm_ops);
"""


async def test_an_extension_in_extensions_on_a_supabase_target_is_the_one_in_public_locally(
    pair: tuple[str, str],
) -> None:
    local, production = pair
    await asyncio.gather(run_sql(local, LOCAL_TRGM), run_sql(production, SUPABASE_SHAPE + SUPABASE_TRGM))
    src, tgt = await asyncio.gather(read_schema(local), read_schema(production))
    assert tgt.supabase and not src.supabase
    assert _changes(src, tgt) == []
    assert plan_migration(src, tgt).is_empty


async def test_an_extension_moved_out_of_public_on_a_plain_target_is_still_drift(pair: tuple[str, str]) -> None:
    local, other = pair
    moved = "CREATE SCHEMA extensions;" + SUPABASE_TRGM
    await asyncio.gather(run_sql(local, LOCAL_TRGM), run_sql(other, moved))
    src, tgt = await asyncio.gather(read_schema(local), read_schema(other))
    assert not tgt.supabase
    assert ("extension", "pg_trgm", "changed") in _changes(src, tgt)
    plan = plan_migration(src, tgt)
    assert "ALTER EXTENSION pg_trgm SET SCHEMA public" in plan.script
    await apply_plan(other, plan)
    assert plan_migration(src, await read_schema(other)).is_empty


UUID_TABLE = "CREATE TABLE public.items (id uuid PRIMARY KEY DEFAULT {schema}.uuid_generate_v4(), name text);"


async def test_a_default_calling_uuid_generate_v4_in_extensions_on_supabase_equals_public_locally(
    pg15: LocalPostgres,
) -> None:
    local, production = await asyncio.gather(create_database(pg15, "loc"), create_database(pg15, "sb"))
    try:
        await asyncio.gather(
            run_sql(local, 'CREATE EXTENSION "uuid-ossp";' + UUID_TABLE.format(schema="public")),
            run_sql(production, SUPABASE_SHAPE + UUID_TABLE.format(schema="extensions")),
        )
        src, tgt = await asyncio.gather(read_schema(local), read_schema(production))
        assert _changes(src, tgt) == []
        assert plan_migration(src, tgt).is_empty
    finally:
        await asyncio.gather(drop_database(pg15, local), drop_database(pg15, production))


@pytest.mark.parametrize("target_shape", ["supabase", "plain"])
async def test_a_supabase_default_extension_the_target_lacks_is_planned_and_the_plan_applies(
    pg15: LocalPostgres, target_shape: str
) -> None:
    source, target = await asyncio.gather(create_database(pg15, "sb"), create_database(pg15, "tgt"))
    try:
        shaped = SUPABASE_SHAPE + 'DROP EXTENSION "uuid-ossp";' if target_shape == "supabase" else ""
        await asyncio.gather(
            run_sql(source, SUPABASE_SHAPE + UUID_TABLE.format(schema="extensions")), run_sql(target, shaped)
        )
        src, tgt = await asyncio.gather(read_schema(source), read_schema(target))
        assert ("extension", '"uuid-ossp"', "added") in _changes(src, tgt)
        plan = plan_migration(src, tgt)
        await apply_plan(target, plan)
        rows = await _fetch(
            target,
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'uuid-ossp'",
        )
        assert [r[0] for r in rows] == ["extensions"]
        inserted = await _fetch(target, "INSERT INTO public.items (name) VALUES ('x') RETURNING id")
        assert inserted[0]["id"] is not None
        after = await read_schema(target)
        assert _changes(src, after) == []
        assert plan_migration(src, after).is_empty
    finally:
        await asyncio.gather(drop_database(pg15, source), drop_database(pg15, target))


async def test_a_view_the_plan_rebuilds_on_supabase_keeps_its_grants_to_anon_and_authenticated(
    pair: tuple[str, str],
) -> None:
    local, production = pair
    table = "CREATE TABLE public.notes (id int PRIMARY KEY, body text, secret text);"
    old_view = "CREATE VIEW public.feed AS SELECT id, body FROM public.notes;"
    grants = "GRANT SELECT ON public.feed TO anon; GRANT SELECT, INSERT ON public.feed TO authenticated;"
    await asyncio.gather(
        run_sql(local, table + "CREATE VIEW public.feed AS SELECT id FROM public.notes;"),
        run_sql(production, SUPABASE_SHAPE + table + old_view + grants),
    )
    src, tgt = await asyncio.gather(read_schema(local), read_schema(production))
    assert [c.kind for c in diff_schemas(src, tgt).changes] == ["view"]
    plan = plan_migration(src, tgt)
    assert "DROP VIEW public.feed" in plan.script and "REVOKE" not in plan.script
    await apply_plan(production, plan)
    rows = await _fetch(
        production,
        "SELECT grantee, privilege_type FROM information_schema.role_table_grants WHERE table_name = 'feed'"
        " AND grantee IN ('anon', 'authenticated')",
    )
    assert {(r[0], r[1]) for r in rows} == {
        ("anon", "SELECT"),
        ("authenticated", "SELECT"),
        ("authenticated", "INSERT"),
    }
    assert plan_migration(src, await read_schema(production)).is_empty
