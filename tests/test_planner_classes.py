"""The two planner classes of issue 19, each proven on PostgreSQL 15 and 18 by the judge (normalised pg_dump), an
empty second plan and the target's rows read back on a connection of our own:

- an enum whose values change (so it is recreated) while domains, composites and arrays over it, to any depth, are
  used by table columns: rebuilt in one transaction, in dependency order, keeping the rows;
- a column made NOT NULL over rows that hold NULL: a constant default is backfilled by the plan (a hazard says it
  writes rows); a volatile default or none is a blocker counted on the target's rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from conftest import create_database, drop_database
from support_plan import apply_plan, ensure_role, read_schema, run_sql

from pgshift.tools.judge import judge_equal
from pgshift.tools.localpg import LocalPostgres, embedded_bin_dir
from pgshift.tools.plan import Plan, plan_migration
from pgshift.tools.plan.rows import count_blockers
from pgshift.tools.plan.statement import HazardKind


@asynccontextmanager
async def _pair(pg: LocalPostgres, old: str, new: str) -> AsyncIterator[tuple[str, str]]:
    """A target holding `old` and a source holding `new`, dropped afterwards."""
    await ensure_role(pg.url())
    target, source = await asyncio.gather(create_database(pg), create_database(pg))
    try:
        await asyncio.gather(run_sql(target, old), run_sql(source, new))
        yield target, source
    finally:
        await asyncio.gather(drop_database(pg, target), drop_database(pg, source))


async def _converges(pg: LocalPostgres, target: str, source: str, *, online: bool = False) -> Plan:
    """Plan, apply, judge equal and re-plan empty; the plan applied."""
    src = await read_schema(source)
    plan = plan_migration(src, await read_schema(target), allow_data_loss=True, online=online)
    assert not plan.is_empty
    try:
        await apply_plan(target, plan)
    except asyncpg.PostgresError as e:
        pytest.fail(f"on {pg.version}: {e!r}\n{plan.script}")
    equal, diff = await judge_equal(target, source, embedded_bin_dir())
    assert equal, f"on {pg.version}:\n{diff}\n{plan.script}"
    replan = plan_migration(src, await read_schema(target))
    assert replan.is_empty, f"on {pg.version}: second plan not empty\n{replan.script}"
    return plan


async def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


ENUM_CHAINS = {
    "domain_inside_a_composite": (
        "create domain d as e; create type c as (x d, n int); create table t(id int, y c);",
        "insert into t values (1, row('a', 1)), (2, row('c', 2)), (3, null);",
        "select id, (y).x::text, (y).n from t order by id",
        [(1, "a", 1), (2, "c", 2), (3, None, None)],
    ),
    "domain_over_a_domain_inside_a_composite_inside_a_composite": (
        "create domain d1 as e; create domain d2 as d1 check (value::text <> 'a');"
        " create type c1 as (x d2); create type c2 as (inner_ c1, n int);"
        " create table t(id int, y c2, z c2[]);",
        "insert into t values (1, row(row('c'), 1), array[row(row('c'), 2)::c2]), (2, null, null);",
        "select id, ((y).inner_).x::text, (z[1]).n from t order by id",
        [(1, "c", 2), (2, None, None)],
    ),
    "composite_column_read_by_a_view_and_a_function": (
        "create domain d as e; create type c as (x d, n int); create table t(id int, y c default row('c', 0));"
        " create view v as select id, (y).x from t;"
        " create function f(c) returns text language sql immutable as 'select ($1).x::text';",
        "insert into t values (1, row('a', 1)), (2, default);",
        "select id, x::text from v order by id",
        [(1, "a"), (2, "c")],
    ),
    "arrays_of_the_enum_in_a_domain_and_a_composite": (
        "create domain d as e[]; create type c as (xs e[], d d); create table t(id int, y c, w d, v c[]);",
        "insert into t values"
        " (1, row(array['a','c']::e[], array['c']::e[]), array['a']::e[], array[row(null, null)::c]);",
        "select id, (y).xs::text, w::text, array_length(v, 1) from t order by id",
        [(1, "{a,c}", "{a}", 1)],
    ),
}


@pytest.mark.parametrize("shape", list(ENUM_CHAINS), ids=list(ENUM_CHAINS))
async def test_an_enum_losing_a_value_is_rebuilt_through_domains_and_composites_keeping_the_rows(
    pg: LocalPostgres, shape: str
) -> None:
    ddl, rows, read, expected = ENUM_CHAINS[shape]
    old = f"create type e as enum ('a', 'b', 'c'); {ddl} {rows}"
    new = f"create type e as enum ('c', 'a'); {ddl}"
    async with _pair(pg, old, new) as (target, source):
        await _converges(pg, target, source)
        assert await _rows(target, read) == expected


NULLS_OLD = "create table t(id int primary key, plan text); insert into t values (1, null), (2, 'pro'), (3, null);"


@pytest.mark.parametrize("online", [False, True], ids=["offline", "online"])
@pytest.mark.parametrize(
    "column",
    ["plan text not null default 'free'", "plan text constraint plan_required not null default 'free'"],
    ids=["default_not_null_name", "named_not_null"],
)
async def test_a_column_made_not_null_with_a_constant_default_backfills_its_nulls_and_says_it_writes_rows(
    pg: LocalPostgres, column: str, online: bool
) -> None:
    async with _pair(pg, NULLS_OLD, f"create table t(id int primary key, {column});") as (target, source):
        plan = await _converges(pg, target, source, online=online)
        (update,) = [s for s in plan.statements if s.sql.startswith("UPDATE")]
        assert update.sql == "UPDATE public.t SET plan = 'free'::text WHERE plan IS NULL"
        assert [h.kind for h in update.hazards] == [HazardKind.WRITES_ROWS]
        assert "constant" in update.hazards[0].message and "blocker" in update.hazards[0].message
        assert plan.row_checks == ()  # nothing left in the way: no blocker to count
        assert await _rows(target, "select id, plan from t order by id") == [(1, "free"), (2, "pro"), (3, "free")]


@pytest.mark.parametrize(
    "column",
    [
        "plan text not null default md5(random()::text)",
        "plan text not null default current_user",
        "plan text not null",
    ],
    ids=["volatile_default", "stable_default", "no_default"],
)
async def test_a_column_made_not_null_without_a_constant_default_is_a_blocker_counted_on_the_targets_rows(
    pg: LocalPostgres, column: str
) -> None:
    async with _pair(pg, NULLS_OLD, f"create table t(id int primary key, {column});") as (target, source):
        src = await read_schema(source)
        plan = plan_migration(src, await read_schema(target))
        assert not any(s.sql.startswith("UPDATE") for s in plan.statements)
        conn = await asyncpg.connect(target)
        try:
            (blocker,) = (await count_blockers(conn, plan)).blockers
            assert (blocker.object, blocker.rows) == ("column public.t.plan", 2)
            assert await conn.fetchval("select count(*) from t where plan is null") == 2  # counting wrote nothing
            # The person decides: the offered backfill (when the default implies one), or their own values.
            await conn.execute(blocker.backfill or "update t set plan = 'chosen' where plan is null")
        finally:
            await conn.close()
        await _converges(pg, target, source)
        assert await _rows(target, "select count(*) from t where plan is null or id = 2 and plan <> 'pro'") == [(0,)]


async def test_a_domain_changing_its_base_type_is_rebuilt_with_the_composite_over_it_keeping_the_rows(
    pg: LocalPostgres,
) -> None:
    shared = "create type c as (x d, n int); create table t(id int, y c, z c[]);"
    old = f"create domain d as int; {shared} insert into t values (1, row(7, 1), array[row(8, 2)::c]), (2, null, null);"
    async with _pair(pg, old, f"create domain d as bigint; {shared}") as (target, source):
        await _converges(pg, target, source)
        read = "select id, (y).x, (z[1]).x from t order by id"
        assert await _rows(target, read) == [(1, 7, 8), (2, None, None)]
