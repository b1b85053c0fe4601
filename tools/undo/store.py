"""Snapshots and kept data in our ledger schema on the target database (so they travel with it).

- `pgshift.snapshots`: the schema's fingerprint (`tools.migrations.runner.target_fingerprint`, the one approvals are
  bound to), a loadable DDL form of it (`pg_dump --schema-only --no-owner`, `tools.judge.dump_schema`), its SHA-256,
  the server version, a label, the migration it precedes, the environment it was taken of, the catalog stamp read
  with it (`tools.watch.fingerprint`: while it is unchanged, the next snapshot reuses this one without reading the
  schema), and a keyed MAC over all of these (`tools.integrity`: the key is in pgshift's state directory, never in
  the database);
- `pgshift.snapshot_chunks`: the DDL itself, split at pg_dump's entry headers into runs of one schema each,
  zlib-compressed and stored once per content (keyed by SHA-256). A snapshot lists its chunks in order; an unchanged
  part (Supabase's `auth` and `storage`) is shared by every snapshot instead of copied on each apply;
- `pgshift.kept_data` (created when something is first kept): one row per copy of data a migration step destroyed
  (`tools.undo.keep`), naming the `pgshift.kept_*` table that holds it, until when it is kept, and its MAC.

Every read and write first proves the schema is pgshift's alone (`tools.state_schema`). A snapshot or kept record
whose MAC fails (changed outside pgshift, or signed with another machine's key) is refused for loading or restoring;
listing shows it flagged. The `pgshift` schema is always left out of introspection and compare
(`tools.introspect.filters`).
"""

from __future__ import annotations

import hashlib
import itertools
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePath
from typing import Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from pgshift.tools import integrity
from pgshift.tools.errors import ConfigError, DatabaseError
from pgshift.tools.files import check_name, write_new
from pgshift.tools.introspect.filters import LEDGER_SCHEMA
from pgshift.tools.judge import dump_schema
from pgshift.tools.sql import qualified, quote_ident
from pgshift.tools.state_schema import check_state_schema, seal
from pgshift.tools.watch.fingerprint import catalog_fingerprint

SNAPSHOTS = qualified(LEDGER_SCHEMA, "snapshots")
CHUNKS = qualified(LEDGER_SCHEMA, "snapshot_chunks")
KEPT_DATA = qualified(LEDGER_SCHEMA, "kept_data")
SNAPSHOT_FOLDER = Path(".pgshift") / "snapshots"
KEPT_TABLE_NAME = re.compile(r"kept_[0-9]+_[0-9]+_[0-9]+")
DEFAULT_KEPT_RETENTION_DAYS = 30
DEFAULT_KEEP_SNAPSHOTS = 20

