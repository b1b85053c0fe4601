"""The three migration histories a database keeps, read and written in one place.

- our ledger, `pgshift.migrations`: every attempt with its checksum, statements as applied, who, when,
  duration and outcome;
- Supabase's `supabase_migrations.schema_migrations (version, statements, name)`, so `supabase migration list`
  agrees (created if absent, with the shape the Supabase CLI creates); its statements are the author's, split by
  the parser, so `supabase migration fetch` gives back the file as written;
- Prisma's `_prisma_migrations`, exactly as Prisma creates it, for migrations read from a Prisma folder, so
  `prisma migrate status` agrees.

Each ecosystem's table is the truth for its migrations: `_prisma_migrations` for a Prisma folder, read as Prisma
reads it (a finished row not rolled back is applied, a row neither finished nor rolled back is failed, a rolled-back
row is ignored), Supabase's table for everything else (a row is applied). Our ledger adds who, when and what ran, but
never makes a migration applied that its ecosystem's table says is not: after `supabase migration repair --status
reverted` or `prisma migrate resolve --rolled-back` the migration is pending again and is recorded again when re-run.

Writes happen inside the caller's transaction: a migration and its history commit or roll back together. Every read
and write of our ledger first proves the `pgshift` schema is pgshift's alone (`tools.state_schema`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import asyncpg
from pydantic import BaseModel, ConfigDict

from pgshift.tools.errors import ConfigError
from pgshift.tools.introspect.filters import LEDGER_SCHEMA, PRISMA_HISTORY_TABLE, SUPABASE_HISTORY_SCHEMA
from pgshift.tools.migrations.folder import Migration
from pgshift.tools.migrations.parse import split_statements
from pgshift.tools.sql import qualified, quote_ident
from pgshift.tools.state_schema import check_state_schema, seal

LEDGER_TABLE = "migrations"
SUPABASE_SCHEMA = SUPABASE_HISTORY_SCHEMA
SUPABASE_TABLE = "schema_migrations"
PRISMA_TABLE = PRISMA_HISTORY_TABLE
DEFAULT_PRISMA_SCHEMA = "public"
HISTORY_SCHEMAS = (LEDGER_SCHEMA, SUPABASE_SCHEMA)
"""Schemas that hold only history: compare schemas without them (and without `_prisma_migrations`)."""

LEDGER = qualified(LEDGER_SCHEMA, LEDGER_TABLE)
SUPABASE = qualified(SUPABASE_SCHEMA, SUPABASE_TABLE)

CREATE_LEDGER = f"""
CREATE SCHEMA IF NOT EXISTS {LEDGER_SCHEMA};
CREATE TABLE IF NOT EXISTS {LEDGER} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version text NOT NULL,
    name text NOT NULL,
    source text NOT NULL,
    checksum text NOT NULL,
    statements text[] NOT NULL,
    applied_by text NOT NULL DEFAULT current_user,
    client text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    duration_ms integer NOT NULL,
    outcome text NOT NULL CONSTRAINT migrations_outcome_check CHECK (outcome IN ('applied', 'failed', 'rolled_back')),
    error text
);
"""
# Ledgers of older versions had an index on version that no query needs (an "unused index" advisor finding).
UNUSED_VERSION_INDEX = qualified(LEDGER_SCHEMA, "migrations_version")
# Ledgers created before a reverted migration could be applied again allowed one applied row per version.
ONE_APPLIED_ROW_INDEX = qualified(LEDGER_SCHEMA, "migrations_applied_version")

# The Supabase CLI's own statements (pkg/migration/history.go), so a table we create is the one it expects.
CREATE_SUPABASE = f"""
CREATE SCHEMA IF NOT EXISTS {SUPABASE_SCHEMA};
CREATE TABLE IF NOT EXISTS {SUPABASE} (version text NOT NULL PRIMARY KEY);
ALTER TABLE {SUPABASE} ADD COLUMN IF NOT EXISTS statements text[];
ALTER TABLE {SUPABASE} ADD COLUMN IF NOT EXISTS name text;
"""


def prisma_table(schema: str = DEFAULT_PRISMA_SCHEMA) -> str:
    return qualified(schema, PRISMA_TABLE)


def create_prisma_sql(schema: str = DEFAULT_PRISMA_SCHEMA) -> str:
    """Prisma's `_prisma_migrations` DDL for PostgreSQL (schema engine's create_migrations_table)."""
    return f"""
