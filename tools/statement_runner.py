"""One statement, one command: how every SQL text that is not our own fixed SQL reaches PostgreSQL.

A migration's statements, a dry run's, a compare plan's and an `execute_sql` call's all go through
`run_statement`. It sends the text over the extended protocol as ONE prepared statement, so PostgreSQL itself
refuses a text holding a second command (SQLSTATE 42601, "cannot insert multiple commands into a prepared
statement") whatever a splitter believed; the simple-query protocol (`conn.execute(text)` without arguments)
would have run them all. Utility statements work the same way (CREATE INDEX CONCURRENTLY, VACUUM, ALTER TYPE
... ADD VALUE, DO blocks: checked on PostgreSQL 15 and 18).

Rows a statement returns are read through a cursor, within a `RowBudget` (rows, bytes of row data, characters
per value); the rest is discarded without being kept. Long values are cut on the server when the caller
proved the statement's shape (`Wrap`), so a 200 MB value never crosses the wire.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any

import asyncpg
from asyncpg.prepared_stmt import PreparedStatement

from pgshift.tools.migrations.parse import SqlStatement
from pgshift.tools.plan.statement import Statement as PlanStatement
from pgshift.tools.sql import quote_ident

ROW_BYTES = 256 * 1024
VALUE_CHARS = 8 * 1024
FETCH_BATCH = 50

# Types kept as they are: fixed length (typlen > 0) values are small; numeric is bounded (~150 KB at most).
TYPLEN_SQL = "SELECT oid, typlen FROM pg_catalog.pg_type WHERE oid = ANY($1::oid[])"
NUMERIC_OID = 1700


@dataclass(frozen=True)
class Command:
    """One SQL command and the settings it runs with."""

    sql: str
    lock_timeout_ms: int | None = None

    @classmethod
    def of(cls, statement: Command | SqlStatement | PlanStatement | str) -> Command:
        """A migration statement (its text as prepared), a plan statement (its lock timeout kept) or raw text."""
        if isinstance(statement, Command):
            return statement
        if isinstance(statement, SqlStatement):
            return cls(statement.text)
        if isinstance(statement, PlanStatement):
            return cls(statement.sql, statement.lock_timeout_ms)
        return cls(statement)


class Wrap(Enum):
    """A shape the caller proved from the parse tree, which lets long values be cut on the server."""

    QUERY = "query"  # a plain SELECT / VALUES / TABLE / WITH ... SELECT: wrapped as a subquery
    RETURNING = "returning"  # INSERT / UPDATE / DELETE ... RETURNING: wrapped as a data-modifying CTE


@dataclass(frozen=True)
class RowBudget:
    """How much of a statement's rows the caller keeps; the rest is read and discarded."""

    rows: int = 0
    bytes: int = ROW_BYTES
    value_chars: int = VALUE_CHARS
    drain: bool = True
    """Read the rows past the budget too (a migration's `SELECT f(x) FROM t` must run to its end); False stops
    reading at the first row past the budget (execute_sql: the answer is complete at that point)."""


NO_ROWS = RowBudget(rows=0)


@dataclass(frozen=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True)
class Outcome:
    """What a statement returned, within the budget."""

    status: str
    columns: tuple[Column, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    truncated: str | None = None
    """Why rows or values were left out (None: the answer is whole)."""
    values_cut: int = 0


async def run_statement(
    conn: asyncpg.Connection,
    statement: Command | SqlStatement | PlanStatement | str,
    *,
    budget: RowBudget = NO_ROWS,
    wrap: Wrap | None = None,
) -> Outcome:
    """Run one statement on `conn` as one prepared statement; its rows within `budget`.

    The lock timeout a plan statement asks for is set for this statement and restored after it. Rows are read
    through a cursor inside a transaction (the caller's, or one opened for this statement when it returns rows
    and none is open). With `wrap`, variable-length values are cut to `budget.value_chars` by the server.
    """
    command = Command.of(statement)
    async with _lock_timeout(conn, command.lock_timeout_ms):
        prepared = await conn.prepare(command.sql)
        attributes = prepared.get_attributes()
        if not attributes:
            await prepared.fetch()
            return Outcome(status=prepared.get_statusmsg() or "")
        columns = tuple(Column(a.name, a.type.name) for a in attributes)
        if wrap is not None:
            wrapped = await _wrapped(conn, command.sql, attributes, wrap, budget.value_chars)
            if wrapped is not None:
                prepared = wrapped
        if conn.is_in_transaction():
            return await _read(prepared, columns, budget)
        async with conn.transaction():
            return await _read(prepared, columns, budget)


@asynccontextmanager
async def _lock_timeout(conn: asyncpg.Connection, lock_timeout_ms: int | None) -> AsyncIterator[None]:
    if lock_timeout_ms is None:
        yield
        return
    previous = await conn.fetchval("SELECT current_setting('lock_timeout')")
    await conn.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
    restore = "SELECT pg_catalog.set_config('lock_timeout', $1, false)"
    try:
        yield
    except BaseException:
        # In a failed transaction the SET is undone by its rollback; outside one, restore it if we still can.
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError):
            await conn.execute(restore, previous)
        raise
    await conn.execute(restore, previous)