CREATE_SNAPSHOTS = f"""
CREATE SCHEMA IF NOT EXISTS {LEDGER_SCHEMA};
CREATE TABLE IF NOT EXISTS {SNAPSHOTS} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    label text,
    fingerprint text NOT NULL,
    ddl text,
    ddl_sha256 text NOT NULL,
    server_version text NOT NULL,
    precedes_version text,
    precedes_name text,
    taken_by text NOT NULL DEFAULT current_user,
    taken_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    environment text,
    chunks bytea[],
    ddl_bytes bigint,
    mac text,
    catalog_stamp text
);
CREATE TABLE IF NOT EXISTS {CHUNKS} (
    sha256 bytea PRIMARY KEY,
    bytes integer NOT NULL,
    data bytea NOT NULL
);
ALTER TABLE {CHUNKS} ALTER COLUMN data SET STORAGE EXTERNAL;
"""
# Snapshot tables of older versions: the DDL inline (now chunked, so nullable), no MAC, no catalog stamp.
UPGRADE_SNAPSHOTS = f"""
ALTER TABLE {SNAPSHOTS} ALTER COLUMN ddl DROP NOT NULL,
    ADD COLUMN IF NOT EXISTS environment text,
    ADD COLUMN IF NOT EXISTS chunks bytea[],
    ADD COLUMN IF NOT EXISTS ddl_bytes bigint,
    ADD COLUMN IF NOT EXISTS mac text,
    ADD COLUMN IF NOT EXISTS catalog_stamp text;
"""
CREATE_KEPT_DATA = f"""
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
    kept_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    keep_until timestamptz,
    mac text,
    CONSTRAINT kept_data_snapshot_table UNIQUE (snapshot_id, kept_table)
);
"""
# Kept-data tables of older versions: no MAC, no retention, and a foreign key no index leads with (an advisor finding).
UPGRADE_KEPT_DATA = f"""
ALTER TABLE {KEPT_DATA} ADD COLUMN IF NOT EXISTS keep_until timestamptz, ADD COLUMN IF NOT EXISTS mac text;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint
                   WHERE conrelid = '{KEPT_DATA}'::regclass AND conname = 'kept_data_snapshot_table') THEN
        ALTER TABLE {KEPT_DATA} ADD CONSTRAINT kept_data_snapshot_table UNIQUE (snapshot_id, kept_table);
    END IF;
END $$;
"""
STATE = f"""
SELECT to_regclass($1) IS NOT NULL AS snapshots, to_regclass($2) IS NOT NULL AS chunks,
       to_regclass($3) IS NOT NULL AS kept_data,
       (SELECT count(*) = 2 FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass($1)
               AND attname IN ('mac', 'catalog_stamp') AND NOT attisdropped) AS snapshots_current,
       EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass($3) AND attname = 'mac'
               AND NOT attisdropped) AS kept_current,
       EXISTS (SELECT FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = '{LEDGER_SCHEMA}' AND c.relname ~ '^kept_[0-9]+_[0-9]+_[0-9]+$' AND c.relkind = 'r'
                 AND NOT EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
           AS kept_without_key
"""
KEPT_ROW_COLUMN = "pgshift_row"
KEPT_WITHOUT_KEY = f"""
SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = '{LEDGER_SCHEMA}' AND c.relname ~ '^kept_[0-9]+_[0-9]+_[0-9]+$' AND c.relkind = 'r'
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
"""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


Integrity = Literal["ok", "failed", "unsigned"]
INTEGRITY_DESCRIPTION = (
    "ok: its keyed MAC verifies; failed: it was changed outside pgshift or signed with another machine's key (never "
    "loaded); unsigned: taken by an older pgshift without a MAC (never loaded)"
)


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
    kept_at: datetime | None = None
    keep_until: datetime | None = Field(None, description="Discarded by pgshift's first write after this time")
    integrity: Integrity = Field("ok", description=INTEGRITY_DESCRIPTION)

    @property
    def object(self) -> str:
        table = qualified(self.table_schema, self.table_name)
        return table if self.column_name is None else f"{table}.{quote_ident(self.column_name)}"


KEPT_SIGNED = (
    "id",
    "snapshot_id",
    "statement",
    "kind",
    "table_schema",
    "table_name",
    "column_name",
    "kept_table",
    "key_columns",
    "columns",
    "rows",
    "bytes",
    "kept_at",
    "keep_until",
)


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
    environment: str | None = None
    integrity: Integrity = Field("ok", description=INTEGRITY_DESCRIPTION)


SNAPSHOT_SIGNED = (
    "id",
    "environment",
    "label",
    "fingerprint",
    "ddl_sha256",
    "ddl_bytes",
    "server_version",
    "precedes_version",
    "precedes_name",
    "taken_by",
    "taken_at",
)
# Signed only when set: snapshots of older versions have none and verify as they were signed; setting or clearing
# one on a signed row fails its MAC.
SNAPSHOT_SIGNED_IF_SET = ("catalog_stamp",)


def _signed(fields: dict[str, object]) -> dict[str, object]:
    signed = {k: fields.get(k) for k in SNAPSHOT_SIGNED}
    signed.update({k: fields[k] for k in SNAPSHOT_SIGNED_IF_SET if fields.get(k) is not None})
    return signed