CREATE TABLE IF NOT EXISTS {prisma_table(schema)} (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);
"""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class LedgerRow(Frozen):
    version: str
    name: str
    source: str
    checksum: str
    statements: list[str]
    applied_by: str
    client: str
    started_at: datetime
    finished_at: datetime
    duration_ms: int
    outcome: Literal["applied", "failed", "rolled_back"]
    error: str | None = None


class SupabaseRow(Frozen):
    version: str
    name: str | None = None
    statements: list[str] | None = None


class PrismaRow(Frozen):
    id: str
    checksum: str
    migration_name: str
    started_at: datetime
    finished_at: datetime | None = None
    rolled_back_at: datetime | None = None
    logs: str | None = None
    applied_steps_count: int

    @property
    def failed(self) -> bool:
        return self.finished_at is None and self.rolled_back_at is None


class History(Frozen):
    """Everything the three history tables say (a table that does not exist reads as empty)."""

    ledger: list[LedgerRow] = []
    supabase: list[SupabaseRow] = []
    prisma: list[PrismaRow] = []
    prisma_schema: str = DEFAULT_PRISMA_SCHEMA

    def supabase_versions(self) -> set[str]:
        return {r.version for r in self.supabase}

    def applied_prisma_rows(self) -> list[PrismaRow]:
        """Rows Prisma counts as applied: finished and not rolled back (rolled-back rows Prisma ignores)."""
        return [r for r in self.prisma if r.finished_at is not None and r.rolled_back_at is None]

    def applied_prisma_names(self) -> set[str]:
        return {r.migration_name for r in self.applied_prisma_rows()}

    def is_applied(self, migration: Migration) -> bool:
        """What the migration's own ecosystem says: `_prisma_migrations` for a Prisma folder's migration, Supabase's
        table for a Supabase file or a loose script. Our ledger alone never makes a migration applied."""
        if migration.prisma_name is not None:
            return migration.prisma_name in self.applied_prisma_names()
        return migration.version in self.supabase_versions()

    def is_failed(self, migration: Migration) -> bool:
        """Prisma's failed state (a row neither finished nor rolled back) for a Prisma migration; elsewhere our
        ledger's last attempt failed (Supabase's table has no notion of failure)."""
        if migration.prisma_name is not None:
            return any(r.failed for r in self.prisma if r.migration_name == migration.prisma_name)
        attempts = [r for r in self.ledger if r.version == migration.version]
        return bool(attempts) and attempts[-1].outcome == "failed"

    def recorded_checksum(self, migration: Migration) -> str | None:
        """The checksum recorded when `migration` was applied: Prisma's own for a Prisma migration, else our
        ledger's last applied attempt (None if unknown)."""
        if migration.prisma_name is not None:
            rows = [r for r in self.applied_prisma_rows() if r.migration_name == migration.prisma_name]
            return rows[-1].checksum if rows else None
        for row in reversed(self.ledger):
            if row.version == migration.version and row.outcome == "applied":
                return row.checksum
        return None


_EXISTS = "SELECT to_regclass($1) IS NOT NULL"

READ_LEDGER = f"""
SELECT version, name, source, checksum, statements, applied_by, client, started_at, finished_at, duration_ms,
       outcome, error
FROM {LEDGER} ORDER BY id
"""
READ_SUPABASE = f"SELECT version, name, statements FROM {SUPABASE} ORDER BY version"


def _read_prisma_sql(schema: str) -> str:
    return f"""
SELECT id, checksum, migration_name, started_at, finished_at, rolled_back_at, logs, applied_steps_count
FROM {prisma_table(schema)} ORDER BY started_at, migration_name
"""


