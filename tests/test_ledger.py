"""The three history tables, on real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from pgshift.tools import ledger
from pgshift.tools.migrations.folder import Migration, checksum

PRISMA_COLUMNS = [
    ("id", "character varying", "NO"),
    ("checksum", "character varying", "NO"),
    ("finished_at", "timestamp with time zone", "YES"),
    ("migration_name", "character varying", "NO"),
    ("logs", "text", "YES"),
    ("rolled_back_at", "timestamp with time zone", "YES"),
    ("started_at", "timestamp with time zone", "NO"),
    ("applied_steps_count", "integer", "NO"),
]


def _prisma_migration(sql: str = 'CREATE TABLE "A" (id int);') -> Migration:
    return Migration(
        version="20240101000000",
        name="init",
        source="prisma",
        sql=sql,
        checksum=checksum(sql),
        prisma_name="20240101000000_init",
    )


async def _columns(conn: asyncpg.Connection, schema: str, table: str) -> list[tuple[str, str, str]]:
    rows = await conn.fetch(
        """SELECT column_name, data_type, is_nullable FROM information_schema.columns
           WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position""",
        schema,
        table,
    )
    return [(r[0], r[1], r[2]) for r in rows]


async def test_history_reads_as_empty_when_no_table_exists(fresh_db: str) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        history = await ledger.read_history(conn)
    finally:
        await conn.close()
    assert history == ledger.History()


async def test_tables_are_created_with_the_shapes_prisma_and_supabase_expect(fresh_db: str) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        async with conn.transaction():
            await ledger.ensure_tables(conn, prisma=True)
            await ledger.ensure_tables(conn, prisma=True)  # idempotent
        assert await _columns(conn, "public", "_prisma_migrations") == PRISMA_COLUMNS
        assert await _columns(conn, "supabase_migrations", "schema_migrations") == [
            ("version", "text", "NO"),
            ("statements", "ARRAY", "YES"),
            ("name", "text", "YES"),
        ]
        pk = await conn.fetchval(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'public._prisma_migrations'::regclass AND contype = 'p'"
        )
        assert pk == "PRIMARY KEY (id)"
    finally:
        await conn.close()


async def test_an_applied_prisma_migration_is_recorded_in_all_three_places(fresh_db: str) -> None:
    migration = _prisma_migration()
    conn = await asyncpg.connect(fresh_db)
    try:
        async with conn.transaction():
            await ledger.record(
                conn,
                migration,
                statements=[migration.sql],
                started_at=datetime.now(UTC),
                duration_ms=3,
                outcome="applied",
            )
        history = await ledger.read_history(conn)
    finally:
        await conn.close()
    (row,) = history.ledger
    assert (row.version, row.name, row.checksum, row.statements, row.outcome) == (
        "20240101000000",
        "init",
        migration.checksum,
        [migration.sql],
        "applied",
    )
    # Supabase's row holds the author's statements as the parser splits them (what `supabase migration fetch` reads)
    authored = ['CREATE TABLE "A" (id int)']
    assert history.supabase == [ledger.SupabaseRow(version="20240101000000", name="init", statements=authored)]
    (prow,) = history.prisma
    assert (prow.migration_name, prow.checksum, prow.applied_steps_count) == (
        "20240101000000_init",
        migration.checksum,
        1,
    )
    assert prow.finished_at is not None and not prow.failed
    assert history.is_applied(migration)
    assert history.recorded_checksum(migration) == migration.checksum


async def test_a_failed_attempt_is_recorded_like_prisma_records_one_and_not_in_supabase(fresh_db: str) -> None:
    migration = _prisma_migration()
    conn = await asyncpg.connect(fresh_db)
    try:
        async with conn.transaction():
            await ledger.record(
                conn,
                migration,
                statements=[],
                started_at=datetime.now(UTC),
                duration_ms=1,
                outcome="failed",
                error="statement 1 failed",
            )
        history = await ledger.read_history(conn)
    finally:
        await conn.close()
    assert [r.outcome for r in history.ledger] == ["failed"]
    assert history.supabase == []
    (prow,) = history.prisma
    assert prow.failed and prow.logs == "statement 1 failed" and prow.applied_steps_count == 0
    assert not history.is_applied(migration)


async def test_a_supabase_table_created_by_a_newer_cli_is_written_through_its_three_columns(fresh_db: str) -> None:
    migration = Migration(version="20240108234540", name="setup", source="supabase", sql="SELECT 1", checksum="x")
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute(
            """CREATE SCHEMA supabase_migrations;
               CREATE TABLE supabase_migrations.schema_migrations (
                   version text PRIMARY KEY, statements text[], name text, created_by text,
                   idempotency_key text UNIQUE)"""
        )
        async with conn.transaction():
            await ledger.record(
                conn, migration, statements=["SELECT 1"], started_at=datetime.now(UTC), duration_ms=1, outcome="applied"
            )
        history = await ledger.read_history(conn)
        assert await conn.fetchval("SELECT to_regclass('public._prisma_migrations')") is None
    finally:
        await conn.close()
    assert history.supabase_versions() == {"20240108234540"} and history.is_applied(migration)


async def test_a_supabase_table_from_an_old_cli_gets_the_missing_columns(fresh_db: str) -> None:
    migration = Migration(version="1", name="first", source="supabase", sql="SELECT 1", checksum="x")
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute(
            "CREATE SCHEMA supabase_migrations; "
            "CREATE TABLE supabase_migrations.schema_migrations (version text PRIMARY KEY)"
        )
        async with conn.transaction():
            await ledger.record(
                conn, migration, statements=["SELECT 1"], started_at=datetime.now(UTC), duration_ms=1, outcome="applied"
            )
        history = await ledger.read_history(conn)
    finally:
        await conn.close()
    assert history.supabase == [ledger.SupabaseRow(version="1", name="first", statements=["SELECT 1"])]


async def test_prisma_history_goes_to_the_schema_prisma_uses(fresh_db: str) -> None:
    migration = _prisma_migration()
    conn = await asyncpg.connect(fresh_db)
    try:
        async with conn.transaction():
            await ledger.record(
                conn,
                migration,
                statements=[migration.sql],
                started_at=datetime.now(UTC),
                duration_ms=1,
                outcome="applied",
                prisma_schema="App Schema",
            )
        names = await conn.fetchval('SELECT array_agg(migration_name) FROM "App Schema"._prisma_migrations')
        default = await ledger.read_history(conn)
        custom = await ledger.read_history(conn, prisma_schema="App Schema")
    finally:
        await conn.close()
    assert names == ["20240101000000_init"]
    assert default.prisma == [] and [r.migration_name for r in custom.prisma] == names


async def test_a_ledger_from_before_reapplying_lets_a_reverted_migration_be_recorded_again(fresh_db: str) -> None:
    migration = Migration(version="1", name="first", source="supabase", sql="SELECT 1", checksum="x")
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute(ledger.CREATE_LEDGER)
        await conn.execute(
            f"CREATE UNIQUE INDEX migrations_applied_version ON {ledger.LEDGER} (version) WHERE outcome = 'applied'"
        )
        for _ in range(2):  # applied, reverted by `supabase migration repair --status reverted 1`, applied again
            async with conn.transaction():
                await ledger.record(
                    conn,
                    migration,
                    statements=["SELECT 1"],
                    started_at=datetime.now(UTC),
                    duration_ms=1,
                    outcome="applied",
                )
            await conn.execute(f"DELETE FROM {ledger.SUPABASE} WHERE version = '1'")
        history = await ledger.read_history(conn)
    finally:
        await conn.close()
    assert [(r.version, r.outcome) for r in history.ledger] == [("1", "applied"), ("1", "applied")]
    assert not history.is_applied(migration)
