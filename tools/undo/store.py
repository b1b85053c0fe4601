"""Snapshots and kept data in our ledger schema on the target database (so they travel with it).

- `pgshift.snapshots`: the schema's fingerprint (`tools.migrations.runner.target_fingerprint`, the one approvals are
  bound to), a loadable DDL form of it (`pg_dump --schema-only --no-owner`, `tools.judge.dump_schema`), its SHA-256
  (a snapshot whose text was changed is refused), the server version, a label and the migration it precedes;
- `pgshift.kept_data`: one row per copy of data a migration step destroyed (`tools.undo.keep`), naming the
  `pgshift.kept_*` table that holds it.

Both live in the `pgshift` schema, which introspection and compare always leave out (`tools.introspect.filters`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from pgshift.tools.errors import ConfigError, DatabaseError
from pgshift.tools.introspect.filters import LEDGER_SCHEMA
from pgshift.tools.judge import dump_schema
from pgshift.tools.sql import qualified, quote_ident

SNAPSHOTS = qualified(LEDGER_SCHEMA, "snapshots")
KEPT_DATA = qualified(LEDGER_SCHEMA, "kept_data")
SNAPSHOT_FOLDER = Path(".pgshift") / "snapshots"

CREATE_SNAPSHOTS = f"""
CREATE SCHEMA IF NOT EXISTS {LEDGER_SCHEMA};
CREATE TABLE IF NOT EXISTS {SNAPSHOTS} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    label text,
    fingerprint text NOT NULL,
    ddl text NOT NULL,
    ddl_sha256 text NOT NULL,
    server_version text NOT NULL,
    precedes_version text,
    precedes_name text,
    taken_by text NOT NULL DEFAULT current_user,
    taken_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS {KEPT_DATA} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    snapshot_id bigint NOT NULL REFERENCES {SNAPSHOTS} (id) ON DELETE CASCADE,
    statement integer NOT NULL,
    kind text NOT NULL CHECK (kind IN ('drop_table', 'drop_column', 'change_type')),
    table_schema text NOT NULL,
    table_name text NOT NULL,
    column_name text,
    kept_table text NOT NULL,
    key_columns text[] NOT NULL,
    columns text[] NOT NULL,
    rows bigint NOT NULL,
    bytes bigint NOT NULL,
    kept_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class KeptData(Frozen):
    """Data a migration step destroyed, copied first (values as text) into `kept_table` in the ledger schema."""

    snapshot_id: int
    statement: int = Field(description="The step of the migration that destroyed it")
    kind: str = Field(description="drop_table, drop_column or change_type")
    table_schema: str
    table_name: str
    column_name: str | None = None
    kept_table: str = Field(description="Table in the pgshift schema holding the copy")
    key_columns: list[str] = Field(
        description="Columns that find each row again (the primary key, else a NOT NULL unique key)"
    )
    columns: list[str] = Field(description="Columns kept (values as text)")
    rows: int
    bytes: int

    @property
    def object(self) -> str:
        table = qualified(self.table_schema, self.table_name)
        return table if self.column_name is None else f"{table}.{quote_ident(self.column_name)}"


class SnapshotRow(Frozen):
    id: int
    label: str | None = None
    fingerprint: str
    server_version: str
    precedes_version: str | None = None
    precedes_name: str | None = None
    taken_by: str
    taken_at: datetime
    ddl_bytes: int


@dataclass(frozen=True)
class SnapshotOptions:
    """How snapshots are taken on one environment: `pg_dump` reaches it at `dump_url` with `bin_dir`'s binaries."""

    dump_url: str
    bin_dir: Path
    secrets: tuple[str, ...] = ()
    max_kept_bytes: int | None = None


def ddl_digest(ddl: str) -> str:
    return hashlib.sha256(ddl.encode()).hexdigest()


async def ensure_tables(conn: asyncpg.Connection) -> None:
    """Create the snapshot tables when missing (only then: IF NOT EXISTS still needs CREATE rights)."""
    exists = await conn.fetchval(
        "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL", SNAPSHOTS, KEPT_DATA
    )
    if not exists:
        await conn.execute(CREATE_SNAPSHOTS)