async def _exists(conn: asyncpg.Connection, table: str) -> bool:
    return bool(await conn.fetchval(_EXISTS, table))


async def read_history(conn: asyncpg.Connection, prisma_schema: str = DEFAULT_PRISMA_SCHEMA) -> History:
    """Read the three tables on `conn` (works in a READ ONLY transaction). NotAllowed when the `pgshift` schema is
    not pgshift's alone."""
    await check_state_schema(conn)
    ledger: list[LedgerRow] = []
    supabase: list[SupabaseRow] = []
    prisma: list[PrismaRow] = []
    if await _exists(conn, LEDGER):
        ledger = [LedgerRow(**dict(r)) for r in await conn.fetch(READ_LEDGER)]
    if await _exists(conn, SUPABASE):
        columns = {
            r["attname"]
            for r in await conn.fetch(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
                SUPABASE,
            )
        }
        select = ", ".join(c if c in columns else f"NULL AS {c}" for c in ("version", "name", "statements"))
        supabase = [SupabaseRow(**dict(r)) for r in await conn.fetch(f"SELECT {select} FROM {SUPABASE} ORDER BY 1")]
    if await _exists(conn, prisma_table(prisma_schema)):
        prisma = [PrismaRow(**dict(r)) for r in await conn.fetch(_read_prisma_sql(prisma_schema))]
    return History(ledger=ledger, supabase=supabase, prisma=prisma, prisma_schema=prisma_schema)


HISTORY_STATE = """
SELECT to_regclass($1) IS NOT NULL AS ledger,
       to_regclass($2) IS NOT NULL AS prisma,
       ARRAY(SELECT attname::text FROM pg_catalog.pg_attribute
             WHERE attrelid = to_regclass($3) AND attnum > 0 AND NOT attisdropped) AS supabase_columns,
       to_regnamespace($4) IS NOT NULL AS prisma_schema,
       to_regclass($5) IS NOT NULL AS unused_version_index
"""


# Supabase's Data API (PostgREST) serves `public` to these roles, and the platform's default privileges grant them
# every table the `postgres` role creates there: the history tables pgshift creates or writes are closed to them.
API_ROLES = ("anon", "authenticated")

EXPOSED_HISTORY = """
SELECT t.name, ARRAY(SELECT r.rolname::text FROM pg_catalog.pg_roles r
                     WHERE r.rolname = ANY($2::text[]) AND pg_catalog.has_table_privilege(
                         r.oid, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
                     ORDER BY 1) AS roles
FROM unnest($1::text[]) AS t(name)
JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(t.name)
WHERE pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE')
"""


async def close_to_api_roles(conn: asyncpg.Connection, tables: list[str]) -> None:
    """Revoke every privilege `anon` and `authenticated` hold on those of `tables` we own (where those roles exist: a
    Supabase database). Row-level security is left as it is: Prisma, writing its history as a role that neither owns
    the table nor bypasses RLS, would otherwise find it empty."""
    for table, roles in await conn.fetch(EXPOSED_HISTORY, tables, list(API_ROLES)):
        if roles:
            await conn.execute(f"REVOKE ALL ON {table} FROM {', '.join(quote_ident(r) for r in roles)}")


async def ensure_tables(conn: asyncpg.Connection, *, prisma: bool, prisma_schema: str = DEFAULT_PRISMA_SCHEMA) -> None:
    """Create the history tables that are missing (inside the caller's transaction).

    Only missing objects get DDL: on a hosted database the role applying migrations may lack CREATE on the
    database or own none of the existing history tables, and PostgreSQL checks those rights even for
    `IF NOT EXISTS`.
    """
    await check_state_schema(conn)
    state = await conn.fetchrow(
        HISTORY_STATE,
        LEDGER,
        prisma_table(prisma_schema),
        SUPABASE,
        qualified(None, prisma_schema),
        UNUSED_VERSION_INDEX,
    )
    script = "" if state["ledger"] else CREATE_LEDGER
    if state["unused_version_index"]:
        script += f"DROP INDEX IF EXISTS {UNUSED_VERSION_INDEX};\n"
    columns = set(state["supabase_columns"])
    if not columns:
        script += CREATE_SUPABASE
    else:
        script += "".join(
            f"ALTER TABLE {SUPABASE} ADD COLUMN IF NOT EXISTS {name} {kind};\n"
            for name, kind in (("statements", "text[]"), ("name", "text"))
            if name not in columns
        )
    if prisma and not state["prisma_schema"]:
        script += f"CREATE SCHEMA {qualified(None, prisma_schema)};\n"
    if prisma and not state["prisma"]:
        script += create_prisma_sql(prisma_schema)
    if script:
        await conn.execute(script)
    if not state["ledger"]:
        await seal(conn)
    await close_to_api_roles(conn, [LEDGER, SUPABASE] + ([prisma_table(prisma_schema)] if prisma else []))


