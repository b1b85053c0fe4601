"""A range type whose options change while columns, a domain, a composite type and a function use it: the plan
renames the old type aside (with its multirange and constructors), creates the new one, casts the rows through text,
rebuilds what is over it and drops the old type. Applied on 15 and 18, judged equal by `pg_dump`, planned again
(empty); the rows are read back on our own connection."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from conftest import create_database, drop_database
from support_plan import apply_plan, read_schema, run_sql

from pgshift.tools.judge import judge_equal
from pgshift.tools.localpg import LocalPostgres, embedded_bin_dir
from pgshift.tools.plan import plan_migration
from pgshift.tools.plan.dependencies import signature_types

SUBTYPE = """
CREATE TYPE span AS RANGE (subtype = {subtype});
CREATE TABLE bookings (
  id int PRIMARY KEY,
  during span NOT NULL DEFAULT span(1, 2),
  busy span_multirange,
  history span[],
  EXCLUDE USING gist (during WITH &&)
);
CREATE FUNCTION width(s span) RETURNS bigint LANGUAGE sql IMMUTABLE RETURN upper(s) - lower(s);
CREATE VIEW wide AS SELECT id, width(during) AS w FROM bookings;
"""
SUBTYPE_ROWS = """
INSERT INTO bookings VALUES (1, '[1,5)', '{[1,3), [7,9)}', '{"[2,4)"}'), (2, '[10,20]', NULL, NULL);
"""
COLLATION = """
CREATE TYPE words AS RANGE (subtype = text, collation = {collation});
CREATE DOMAIN short_words AS words CHECK (NOT isempty(VALUE));
CREATE TYPE entry AS (label text, letters words);
CREATE TABLE glossary (id int PRIMARY KEY, letters words, short short_words, item entry);
"""
COLLATION_ROWS = """
INSERT INTO glossary VALUES (1, '[a,m)', '[b,c]', ROW('x', '[d,f)')), (2, NULL, NULL, NULL);
"""
CASES = {
    "subtype": (
        SUBTYPE.format(subtype="int4") + SUBTYPE_ROWS + "ALTER TABLE bookings ADD COLUMN gone span_multirange;",
        SUBTYPE.format(subtype="int8"),
        "SELECT during::text, busy::text, history::text, (SELECT w FROM wide WHERE wide.id = b.id) FROM bookings b"
        " ORDER BY id",
        [("[1,5)", "{[1,3),[7,9)}", '{"[2,4)"}', 4), ("[10,20]", None, None, 10)],
        "span",
    ),
    "collation": (
        COLLATION.format(collation='"C"') + COLLATION_ROWS,
        COLLATION.format(collation='"POSIX"'),
        "SELECT letters::text, short::text, item::text FROM glossary ORDER BY id",
        [("[a,m)", "[b,c]", '(x,"[d,f)")'), (None, None, None)],
        "words",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_a_changed_range_type_in_use_is_rebuilt_with_its_rows(pg: LocalPostgres, case: str) -> None:
    old, new, query, rows, range_name = CASES[case]
    target, source = await asyncio.gather(create_database(pg), create_database(pg))
    try:
        await asyncio.gather(run_sql(target, old), run_sql(source, new))
        src, tgt = await asyncio.gather(read_schema(source), read_schema(target))
        plan = plan_migration(src, tgt, allow_data_loss=True)
        await apply_plan(target, plan)
        equal, diff = await judge_equal(target, source, embedded_bin_dir())
        assert equal, f"{diff}\n{plan.script}"
        assert plan_migration(src, await read_schema(target)).is_empty, plan.script
        conn = await asyncpg.connect(target)
        try:
            assert [tuple(r) for r in await conn.fetch(query)] == rows
            wanted = await conn.fetchrow(
                "SELECT format_type(rngsubtype, NULL) AS subtype, rngcollation::regcollation::text AS collation"
                " FROM pg_range WHERE rngtypid = $1::regtype",
                range_name,
            )
            expected = await _range_options(source, range_name)
            assert dict(wanted) == expected
            leftovers = await conn.fetchval("SELECT count(*) FROM pg_type WHERE typname LIKE '%pgshift_old%'")
            assert leftovers == 0
            constructors = await conn.fetchval("SELECT count(*) FROM pg_proc WHERE proname LIKE '%pgshift_old%'")
            assert constructors == 0
        finally:
            await conn.close()
    finally:
        await asyncio.gather(drop_database(pg, target), drop_database(pg, source))


async def _range_options(url: str, range_name: str) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT format_type(rngsubtype, NULL) AS subtype, rngcollation::regcollation::text AS collation"
            " FROM pg_range WHERE rngtypid = $1::regtype",
            range_name,
        )
        return dict(row)
    finally:
        await conn.close()


def test_a_function_signature_names_the_range_types_it_takes_and_returns() -> None:
    assert signature_types("VARIADIC v public.span[], n integer", "SETOF public.span_multirange") >= {
        "public.span",
        "integer",
        "public.span_multirange",
    }
    assert "public.span" in signature_types("", "TABLE(a double precision, b public.span)")
    assert "double precision" in signature_types("x double precision", None)
    assert "public.span" not in signature_types("x public.spans", "public.spanned")