@dataclass(frozen=True)
class SnapshotOptions:
    """How snapshots are taken on one environment: `pg_dump` reaches it at `dump_url` with `bin_dir`'s binaries.
    `kept_retention_days` and `keep_snapshots` bound what stays stored (`tools.undo.retention`)."""

    dump_url: str
    bin_dir: Path
    secrets: tuple[str, ...] = ()
    max_kept_bytes: int | None = None
    environment: str | None = None
    kept_retention_days: int = DEFAULT_KEPT_RETENTION_DAYS
    keep_snapshots: int = DEFAULT_KEEP_SNAPSHOTS


def ddl_digest(ddl: str) -> str:
    return hashlib.sha256(ddl.encode()).hexdigest()


# --- the schema: checked before every read and write, created and upgraded on write ----------------------------


async def _state(conn: asyncpg.Connection) -> asyncpg.Record:
    await check_state_schema(conn)
    row = await conn.fetchrow(STATE, SNAPSHOTS, CHUNKS, KEPT_DATA)
    assert row is not None
    return row


async def ensure_tables(conn: asyncpg.Connection) -> None:
    """Create the snapshot tables when missing and upgrade those of older versions (only then: IF NOT EXISTS still
    needs CREATE rights). Refused (NotAllowed) when the `pgshift` schema is not pgshift's alone."""
    state = await _state(conn)
    created = []
    if state["snapshots"] and not state["snapshots_current"]:
        await conn.execute(UPGRADE_SNAPSHOTS)
    if not state["snapshots"] or not state["chunks"]:
        await conn.execute(CREATE_SNAPSHOTS)
        created += [SNAPSHOTS, CHUNKS]
    if state["kept_data"] and not state["kept_current"]:
        if await conn.fetchval(f"SELECT NOT EXISTS (SELECT FROM {KEPT_DATA})"):
            await conn.execute(f"DROP TABLE {KEPT_DATA}")  # made by older versions even when nothing was kept
        else:
            await conn.execute(UPGRADE_KEPT_DATA)
    if state["kept_without_key"]:
        for table in [r[0] for r in await conn.fetch(KEPT_WITHOUT_KEY)]:
            await conn.execute(
                f"ALTER TABLE {table} ADD COLUMN {KEPT_ROW_COLUMN} bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
            )
    if created:
        await seal(conn)


async def ensure_kept_data(conn: asyncpg.Connection) -> None:
    """`pgshift.kept_data`, created when something is first kept."""
    await ensure_tables(conn)
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", KEPT_DATA):
        await conn.execute(CREATE_KEPT_DATA)
        await seal(conn)


async def stored_state(conn: asyncpg.Connection) -> tuple[bool, bool]:
    """Whether snapshots were ever taken here, and whether anything was ever kept (one read; NotAllowed when the
    `pgshift` schema is not pgshift's alone)."""
    state = await _state(conn)
    return bool(state["snapshots"]), bool(state["kept_data"])


async def tables_exist(conn: asyncpg.Connection) -> bool:
    """Whether snapshots were ever taken here; NotAllowed when the `pgshift` schema is not pgshift's alone."""
    return bool((await _state(conn))["snapshots"])


async def kept_exists(conn: asyncpg.Connection) -> bool:
    return bool((await _state(conn))["kept_data"])


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


# --- the DDL as content-addressed, compressed chunks ------------------------------------------------------------

# pg_dump's entry header: "--\n-- Name: x; Type: TABLE; Schema: auth; Owner: -\n--". Used only to choose where to
# cut the text for storage; the chunks concatenate back to the exact dump, whatever the cuts.
_ENTRY = re.compile(r"^--\n-- (?:Data for )?Name: ([^\n]*); Type: [^\n]*; Schema: ([^;\n]*);", re.MULTILINE)
_DUMP_END = "\n--\n-- PostgreSQL database dump complete"
_CUT_ONE_IN = 16  # within one schema's run, also cut before about one entry in 16 (chosen by its header's hash)