def authored_statements(migration: Migration) -> list[str] | None:
    """The script's statements as written, split by PostgreSQL's parser (None if it does not parse)."""
    try:
        return [s.text for s in split_statements(migration.sql)]
    except ConfigError:
        return None


REAPPLIED = f"""
SELECT to_regclass($1) IS NOT NULL AND EXISTS (SELECT FROM {LEDGER} WHERE version = $2 AND outcome = 'applied')
"""


async def _allow_reapplied(conn: asyncpg.Connection, version: str) -> None:
    """A migration its ecosystem's table reverted is being applied again: our ledger keeps both applications, so
    the one-applied-row-per-version index of an older ledger goes (only then: dropping it needs ownership)."""
    if await conn.fetchval(REAPPLIED, ONE_APPLIED_ROW_INDEX, version):
        await conn.execute(f"DROP INDEX {ONE_APPLIED_ROW_INDEX}")


async def record(
    conn: asyncpg.Connection,
    migration: Migration,
    *,
    statements: list[str],
    started_at: datetime,
    duration_ms: int,
    outcome: Literal["applied", "failed"],
    error: str | None = None,
    client: str = "pgshift",
    prisma_schema: str = DEFAULT_PRISMA_SCHEMA,
) -> None:
    """Write one attempt to every history that applies.

    An applied migration goes to all three (Prisma's only for Prisma sources): our ledger gets `statements` (what
    ran), Supabase's table the author's statements. A failed one that left changes behind (statements that cannot
    run in a transaction) goes to our ledger and, like Prisma records a failed migration, to `_prisma_migrations`
    with no finish time; Supabase's table has no notion of failure. Applying again a migration its ecosystem
    reverted adds a ledger row and a Prisma row, and (re)writes the Supabase row.
    """
    await ensure_tables(conn, prisma=migration.prisma_name is not None, prisma_schema=prisma_schema)
    if outcome == "applied":
        await _allow_reapplied(conn, migration.version)
    await conn.execute(
        f"""INSERT INTO {LEDGER} (version, name, source, checksum, statements, client, started_at, duration_ms,
                                  outcome, error)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        migration.version,
        migration.name,
        migration.source,
        migration.checksum,
        statements,
        client,
        started_at,
        duration_ms,
        outcome,
        error,
    )
    if outcome == "applied":
        if migration.prisma_name is not None:  # Prisma decides: a row Supabase's table kept is rewritten
            await conn.execute(f"DELETE FROM {SUPABASE} WHERE version = $1", migration.version)
        await conn.execute(
            f"INSERT INTO {SUPABASE} (version, statements, name) VALUES ($1, $2, $3)",
            migration.version,
            authored_statements(migration) or statements,
            migration.name,
        )
    if migration.prisma_name is not None:
        if outcome == "applied":
            # Earlier failed attempts are settled the way `prisma migrate resolve --rolled-back` settles them.
            await conn.execute(
                f"""UPDATE {prisma_table(prisma_schema)} SET rolled_back_at = clock_timestamp()
                    WHERE migration_name = $1 AND finished_at IS NULL AND rolled_back_at IS NULL""",
                migration.prisma_name,
            )
        await conn.execute(
            f"""INSERT INTO {prisma_table(prisma_schema)}
                    (id, checksum, finished_at, migration_name, logs, started_at, applied_steps_count)
                VALUES ($1, $2, CASE WHEN $3 THEN clock_timestamp() END, $4, $5, $6, $7)""",
            str(uuid.uuid4()),
            migration.checksum,
            outcome == "applied",
            migration.prisma_name,
            error,
            started_at,
            1 if outcome == "applied" else 0,
        )


# Ledgers created before rollback existed allow only 'applied' and 'failed'.
OUTCOMES_WITH_ROLLBACK = f"""
SELECT pg_catalog.pg_get_constraintdef(oid) LIKE '%rolled_back%' FROM pg_catalog.pg_constraint
WHERE conrelid = to_regclass('{LEDGER}') AND conname = 'migrations_outcome_check'
"""
ALLOW_ROLLED_BACK = f"""
ALTER TABLE {LEDGER} DROP CONSTRAINT IF EXISTS migrations_outcome_check,
    ADD CONSTRAINT migrations_outcome_check CHECK (outcome IN ('applied', 'failed', 'rolled_back'))
"""


# Prisma's rows of a rolled-back migration (its folder is `<version>_<name>`). A failed row gets `rolled_back_at`, as
# `prisma migrate resolve --rolled-back` does. A finished row is deleted: `migrate deploy` skips a migration having any
# row without `rolled_back_at` (schema-engine/core/src/commands/apply_migrations.rs), but `migrate status` looks rows
# up by name whatever their `rolled_back_at` (diagnose_migration_history.rs: `fs_migrations_not_in_db`), so only
# without the row do both report the migration as not applied. Our ledger keeps the record.
PRISMA_ROLL_BACK_FAILED = """UPDATE {table} SET rolled_back_at = clock_timestamp()
WHERE finished_at IS NULL AND rolled_back_at IS NULL AND left(migration_name, length($1) + 1) = $1 || '_'"""
PRISMA_FORGET_FINISHED = """DELETE FROM {table}
WHERE finished_at IS NOT NULL AND left(migration_name, length($1) + 1) = $1 || '_'"""


class Reverted(Frozen):
    """A migration a rollback undid, as the ledger knew it."""

    version: str
    name: str
    source: str
    checksum: str


async def record_rollback(
    conn: asyncpg.Connection,
    reverted: list[Reverted],
    *,
    statements: list[str],
    started_at: datetime,
    duration_ms: int,
    client: str = "pgshift",
    prisma_schema: str = DEFAULT_PRISMA_SCHEMA,
    error: str | None = None,
) -> None:
    """Record a rollback in the three histories (inside the rollback's transaction).

    Our ledger gets a 'rolled_back' row per reverted migration with the statements the rollback ran (`error` holds
    the rollback's own note, such as the snapshot it returned to); Supabase's row for each version is deleted, as
    `supabase migration repair --status reverted` does; Prisma's finished row is deleted and a failed one marked
    rolled back (see PRISMA_FORGET_FINISHED), so `migrate status` lists the migration as not applied and `migrate
    deploy` applies it again.
    """
    await ensure_tables(conn, prisma=False, prisma_schema=prisma_schema)
    if not await conn.fetchval(OUTCOMES_WITH_ROLLBACK):
        await conn.execute(ALLOW_ROLLED_BACK)
    for m in reverted:
        await conn.execute(
            f"""INSERT INTO {LEDGER} (version, name, source, checksum, statements, client, started_at, duration_ms,
                                      outcome, error)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'rolled_back', $9)""",
            m.version,
            m.name,
            m.source,
            m.checksum,
            statements,
            client,
            started_at,
            duration_ms,
            error,
        )
        await conn.execute(f"DELETE FROM {SUPABASE} WHERE version = $1", m.version)
        if await _exists(conn, prisma_table(prisma_schema)):
            await conn.execute(PRISMA_ROLL_BACK_FAILED.format(table=prisma_table(prisma_schema)), m.version)
            await conn.execute(PRISMA_FORGET_FINISHED.format(table=prisma_table(prisma_schema)), m.version)
