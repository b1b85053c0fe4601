"""Keeping what a migration step destroys, and putting it back after a rollback.

Before a lossy statement runs (`tools.undo.losses`), in the same transaction, the values it would destroy are copied
into `pgshift.kept_<snapshot>_<statement>_<n>` (with a primary key of its own, `pgshift_row`): for a dropped table
every column; for a dropped or retyped column the row's key (the primary key, else a unique index over NOT NULL
columns) and that column. Each copy is recorded in `pgshift.kept_data` with a keyed MAC and the time it is kept until
(`tools.undo.retention`). A table without such a key
cannot have a column kept (`unkeepable` names it before the migration runs). Values are kept as text, so the copy
never depends on a type the migration drops next (an enum replaced by a new one). After a rollback re-created the
table or column, the values are cast back to the column's type and written in by key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from pgshift.tools import integrity
from pgshift.tools.introspect.filters import LEDGER_SCHEMA
from pgshift.tools.sql import qualified, quote_ident
from pgshift.tools.state_schema import seal
from pgshift.tools.undo.losses import Loss
from pgshift.tools.undo.store import (
    DEFAULT_KEPT_RETENTION_DAYS,
    KEPT_COLUMNS,
    KEPT_DATA,
    KEPT_ROW_COLUMN,
    KEPT_SIGNED,
    KEPT_TABLE_NAME,
    KeptData,
    ensure_kept_data,
    kept_mac,
)

TABLE = """
SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = pg_catalog.to_regclass($1) AND c.relkind IN ('r', 'p')
"""
COLUMNS = """
SELECT attname, pg_catalog.format_type(atttypid, atttypmod) AS type, attgenerated <> '' AS generated
FROM pg_catalog.pg_attribute WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped ORDER BY attnum
"""
# The key a kept row is found again by: the primary key, else a unique index over NOT NULL columns (no expression, no
# predicate). A table with neither has no stable key (ctid moves with every update), so its columns are not kept.
ROW_KEY = """
SELECT array_agg(a.attname ORDER BY k.ord) AS columns
FROM pg_catalog.pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = $1::oid AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
GROUP BY i.indexrelid, i.indisprimary
HAVING bool_and(a.attnotnull)
ORDER BY i.indisprimary DESC, i.indexrelid
LIMIT 1
"""


@dataclass(frozen=True)
class Target:
    """A table as it is now: its oid, schema, name and columns (name -> type; generated columns left out)."""

    oid: int
    schema: str
    name: str
    columns: dict[str, str]
    key: tuple[str, ...]

    @property
    def sql_name(self) -> str:
        return qualified(self.schema, self.name)


async def read_target(conn: asyncpg.Connection, table: str) -> Target | None:
    row = await conn.fetchrow(TABLE, table)
    if row is None:
        return None
    cols = {r["attname"]: r["type"] for r in await conn.fetch(COLUMNS, row["oid"]) if not r["generated"]}
    key = tuple(await conn.fetchval(ROW_KEY, row["oid"]) or ())
    return Target(int(row["oid"]), row["nspname"], row["relname"], cols, key)


def kept_columns(loss: Loss, target: Target) -> tuple[list[str], list[str]] | None:
    """(key columns, kept columns) for `loss` on `target`; None when nothing of it exists to keep, or when the table
    has no key to find its rows again by (see `unkeepable`)."""
    if loss.kind == "drop_table":
        return [], list(target.columns)
    if loss.column is None or loss.column not in target.columns or not target.key:
        return None
    return list(target.key), [loss.column]


def _text(column: str) -> str:
    return f"{quote_ident(column)}::text AS {quote_ident(column)}"


async def estimate_bytes(conn: asyncpg.Connection, losses: Sequence[Loss]) -> int:
    """What keeping `losses` would take, read before anything runs: a dropped table's size, a column's values (and
    their keys). Tables the migration creates itself count 0."""
    total = 0
    for loss in losses:
        target = await read_target(conn, loss.table)
        if target is None:
            continue
        if loss.kind == "drop_table":
            total += int(await conn.fetchval("SELECT pg_catalog.pg_total_relation_size($1::oid)", target.oid))
            continue
        picked = kept_columns(loss, target)
        if picked is None:
            continue
        keys, cols = picked
        row = ", ".join(quote_ident(c) for c in [*keys, *cols])
        total += int(
            await conn.fetchval(
                f"SELECT coalesce(sum(pg_catalog.pg_column_size(ROW({row}))), 0) FROM {target.sql_name}"
            )
        )
    return total


async def keep(
    conn: asyncpg.Connection,
    snapshot_id: int,
    loss: Loss,
    n: int,
    *,
    retention_days: int = DEFAULT_KEPT_RETENTION_DAYS,
) -> KeptData | None:
    """Copy what `loss` will destroy (inside the migration's transaction, right before its statement), into a table
    with a primary key of its own, recorded in `pgshift.kept_data` (created now if missing) with a MAC and the time
    until which it is kept (`retention_days` from now)."""
    target = await read_target(conn, loss.table)
    if target is None:
        return None
    picked = kept_columns(loss, target)
    if picked is None:
        return None
    keys, cols = picked
    key = integrity.load_key()
    await ensure_kept_data(conn)
    name = f"kept_{snapshot_id}_{loss.statement}_{n}"
    kept = qualified(LEDGER_SCHEMA, name)
    copied = list(dict.fromkeys([*keys, *cols]))
    row_id = KEPT_ROW_COLUMN
    while row_id in copied:
        row_id += "_"
    definition = ", ".join(
        [f"{quote_ident(row_id)} bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"]
        + [f"{quote_ident(c)} text" for c in copied]
    )
    await conn.execute(f"CREATE TABLE {kept} ({definition})")
    await seal(conn)
    names = ", ".join(quote_ident(c) for c in copied)
    status = await conn.execute(
        f"INSERT INTO {kept} ({names}) SELECT {', '.join(_text(c) for c in copied)} FROM {target.sql_name}"
    )
    rows = int(status.rsplit(" ", 1)[-1])
    size = int(await conn.fetchval("SELECT pg_catalog.pg_total_relation_size($1::regclass)", kept))
    written = await conn.fetchrow(
        f"""INSERT INTO {KEPT_DATA} (snapshot_id, statement, kind, table_schema, table_name, column_name, kept_table,
                                     key_columns, columns, rows, bytes, keep_until)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                    clock_timestamp() + pg_catalog.make_interval(days => $12))
            RETURNING {KEPT_COLUMNS}""",
        snapshot_id,
        loss.statement,
        loss.kind,
        target.schema,
        target.name,
        loss.column,
        name,
        keys,
        cols,
        rows,
        size,
        int(retention_days),
    )
    assert written is not None
    fields = {k: written[k] for k in KEPT_SIGNED}
    await conn.execute(f"UPDATE {KEPT_DATA} SET mac = $2 WHERE id = $1", written["id"], kept_mac(fields, key))
    return KeptData(**{k: written[k] for k in KeptData.model_fields if k != "integrity"})


@dataclass(frozen=True)
class Restored:
    object: str
    rows: int


async def restore(conn: asyncpg.Connection, kept: KeptData) -> Restored | None:
    """Write kept values back into the table or column the rollback re-created; None when it does not exist."""
    target = await read_target(conn, qualified(kept.table_schema, kept.table_name))
    if target is None:
        return None
    source = qualified(LEDGER_SCHEMA, kept.kept_table)
    if kept.kind == "drop_table":
        cols = [c for c in kept.columns if c in target.columns]
        names = ", ".join(quote_ident(c) for c in cols)
        values = ", ".join(f"k.{quote_ident(c)}::{target.columns[c]}" for c in cols)
        status = await conn.execute(
            f"INSERT INTO {target.sql_name} ({names}) OVERRIDING SYSTEM VALUE SELECT {values} FROM {source} k"
        )
        await _advance_sequences(conn, target, cols)
        return Restored(kept.object, int(status.rsplit(" ", 1)[-1]))
    column = kept.column_name
    if column is None or column not in target.columns:
        return None
    if any(k not in target.columns for k in kept.key_columns):
        return None
    match = " AND ".join(f"t.{quote_ident(k)}::text = k.{quote_ident(k)}" for k in kept.key_columns)
    status = await conn.execute(
        f"UPDATE {target.sql_name} t SET {quote_ident(column)} = k.{quote_ident(column)}::{target.columns[column]} "
        f"FROM {source} k WHERE {match}"
    )
    return Restored(kept.object, int(status.rsplit(" ", 1)[-1]))


async def _advance_sequences(conn: asyncpg.Connection, target: Target, columns: Sequence[str]) -> None:
    """Serial and identity sequences of a refilled table continue after the highest value restored."""
    for column in columns:
        sequence = await conn.fetchval("SELECT pg_catalog.pg_get_serial_sequence($1, $2)", target.sql_name, column)
        if sequence is not None:
            await conn.execute(
                f"SELECT pg_catalog.setval($1, max({quote_ident(column)})) FROM {target.sql_name} "
                f"HAVING max({quote_ident(column)}) IS NOT NULL",
                sequence,
            )


async def discard(conn: asyncpg.Connection, kept: Sequence[KeptData]) -> int:
    """Drop kept tables and their records (inside the caller's transaction); bytes freed. Only tables named as pgshift
    names kept tables are dropped: a record that names another table loses its record only."""
    for k in kept:
        if KEPT_TABLE_NAME.fullmatch(k.kept_table):
            await conn.execute(f"DROP TABLE IF EXISTS {qualified(LEDGER_SCHEMA, k.kept_table)}")
        await conn.execute(f"DELETE FROM {KEPT_DATA} WHERE kept_table = $1", k.kept_table)
    return sum(k.bytes for k in kept)


async def unkeepable(conn: asyncpg.Connection, losses: Sequence[Loss]) -> list[str]:
    """Columns a migration destroys that cannot be kept because their table has no key (read before it runs)."""
    found = []
    for loss in losses:
        if loss.kind == "drop_table":
            continue
        target = await read_target(conn, loss.table)
        if target is not None and loss.column in target.columns and not target.key:
            found.append(f"{target.sql_name}.{quote_ident(loss.column or '')}")
    return found


async def rows_without_kept_value(conn: asyncpg.Connection, table: str, column: str, copies: Sequence[KeptData]) -> int:
    """Rows of `table` (as it is now, without `column`) that no kept copy of `column` has a value for: written after
    the copies were made. Every row when a copy's key is gone from the table. 0 when the table is gone (a rollback
    re-creates it from kept rows) or still has the column."""
    target = await read_target(conn, table)
    if target is None or column in target.columns:
        return 0
    unmatched = []
    for k in copies:
        if any(key not in target.columns for key in k.key_columns):
            unmatched = ["true"]
            break
        match = " AND ".join(f"t.{quote_ident(key)}::text = k.{quote_ident(key)}" for key in k.key_columns)
        unmatched.append(f"NOT EXISTS (SELECT FROM {qualified(LEDGER_SCHEMA, k.kept_table)} k WHERE {match})")
    where = " AND ".join(unmatched) or "true"
    return int(await conn.fetchval(f"SELECT count(*) FROM {target.sql_name} t WHERE {where}"))
