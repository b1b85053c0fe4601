"""The independent judge: normalised pg_dump output decides whether two schemas are equal."""

from __future__ import annotations

import pytest
from conftest import create_database, drop_database
from support_plan import run_sql

from pgshift.tools.errors import DatabaseError
from pgshift.tools.judge import dump_schema, judge_equal, normalise_dump
from pgshift.tools.localpg import LocalPostgres, embedded_bin_dir

DUMP = """--
-- PostgreSQL database dump
--

\\restrict abc123

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: t; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.t (
    a integer,
    b text
);


ALTER TABLE public.t OWNER TO postgres;

--
-- Name: f(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.f() RETURNS integer
    LANGUAGE plpgsql
    AS $$ begin
-- keep me
 return 1; end $$;

--
-- PostgreSQL database dump complete
--

\\unrestrict abc123
"""


def test_normalising_ignores_noise_entry_order_and_column_order() -> None:
    reordered = DUMP.replace("    a integer,\n    b text\n", "    b text,\n    a integer\n").replace(
        "\\restrict abc123", "\\restrict zzz"
    )
    entries = reordered.split("--\n-- Name: ")
    swapped = entries[0] + "--\n-- Name: " + entries[2] + "--\n-- Name: " + entries[1]
    norm = normalise_dump(DUMP)
    assert normalise_dump(swapped) == norm
    assert "SET statement_timeout" not in norm and "restrict" not in norm and "Owner:" not in norm


def test_normalising_keeps_what_matters_inside_definitions() -> None:
    assert "-- keep me" in normalise_dump(DUMP)
    assert normalise_dump(DUMP.replace("-- keep me", "-- changed")) != normalise_dump(DUMP)
    assert normalise_dump(DUMP.replace("    b text\n", "    b varchar\n")) != normalise_dump(DUMP)


async def test_judge_finds_databases_equal_up_to_column_order_and_shows_a_diff_otherwise(pg18: LocalPostgres) -> None:
    a, b, c = await create_database(pg18), await create_database(pg18), await create_database(pg18)
    try:
        await run_sql(a, "create table t(a int, b text); create view v as select a from t;")
        await run_sql(b, "create table t(b text, a int); create view v as select a from t;")
        await run_sql(c, "create table t(a bigint, b text); create view v as select a from t;")
        assert await judge_equal(a, b, embedded_bin_dir()) == (True, "")
        equal, diff = await judge_equal(a, c, embedded_bin_dir())
        assert not equal
        assert "-    a integer," in diff and "+    a bigint," in diff
    finally:
        for url in (a, b, c):
            await drop_database(pg18, url)


async def test_a_failed_dump_raises_a_database_error_without_the_password(pg18: LocalPostgres) -> None:
    url = pg18.url("no_such_database")
    with pytest.raises(DatabaseError) as info:
        await dump_schema(url, embedded_bin_dir())
    assert pg18.password not in str(info.value)
    assert "no_such_database" in str(info.value)