def split_ddl(ddl: str) -> list[str]:
    """The dump cut before each entry that starts another schema's run (and before about one entry in 16, chosen by
    the entry's header so the cut moves with its entry), with the preamble and the closing lines (which carry
    pg_dump's per-run `\\restrict` key) apart. `"".join(split_ddl(d)) == d`."""
    cuts = {0, len(ddl)}
    previous: str | None = None
    for m in _ENTRY.finditer(ddl):
        header = hashlib.sha256(m.group(0).encode()).digest()
        if m.group(2) != previous or header[0] < 256 // _CUT_ONE_IN:
            cuts.add(m.start())
        previous = m.group(2)
    end = ddl.rfind(_DUMP_END)
    if end >= 0:
        cuts.add(end + 1)
    ordered = sorted(cuts)
    return [ddl[a:b] for a, b in itertools.pairwise(ordered) if b > a]


async def _store_chunks(conn: asyncpg.Connection, ddl: str) -> list[bytes]:
    """Write the chunks of `ddl` not stored yet; the digests of all, in order."""
    pieces = [p.encode() for p in split_ddl(ddl)]
    digests = [hashlib.sha256(p).digest() for p in pieces]
    stored = await conn.fetch(f"SELECT sha256 FROM {CHUNKS} WHERE sha256 = ANY($1::bytea[])", digests)
    have = {bytes(r[0]) for r in stored}
    new = {d: p for d, p in zip(digests, pieces, strict=True) if d not in have}
    if new:
        await conn.execute(
            f"""INSERT INTO {CHUNKS} (sha256, bytes, data)
                SELECT * FROM unnest($1::bytea[], $2::integer[], $3::bytea[]) ON CONFLICT (sha256) DO NOTHING""",
            list(new),
            [len(p) for p in new.values()],
            [zlib.compress(p, 9) for p in new.values()],
        )
    return digests


def _inflate(data: bytes, size: int) -> bytes | None:
    """`data` decompressed, when it is a complete zlib stream of exactly `size` bytes (never more is inflated)."""
    try:
        inflater = zlib.decompressobj()
        out = inflater.decompress(data, size + 1)
    except zlib.error:
        return None
    return out if len(out) == size and inflater.eof and not inflater.unused_data else None


def _refused(snapshot_id: int) -> DatabaseError:
    return DatabaseError(
        f"snapshot {snapshot_id} fails its integrity check: it was changed outside pgshift, or was written with "
        "another machine's key; it will not be loaded. Nothing was done: use another snapshot (list_snapshots flags "
        "the ones that fail), or take a new one with snapshot_schema."
    )


def _unsigned(snapshot_id: int) -> DatabaseError:
    return DatabaseError(
        f"snapshot {snapshot_id} cannot be verified: it was taken by an older pgshift, without an integrity MAC, so "
        "pgshift cannot tell whether it was changed since; it will not be loaded. Nothing was done: take a new "
        "snapshot (snapshot_schema; every apply and deploy also takes one) and use that."
    )


async def _assemble(conn: asyncpg.Connection, snapshot_id: int, digests: Sequence[bytes], size: int) -> str:
    rows = await conn.fetch(
        f"SELECT sha256, bytes, data FROM {CHUNKS} WHERE sha256 = ANY($1::bytea[])", [bytes(d) for d in digests]
    )
    found = {bytes(r["sha256"]): r for r in rows}
    if any(bytes(d) not in found for d in digests) or sum(found[bytes(d)]["bytes"] for d in digests) != size:
        raise _refused(snapshot_id)
    parts = []
    for d in digests:
        row = found[bytes(d)]
        raw = _inflate(bytes(row["data"]), int(row["bytes"]))
        if raw is None or hashlib.sha256(raw).digest() != bytes(d):
            raise _refused(snapshot_id)
        parts.append(raw)
    try:
        return b"".join(parts).decode()
    except UnicodeDecodeError:
        raise _refused(snapshot_id) from None


# --- snapshots --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Taken:
    """What a snapshot will be: its fingerprint and DDL (None: reuse the DDL of snapshot `reuse`), the catalog stamp
    read before the fingerprint, and how the environment's retention bounds what stays stored."""

    fingerprint: str
    ddl: str | None
    reuse: int | None
    server_version: str
    environment: str | None = None
    kept_retention_days: int = DEFAULT_KEPT_RETENTION_DAYS
    keep_snapshots: int = DEFAULT_KEEP_SNAPSHOTS
    catalog_stamp: str | None = None


