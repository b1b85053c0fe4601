"""Count, on the target, the rows that would make a plan's statements fail (the I/O around `Plan.row_checks`).

A new NOT NULL over NULL rows or a new UNIQUE over duplicates fails halfway through an apply; counted at plan time,
it is a `Blocker` in the plan instead. Every count is bounded: it runs in a READ ONLY transaction with a statement
timeout, and a table whose estimate (`pg_class.reltuples`) is above `max_rows` is not counted at all; either way
the blocker says the count is unknown. The SQL is ours, built from the model's quoted names.
"""

from __future__ import annotations

import asyncpg

from pgshift.tools.plan.statement import Blocker, Plan, RowCheck
from pgshift.tools.sql import quote_ident, quote_literal

MAX_ROWS = 5_000_000
TIMEOUT_MS = 5_000


def count_sql(check: RowCheck) -> str:
    """The count of the rows in the way of `check`."""
    names = [quote_ident(c) for c in check.columns]
    if check.kind == "any_rows":
        return f"SELECT count(*) FROM {check.table}"
    if check.kind == "null_rows":
        return f"SELECT count(*) FROM {check.table} WHERE {names[0]} IS NULL"
    filled = " AND ".join(f"{n} IS NOT NULL" for n in names)
    where = f"{filled} AND ({check.predicate})" if check.predicate else filled
    groups = ", ".join(names)
    return (
        f"SELECT coalesce(sum(n - 1), 0)::bigint FROM (SELECT count(*) AS n FROM {check.table} WHERE {where}"
        f" GROUP BY {groups} HAVING count(*) > 1) AS d"
    )


def _message(check: RowCheck, rows: int | None, why: str = "") -> str:
    what = {
        "null_rows": f"NULL in {', '.join(check.columns)}",
        "any_rows": f"existing rows that {check.columns[0]} (NOT NULL, no default) would leave NULL",
        "duplicate_rows": f"duplicates over ({', '.join(check.columns)})",
    }[check.kind]
    if rows is None:
        return f"{check.object}: rows of {check.table} with {what} were not counted ({why}); check before applying"
    fix = f"; run `{check.backfill}` first" if check.backfill else "; fix those rows first"
    return f"{check.object} would fail: {rows} row(s) of {check.table} with {what}{fix}"


def _blocker(check: RowCheck, rows: int | None, why: str = "") -> Blocker:
    return Blocker(
        kind=check.kind,
        object=check.object,
        table=check.table,
        rows=rows,
        message=_message(check, rows, why),
        backfill=check.backfill,
    )


async def count_blockers(
    conn: asyncpg.Connection, plan: Plan, *, max_rows: int = MAX_ROWS, timeout_ms: int = TIMEOUT_MS
) -> Plan:
    """`plan` with a blocker for every row check that finds rows in the way on the target behind `conn` (or that
    could not be counted). Read-only: in its own READ ONLY transaction, or inside the caller's (a pooled read-only
    connection), whose statement timeout it puts back afterwards."""
    checks = plan.row_checks
    if not checks:
        return plan
    if conn.is_in_transaction():
        blockers = await _count(conn, checks, max_rows, timeout_ms)
    else:
        async with conn.transaction(readonly=True):
            blockers = await _count(conn, checks, max_rows, timeout_ms)
    return plan.model_copy(update={"blockers": tuple(blockers)})


# Every table's row estimate in one round trip (a plan over thousands of tables may check hundreds).
_ESTIMATES = (
    "SELECT t.name, c.reltuples FROM pg_catalog.unnest($1::text[]) AS t(name)"
    " LEFT JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(t.name)"
)


async def _count(
    conn: asyncpg.Connection, checks: tuple[RowCheck, ...], max_rows: int, timeout_ms: int
) -> list[Blocker]:
    original = await conn.fetchval("SELECT pg_catalog.current_setting('statement_timeout')")
    tables = sorted({check.table for check in checks})
    estimates = {name: estimate for name, estimate in await conn.fetch(_ESTIMATES, tables)}
    # Only the count runs under the short timeout, inside a savepoint: a cancelled count must not end the caller's
    # transaction, and rolling back to the savepoint also puts the caller's statement_timeout back. The setting
    # statements go in one round trip each (simple protocol; the values are ours: a number and the old setting).
    enter = (
        "SAVEPOINT pgshift_row_check;"
        f" SELECT pg_catalog.set_config('statement_timeout', {quote_literal(f'{int(timeout_ms)}ms')}, true)"
    )
    leave = (
        f"SELECT pg_catalog.set_config('statement_timeout', {quote_literal(original)}, true);"
        " RELEASE SAVEPOINT pgshift_row_check"
    )
    blockers = []
    for check in checks:
        blocker = await _check(conn, check, estimates.get(check.table), max_rows, timeout_ms, (enter, leave))
        if blocker is not None:
            blockers.append(blocker)
    return blockers


async def _check(
    conn: asyncpg.Connection,
    check: RowCheck,
    estimate: float | None,
    max_rows: int,
    timeout_ms: int,
    statements: tuple[str, str],
) -> Blocker | None:
    if estimate is not None and estimate > max_rows:
        return _blocker(check, None, f"about {int(estimate)} rows, more than {max_rows}")
    enter, leave = statements
    await conn.execute(enter)
    try:
        rows = await conn.fetchval(count_sql(check))
    except asyncpg.QueryCanceledError:
        await conn.execute("ROLLBACK TO SAVEPOINT pgshift_row_check")
        return _blocker(check, None, f"the count took longer than {timeout_ms} ms")
    await conn.execute(leave)
    return _blocker(check, int(rows)) if rows else None