async def _wrapped(
    conn: asyncpg.Connection, sql: str, attributes: Any, wrap: Wrap, cap: int
) -> PreparedStatement | None:
    """`sql` with every variable-length column cut to `cap` + 1 characters by the server (None: nothing to cut).

    The author's text sits on its own lines, so a trailing `--` comment cannot swallow the wrapper; the column
    names of the answer stay the statement's own.
    """
    lengths = dict(await conn.fetch(TYPLEN_SQL, [a.type.oid for a in attributes]))
    cut = [lengths.get(a.type.oid, -1) < 0 and a.type.oid != NUMERIC_OID for a in attributes]
    if not any(cut):
        return None
    aliases = ", ".join(f"c{i}" for i in range(1, len(attributes) + 1))
    select = ", ".join(
        (f"left(q.c{i}::text, {int(cap) + 1})" if c else f"q.c{i}") + f" AS {quote_ident(a.name)}"
        for i, (a, c) in enumerate(zip(attributes, cut, strict=True), start=1)
    )
    if wrap is Wrap.QUERY:
        text = f"SELECT {select} FROM (\n{sql}\n) AS q({aliases})"
    else:
        text = f"WITH q({aliases}) AS (\n{sql}\n) SELECT {select} FROM q"
    return await conn.prepare(text)


async def _read(prepared: PreparedStatement, columns: tuple[Column, ...], budget: RowBudget) -> Outcome:
    """Rows through a cursor: at most `budget.rows` and `budget.bytes`; the rest read and discarded."""
    cursor = await prepared.cursor()
    kept: list[tuple[Any, ...]] = []
    size = 0
    values_cut = 0
    truncated: str | None = None
    keys = sum(len(c.name) + 6 for c in columns)  # a row is answered as an object keyed by column name
    while True:
        batch = await cursor.fetch(FETCH_BATCH)
        for record in batch:
            if truncated is not None:
                break
            if len(kept) >= budget.rows:
                if budget.rows:
                    truncated = f"more than {budget.rows} rows: only the first {budget.rows} are returned"
                else:
                    truncated = "rows are not returned"
                continue
            row, cut = _capped(tuple(record.values()), budget.value_chars)
            row_size = keys + sum(_size(v) for v in row)
            if kept and size + row_size > budget.bytes:
                truncated = (
                    f"the rows exceed the answer's budget of {budget.bytes} bytes: only the first {len(kept)} "
                    "are returned"
                )
                continue
            kept.append(row)
            size += row_size
            values_cut += cut
        if len(batch) < FETCH_BATCH or (truncated is not None and not budget.drain):
            break
    if values_cut:
        cut_note = f"{values_cut} value(s) longer than {budget.value_chars} characters were cut"
        truncated = f"{truncated}; {cut_note}" if truncated else cut_note
    return Outcome(
        status=prepared.get_statusmsg() or "",
        columns=columns,
        rows=tuple(kept),
        truncated=truncated,
        values_cut=values_cut,
    )


def _capped(row: tuple[Any, ...], cap: int) -> tuple[tuple[Any, ...], int]:
    out: list[Any] = []
    cut = 0
    for v in row:
        if isinstance(v, str | bytes) and len(v) > cap:
            out.append(v[:cap] + "…" if isinstance(v, str) else v[:cap])
            cut += 1
        else:
            out.append(v)
    return tuple(out), cut


def _size(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str | bytes):
        return len(value)
    return len(str(value))