async def _reusable(conn: asyncpg.Connection, last: asyncpg.Record) -> bool:
    """Whether the last snapshot can lend its DDL to a new one: its MAC verifies (the DDL's digest and size are
    signed) and every chunk it lists is stored with the signed total size. Its chunks are not inflated here: each
    read of either snapshot (`read_snapshot`) checks the joined DDL against the signed digest, and refuses it."""
    if last["chunks"] is None or _snapshot_integrity(last, integrity.load_key()) != "ok":
        return False
    found = await conn.fetchrow(
        f"""SELECT count(c.sha256) AS found, cardinality($1::bytea[]) AS listed, coalesce(sum(c.bytes), 0) AS size
            FROM unnest($1::bytea[]) AS d(sha256) LEFT JOIN {CHUNKS} c ON c.sha256 = d.sha256""",
        list(last["chunks"]),
    )
    assert found is not None
    return int(found["found"]) == int(found["listed"]) and int(found["size"]) == int(last["ddl_bytes"] or -1)


async def prepare_snapshot(conn: asyncpg.Connection, options: SnapshotOptions, lock_timeout_ms: int) -> Taken:
    """Read the target's state and, unless the last snapshot has the same schema and verifies, dump its DDL (outside
    any transaction on `conn`). Nothing is written.

    The same schema is proven cheaply first: the catalog stamp (`tools.watch.fingerprint.catalog_fingerprint`, one
    query over the catalogs' row versions) equal to the one signed with the last snapshot means no DDL ran since, so
    its fingerprint and DDL are reused without reading the schema. Else the fingerprint is read (the whole
    introspection); equal to the last snapshot's, its DDL is reused; else pg_dump runs. The stamp is read before the
    fingerprint, so a change between the two reads only makes the next stamp differ (a full read, never a reuse)."""
    from pgshift.tools.migrations.runner import target_fingerprint  # the runner calls into this module

    stamp = await catalog_fingerprint(conn)
    version = str(await conn.fetchval("SHOW server_version"))
    policy = (options.environment, options.kept_retention_days, options.keep_snapshots)
    columns = await _snapshot_columns(conn)
    last = None
    if columns is not None:
        last = await conn.fetchrow(f"SELECT {columns} FROM {SNAPSHOTS} ORDER BY id DESC LIMIT 1")
    if last is not None and last["catalog_stamp"] == stamp and await _reusable(conn, last):
        return Taken(str(last["fingerprint"]), None, int(last["id"]), version, *policy, catalog_stamp=stamp)
    fingerprint = await target_fingerprint(conn)
    if last is not None and last["fingerprint"] == fingerprint and await _reusable(conn, last):
        return Taken(fingerprint, None, int(last["id"]), version, *policy, catalog_stamp=stamp)
    await _tables_free(conn, lock_timeout_ms)
    ddl = await dump_schema(options.dump_url, options.bin_dir, no_owner=True, secrets=options.secrets)
    return Taken(fingerprint, ddl, None, version, *policy, catalog_stamp=stamp)


def _snapshot_mac(fields: dict[str, object], key: bytes) -> str:
    return integrity.mac("snapshot", _signed(fields), key)