async def tables_exist(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", SNAPSHOTS))


USER_TABLES = f"""
SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema', '{LEDGER_SCHEMA}')
  AND n.nspname NOT LIKE 'pg\\_%' AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
"""


async def _tables_free(conn: asyncpg.Connection, lock_timeout_ms: int) -> None:
    """Prove no other session holds a lock pg_dump would wait for (ACCESS EXCLUSIVE on a table): pg_dump sets its own
    lock_timeout to 0, so a held lock would stall it. Raises asyncpg.LockNotAvailableError after `lock_timeout_ms`."""
    tables = [r[0] for r in await conn.fetch(USER_TABLES)]
    if not tables:
        return
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
        await conn.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS SHARE MODE")


@dataclass(frozen=True)
class Taken:
    """What a snapshot will be: its fingerprint and DDL (None: reuse the DDL of snapshot `reuse`)."""

    fingerprint: str
    ddl: str | None
    reuse: int | None
    server_version: str


async def prepare_snapshot(conn: asyncpg.Connection, options: SnapshotOptions, lock_timeout_ms: int) -> Taken:
    """Read the target's fingerprint and, unless the last snapshot has the same one, dump its DDL (outside any
    transaction on `conn`). Nothing is written."""
    from pgshift.tools.migrations.runner import target_fingerprint  # the runner calls into this module

    fingerprint = await target_fingerprint(conn)
    version = str(await conn.fetchval("SHOW server_version"))
    if await tables_exist(conn):
        last = await conn.fetchrow(f"SELECT id, fingerprint FROM {SNAPSHOTS} ORDER BY id DESC LIMIT 1")
        if last is not None and last["fingerprint"] == fingerprint:
            return Taken(fingerprint, None, int(last["id"]), version)
    await _tables_free(conn, lock_timeout_ms)
    ddl = await dump_schema(options.dump_url, options.bin_dir, no_owner=True, secrets=options.secrets)
    return Taken(fingerprint, ddl, None, version)


async def save_snapshot(
    conn: asyncpg.Connection,
    taken: Taken,
    *,
    label: str | None = None,
    precedes_version: str | None = None,
    precedes_name: str | None = None,
) -> int:
    """Write the snapshot row (inside the caller's transaction, if any); its id. A reused snapshot's DDL is copied
    on the server, not sent again."""
    await ensure_tables(conn)
    if taken.ddl is None:
        new_id = await conn.fetchval(
            f"""INSERT INTO {SNAPSHOTS} (label, fingerprint, ddl, ddl_sha256, server_version, precedes_version,
                                         precedes_name)
                SELECT $2, fingerprint, ddl, ddl_sha256, $3, $4, $5 FROM {SNAPSHOTS} WHERE id = $1 RETURNING id""",
            taken.reuse,
            label,
            taken.server_version,
            precedes_version,
            precedes_name,
        )
        if new_id is not None:
            return int(new_id)
        raise DatabaseError(f"snapshot {taken.reuse} disappeared while a new one was being taken from it; retry")
    return int(
        await conn.fetchval(
            f"""INSERT INTO {SNAPSHOTS} (label, fingerprint, ddl, ddl_sha256, server_version, precedes_version,
                                         precedes_name)
                VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
            label,
            taken.fingerprint,
            taken.ddl,
            ddl_digest(taken.ddl),
            taken.server_version,
            precedes_version,
            precedes_name,
        )
    )


SNAPSHOT_COLUMNS = """id, label, fingerprint, server_version, precedes_version, precedes_name, taken_by, taken_at,
octet_length(ddl) AS ddl_bytes"""


async def list_rows(conn: asyncpg.Connection) -> list[SnapshotRow]:
    if not await tables_exist(conn):
        return []
    return [SnapshotRow(**dict(r)) for r in await conn.fetch(f"SELECT {SNAPSHOT_COLUMNS} FROM {SNAPSHOTS} ORDER BY id")]


async def read_kept(conn: asyncpg.Connection, min_snapshot_id: int | None = None) -> list[KeptData]:
    """Kept data (all, or of snapshots from `min_snapshot_id` on), oldest first."""
    if not await tables_exist(conn):
        return []
    rows = await conn.fetch(
        f"""SELECT snapshot_id, statement, kind, table_schema, table_name, column_name, kept_table, key_columns,
                   columns, rows, bytes
            FROM {KEPT_DATA} WHERE $1::bigint IS NULL OR snapshot_id >= $1 ORDER BY snapshot_id, id""",
        min_snapshot_id,
    )
    return [KeptData(**dict(r)) for r in rows]


async def read_snapshot(conn: asyncpg.Connection, snapshot_id: int) -> tuple[SnapshotRow, str]:
    """A snapshot and its DDL; DatabaseError when it is missing or its DDL no longer matches its digest."""
    if not await tables_exist(conn):
        raise ConfigError(f"snapshot {snapshot_id} does not exist: this database has no snapshots yet")
    row = await conn.fetchrow(
        f"SELECT {SNAPSHOT_COLUMNS}, ddl, ddl_sha256 FROM {SNAPSHOTS} WHERE id = $1", int(snapshot_id)
    )
    if row is None:
        raise ConfigError(f"snapshot {snapshot_id} does not exist (list_snapshots shows what exists); nothing was done")
    if ddl_digest(row["ddl"]) != row["ddl_sha256"]:
        raise DatabaseError(
            f"snapshot {snapshot_id} is corrupted: its DDL no longer matches the SHA-256 recorded when it was taken. "
            "Nothing was done; use another snapshot."
        )
    fields = {k: row[k] for k in SnapshotRow.model_fields}
    return SnapshotRow(**fields), str(row["ddl"])


def write_file(project: Path, environment: str, snapshot_id: int, ddl: str) -> Path:
    """`.pgshift/snapshots/<environment>/<id>.sql` under the project (the DDL as dumped)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", environment) or environment.startswith("."):
        raise ConfigError(f"environment name {environment!r} cannot name a snapshot folder; nothing was written")
    folder = project / SNAPSHOT_FOLDER / environment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{snapshot_id}.sql"
    path.write_text(ddl)
    return path
