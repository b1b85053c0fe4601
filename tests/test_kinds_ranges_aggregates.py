"""Range types and aggregates are compared and planned; the constructor functions PostgreSQL makes for a range type
are not functions of the app (no spurious function or grant). Each plan is applied, judged equal by `pg_dump` and
planned again (empty)."""

from __future__ import annotations

import asyncio

import pytest
from conftest import create_database, drop_database
from support_plan import apply_plan, read_schema, run_sql

from pgshift.tools.diff import diff_schemas
from pgshift.tools.judge import judge_equal
from pgshift.tools.localpg import LocalPostgres, embedded_bin_dir
from pgshift.tools.plan import plan_migration

OBJECTS = """
CREATE TYPE floatrange AS RANGE (subtype = float8, subtype_diff = float8mi);
COMMENT ON TYPE floatrange IS 'a range';
CREATE TABLE readings (id int PRIMARY KEY, span floatrange, spans floatmultirange);
CREATE FUNCTION add_len(acc float8, r floatrange) RETURNS float8 LANGUAGE sql IMMUTABLE
  RETURN acc + coalesce(upper(r) - lower(r), 0);
CREATE AGGREGATE total_length (floatrange) (SFUNC = add_len, STYPE = float8, INITCOND = '0');
CREATE AGGREGATE my_sum (int) (SFUNC = int4pl, STYPE = int, PARALLEL = SAFE);
"""
CHANGED = (
    OBJECTS.replace("INITCOND = '0'", "INITCOND = '1'")
    .replace("'a range'", "'another'")
    .replace("PARALLEL = SAFE", "COMBINEFUNC = int4pl, PARALLEL = SAFE")
)
# The range type itself changes under the table, the function and the aggregates that use it (rebuilt, rows kept).
REBUILT = CHANGED.replace(", subtype_diff = float8mi", "") + "INSERT INTO readings VALUES (1, '[1,2.5)', '{[0,1]}');"
CASES = {
    "created": ("", OBJECTS),
    "changed": (CHANGED, OBJECTS),
    "dropped": (OBJECTS, ""),
    "rebuilt": (REBUILT, OBJECTS),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_range_types_and_aggregates_are_planned_and_converge(pg: LocalPostgres, case: str) -> None:
    old, new = CASES[case]
    target, source = await asyncio.gather(create_database(pg), create_database(pg))
    try:
        await asyncio.gather(run_sql(target, old), run_sql(source, new))
        src, tgt = await asyncio.gather(read_schema(source), read_schema(target))
        kinds = {c.kind for c in diff_schemas(src, tgt).changes}
        assert {"range_type", "aggregate"} <= kinds
        plan = plan_migration(src, tgt, allow_data_loss=True)
        await apply_plan(target, plan)
        equal, diff = await judge_equal(target, source, embedded_bin_dir())
        assert equal, f"{diff}\n{plan.script}"
        assert plan_migration(src, await read_schema(target)).is_empty
    finally:
        await asyncio.gather(drop_database(pg, target), drop_database(pg, source))


async def test_the_functions_postgresql_makes_for_a_range_type_are_not_the_apps(pg18: LocalPostgres) -> None:
    url = await create_database(pg18)
    try:
        await run_sql(url, OBJECTS + "REVOKE ALL ON FUNCTION floatrange(float8, float8) FROM PUBLIC;")
        schema = await read_schema(url)
        assert {f.name for f in schema.functions} == {"add_len"}
        assert not any("floatrange(" in p.object or "floatmultirange(" in p.object for p in schema.privileges)
        assert [r.key for r in schema.range_types] == ["public.floatrange"]
        aggregates = {a.key for a in schema.aggregates}
        assert aggregates == {"public.my_sum(integer)", "public.total_length(public.floatrange)"}
        assert not any(o.kind in ("range_type", "aggregate") for o in schema.uncompared)
    finally:
        await drop_database(pg18, url)