async def save_snapshot(
    conn: asyncpg.Connection,
    taken: Taken,
    *,
    label: str | None = None,
    precedes_version: str | None = None,
    precedes_name: str | None = None,
) -> int:
    """Write the snapshot row and its new chunks (inside the caller's transaction, if any), signed; its id. A reused
    snapshot shares the chunks of the one it reuses."""
    key = integrity.load_key()
    await ensure_tables(conn)
    if taken.ddl is None:
        source = await conn.fetchrow(
            f"SELECT chunks, ddl_sha256, ddl_bytes, fingerprint FROM {SNAPSHOTS} WHERE id = $1 AND chunks IS NOT NULL",
            taken.reuse,
        )
        if source is None:
            raise DatabaseError(f"snapshot {taken.reuse} disappeared while a new one was being taken from it; retry")
        digests, sha, size, fingerprint = source["chunks"], source["ddl_sha256"], source["ddl_bytes"], taken.fingerprint
    else:
        digests = await _store_chunks(conn, taken.ddl)
        sha, size, fingerprint = ddl_digest(taken.ddl), len(taken.ddl.encode()), taken.fingerprint
    row = await conn.fetchrow(
        f"""INSERT INTO {SNAPSHOTS} (label, fingerprint, chunks, ddl_sha256, ddl_bytes, server_version,
                                     precedes_version, precedes_name, environment, catalog_stamp)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id, taken_by, taken_at""",
        label,
        fingerprint,
        digests,
        sha,
        size,
        taken.server_version,
        precedes_version,
        precedes_name,
        taken.environment,
        taken.catalog_stamp,
    )
    assert row is not None
    fields: dict[str, object] = {
        "id": int(row["id"]),
        "environment": taken.environment,
        "label": label,
        "fingerprint": fingerprint,
        "ddl_sha256": sha,
        "ddl_bytes": int(size),
        "server_version": taken.server_version,
        "precedes_version": precedes_version,
        "precedes_name": precedes_name,
        "taken_by": row["taken_by"],
        "taken_at": row["taken_at"],
        "catalog_stamp": taken.catalog_stamp,
    }
    await conn.execute(f"UPDATE {SNAPSHOTS} SET mac = $2 WHERE id = $1", row["id"], _snapshot_mac(fields, key))
    return int(row["id"])


SNAPSHOT_COLUMNS = """id, label, fingerprint, server_version, precedes_version, precedes_name, taken_by, taken_at,
coalesce(ddl_bytes, octet_length(ddl)) AS ddl_bytes, environment, ddl_sha256, mac"""


async def _snapshot_columns(conn: asyncpg.Connection) -> str | None:
    """What to select of `pgshift.snapshots` (None: no snapshots yet); a table of an older version, not upgraded
    until pgshift's next write, reads as having no catalog stamps."""
    state = await _state(conn)
    if not state["snapshots"]:
        return None
    if state["snapshots_current"]:
        return f"{SNAPSHOT_COLUMNS}, catalog_stamp, chunks"
    present = {
        r[0]
        for r in await conn.fetch(
            "SELECT attname::text FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0"
            " AND NOT attisdropped",
            SNAPSHOTS,
        )
    }
    size = "coalesce(ddl_bytes, octet_length(ddl))" if "ddl_bytes" in present else "octet_length(ddl)"
    older = ", ".join(
        f"{name}" if name in present else f"NULL::{kind} AS {name}"
        for name, kind in (("environment", "text"), ("mac", "text"), ("catalog_stamp", "text"), ("chunks", "bytea[]"))
    )
    return (
        "id, label, fingerprint, server_version, precedes_version, precedes_name, taken_by, taken_at, "
        f"{size} AS ddl_bytes, ddl_sha256, {older}"
    )


def _snapshot_integrity(row: asyncpg.Record, key: bytes) -> Integrity:
    if not row["mac"]:
        return "unsigned"
    fields = _signed({k: row[k] for k in (*SNAPSHOT_SIGNED, *SNAPSHOT_SIGNED_IF_SET)})
    return "ok" if integrity.check("snapshot", fields, row["mac"], key) else "failed"


def _snapshot_row(row: asyncpg.Record, key: bytes) -> SnapshotRow:
    fields = {k: row[k] for k in SnapshotRow.model_fields if k != "integrity"}
    return SnapshotRow(**fields, integrity=_snapshot_integrity(row, key))


async def list_rows(conn: asyncpg.Connection) -> list[SnapshotRow]:
    """Every snapshot, oldest first, each flagged with whether its MAC verifies (nothing is refused here)."""
    columns = await _snapshot_columns(conn)
    if columns is None:
        return []
    key = integrity.load_key()
    return [_snapshot_row(r, key) for r in await conn.fetch(f"SELECT {columns} FROM {SNAPSHOTS} ORDER BY id")]


async def read_snapshot(conn: asyncpg.Connection, snapshot_id: int) -> tuple[SnapshotRow, str]:
    """A snapshot and its DDL, for loading. ConfigError when it is missing; DatabaseError when its MAC does not verify
    (or it has none), or its DDL no longer matches what was signed: it is never returned then."""
    columns = await _snapshot_columns(conn)
    if columns is None:
        raise ConfigError(f"snapshot {snapshot_id} does not exist: this database has no snapshots yet")
    row = await conn.fetchrow(f"SELECT {columns} FROM {SNAPSHOTS} WHERE id = $1", int(snapshot_id))
    if row is None:
        raise ConfigError(f"snapshot {snapshot_id} does not exist (list_snapshots shows what exists); nothing was done")
    checked = _snapshot_row(row, integrity.load_key())
    if checked.integrity == "unsigned":
        raise _unsigned(snapshot_id)
    if checked.integrity != "ok" or row["chunks"] is None:
        raise _refused(snapshot_id)
    ddl = await _assemble(conn, snapshot_id, row["chunks"], int(row["ddl_bytes"]))
    if ddl_digest(ddl) != row["ddl_sha256"]:
        raise _refused(snapshot_id)
    return checked, ddl


# --- kept data records ------------------------------------------------------------------------------------------


def kept_mac(fields: dict[str, object], key: bytes) -> str:
    return integrity.mac("kept_data", {k: fields.get(k) for k in KEPT_SIGNED}, key)


KEPT_COLUMNS = """id, snapshot_id, statement, kind, table_schema, table_name, column_name, kept_table, key_columns,
columns, rows, bytes, kept_at, keep_until, mac"""


def _kept(row: asyncpg.Record, key: bytes) -> KeptData:
    fields = {k: row[k] for k in KEPT_SIGNED}
    signed = integrity.check("kept_data", fields, row["mac"], key)
    named = KEPT_TABLE_NAME.fullmatch(str(row["kept_table"])) is not None
    ok: Integrity = "unsigned" if not row["mac"] else "ok" if signed and named else "failed"
    return KeptData(**{k: row[k] for k in KeptData.model_fields if k != "integrity"}, integrity=ok)


async def read_kept(
    conn: asyncpg.Connection, min_snapshot_id: int | None = None, *, verified: bool = True
) -> list[KeptData]:
    """Kept data (all, or of snapshots from `min_snapshot_id` on), oldest first. With `verified` (for a restore), a
    record whose MAC fails (or that has none) is refused (DatabaseError) and nothing is returned; without, records
    come back flagged."""
    if not await kept_exists(conn):
        return []
    key = integrity.load_key()
    rows = await conn.fetch(
        f"""SELECT {KEPT_COLUMNS} FROM {KEPT_DATA} WHERE $1::bigint IS NULL OR snapshot_id >= $1
            ORDER BY snapshot_id, id""",
        min_snapshot_id,
    )
    kept = [_kept(r, key) for r in rows]
    bad = [k for k in kept if k.integrity != "ok"]
    if verified and bad:
        first = bad[0]
        why = (
            "was recorded by an older pgshift, without an integrity MAC"
            if first.integrity == "unsigned"
            else "fails its integrity check: it was changed outside pgshift, or was written with another machine's key"
        )
        raise DatabaseError(
            f"kept data {first.kept_table!r} of snapshot {first.snapshot_id} {why}; it will not be restored. "
            f"Nothing was done ({len(bad)} kept record(s) fail). Inspect it by hand, or drop it with discard_kept_data "
            f"(snapshot={first.snapshot_id}) and roll back without it."
        )
    return kept


def write_file(project: Path, environment: str, snapshot_id: int, ddl: str) -> Path:
    """`.pgshift/snapshots/<environment>/<id>.sql` under the project (the DDL as dumped), created new: a linked
    folder or file on the way, or an existing file, is refused (`files.write_new`) and nothing is written."""
    try:
        check_name(environment, "environment name")
        return write_new(project, PurePath(SNAPSHOT_FOLDER, environment, f"{snapshot_id}.sql"), ddl)
    except ConfigError as exc:
        raise ConfigError(
            f"{exc} (the file only: snapshot {snapshot_id} is recorded in {environment}'s pgshift.snapshots; "
            "list_snapshots shows it)"
        ) from None
