"""Objects of kinds pgshift does not compare are read and reported by kind and name, never passed over in silence."""

from __future__ import annotations

import argparse
import asyncio

import pytest
from support_introspect import databases, read

from pgshift.server.commands import add_compare_arguments, render_compare, run_compare
from pgshift.tools.compare import CompareResult, compare_schemas
from pgshift.tools.databases import Databases
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.model import Schema, Table, UncomparedObject

BASE = """
CREATE TABLE t (id int PRIMARY KEY, body text, n int);
CREATE TABLE t_log (id int);
"""
# One object of every kind not compared (the event trigger's function is an ordinary, compared one).
UNSUPPORTED = (
    BASE
    + """
CREATE RULE t_log_insert AS ON INSERT TO t DO ALSO INSERT INTO t_log VALUES (NEW.id);
CREATE STATISTICS t_stats (dependencies) ON id, n FROM t;
ALTER TABLE t ALTER COLUMN body SET STORAGE EXTERNAL;
ALTER TABLE t ALTER COLUMN n SET STATISTICS 500;
CREATE AGGREGATE my_rank (int ORDER BY int) (SFUNC = int4pl, STYPE = int);
CREATE FOREIGN DATA WRAPPER dummy;
CREATE SERVER remote FOREIGN DATA WRAPPER dummy;
CREATE FOREIGN TABLE remote_t (id int) SERVER remote;
CREATE FUNCTION on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
CREATE EVENT TRIGGER on_ddl ON ddl_command_end EXECUTE FUNCTION on_ddl();
"""
)
EXPECTED = {
    ("rule", "public.t.t_log_insert", None),
    ("statistics", "public.t_stats", None),
    ("column_storage", "public.t.body", "EXTERNAL"),
    ("column_statistics", "public.t.n", "500"),
    ("aggregate", "public.my_rank(integer ORDER BY integer)", None),
    ("foreign_data_wrapper", "dummy", None),
    ("foreign_server", "remote", None),
    ("foreign_table", "public.remote_t", None),
    ("event_trigger", "on_ddl", "ddl_command_end"),
}


def _found(schema: Schema) -> set[tuple[str, str, str | None]]:
    return {(o.kind, o.name, o.detail) for o in schema.uncompared}


async def _compare(source: str, target: str, **options: object) -> CompareResult:
    db = Databases.from_urls({"local": source, "production": target})
    try:
        return await compare_schemas(db, "local", "production", **options)  # type: ignore[arg-type]
    finally:
        await db.close()


async def test_every_object_of_a_kind_not_compared_is_read_by_kind_and_qualified_name(pg: LocalPostgres) -> None:
    async with databases((pg, UNSUPPORTED)) as (url,):
        schema = await read(url)
    assert _found(schema) == EXPECTED


async def test_what_defines_each_object_is_read_with_it(pg: LocalPostgres) -> None:
    async with databases((pg, UNSUPPORTED)) as (url,):
        schema = await read(url)
    found = {o.name: o.definition for o in schema.uncompared}
    assert found["public.t.t_log_insert"] is not None and "INSERT INTO public.t_log" in found["public.t.t_log_insert"]
    assert found["public.remote_t"] == "(id integer) SERVER remote"
    assert found["on_ddl"] == "EXECUTE FUNCTION public.on_ddl ENABLE O"


async def test_a_schema_selection_leaves_database_wide_objects_out(pg18: LocalPostgres) -> None:
    async with databases((pg18, UNSUPPORTED)) as (url,):
        schema = await read(url, schemas=["public"])
    assert _found(schema) == {e for e in EXPECTED if e[1].startswith("public.")}


async def test_extension_objects_and_managed_schemas_are_not_listed(pg18: LocalPostgres) -> None:
    # citext brings its own aggregates (min, max); auth is Supabase-managed.
    sql = (
        "CREATE EXTENSION citext; CREATE SCHEMA auth;"
        " CREATE AGGREGATE auth.r (int ORDER BY int) (SFUNC = int4pl, STYPE = int);"
    )
    async with databases((pg18, sql)) as (url,):
        schema = await read(url)
    assert schema.uncompared == ()


def test_a_schema_without_uncompared_objects_keeps_its_fingerprint() -> None:
    plain = Schema(tables=(Table("public", "t", ()),))
    rule = UncomparedObject("rule", "public.t.r")
    assert Schema(tables=plain.tables, uncompared=()).fingerprint() == plain.fingerprint()
    assert Schema(tables=plain.tables, uncompared=(rule,)).fingerprint() != plain.fingerprint()
    assert Schema(tables=plain.tables, uncompared=(rule,)) == plain  # never a compared difference


async def test_compare_stays_in_sync_but_says_how_many_objects_it_did_not_compare_on_each_side(
    pg18: LocalPostgres,
) -> None:
    async with databases((pg18, UNSUPPORTED), (pg18, BASE + "CREATE RULE r AS ON DELETE TO t DO INSTEAD NOTHING;")) as (
        local,
        production,
    ):
        # The event trigger's function is a compared kind.
        result = await _compare(local, production, exclude_kinds=["function", "privilege"])
    assert result.in_sync, [(d.kind, d.name) for d in result.differences.data]
    assert result.uncompared is not None and result.uncompared.boundary_open.startswith("<untrusted-data-")
    sides = {(o.kind, o.name): (o.in_source, o.in_target) for o in result.uncompared.data}
    assert sides[("rule", "public.t.t_log_insert")] == (True, False)
    assert sides[("rule", "public.t.r")] == (False, True)
    assert sides[("statistics", "public.t_stats")] == (True, False)
    assert result.uncompared_count == len(EXPECTED) + 1 and result.uncompared_differ
    assert result.uncompared_note is not None and result.uncompared_note.startswith("10 objects not compared (")
    text = render_compare(result)
    assert text.startswith("in sync: ") and "10 objects not compared" in text
    assert "+ not compared: rule public.t.t_log_insert" in text and "- not compared: rule public.t.r" in text


async def test_compare_of_a_database_with_itself_lists_its_uncompared_objects_without_drift(
    pg18: LocalPostgres,
) -> None:
    async with databases((pg18, UNSUPPORTED)) as (url,):
        result = await _compare(url, url)
    assert result.in_sync and result.uncompared_count == len(EXPECTED) and not result.uncompared_differ
    assert result.uncompared is not None and all(o.in_source and o.in_target for o in result.uncompared.data)


async def test_a_database_without_uncompared_objects_answers_as_before(pg18: LocalPostgres) -> None:
    async with databases((pg18, BASE)) as (url,):
        result = await _compare(url, url)
    assert result.uncompared_count == 0 and result.uncompared is None and result.uncompared_note is None


@pytest.mark.parametrize(("ignore", "code"), [([], 2), (["--ignore-uncompared"], 0)])
async def test_the_cli_drift_gate_fails_on_uncompared_objects_on_one_side_unless_told_to_ignore_them(
    pg18: LocalPostgres, ignore: list[str], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    add_compare_arguments(parser)
    async with databases((pg18, BASE + "CREATE STATISTICS s (dependencies) ON id, n FROM t;"), (pg18, BASE)) as (
        local,
        production,
    ):
        args = parser.parse_args(["--source", local, "--target", production, *ignore])
        assert await asyncio.to_thread(run_compare, args) == code
    out = capsys.readouterr().out
    assert out.startswith("in sync: ") and "+ not compared: statistics public.s" in out


async def test_an_object_not_compared_but_defined_differently_fails_the_drift_gate(
    pg18: LocalPostgres, capsys: pytest.CaptureFixture[str]
) -> None:
    statistics = "CREATE STATISTICS s (dependencies) ON id, n FROM t;"
    parser = argparse.ArgumentParser()
    add_compare_arguments(parser)
    async with databases((pg18, BASE + statistics), (pg18, BASE + statistics.replace("dependencies", "ndistinct"))) as (
        local,
        production,
    ):
        code = await asyncio.to_thread(run_compare, parser.parse_args(["--source", local, "--target", production]))
        result = await _compare(local, production)
    assert code == 2 and result.in_sync and result.uncompared_differ
    assert result.uncompared is not None
    stats = next(o for o in result.uncompared.data if o.kind == "statistics")
    assert (stats.differs, stats.definition, stats.target_definition) == (
        True,
        "CREATE STATISTICS public.s (dependencies) ON id, n FROM public.t",
        "CREATE STATISTICS public.s (ndistinct) ON id, n FROM public.t",
    )
    assert "~ not compared: statistics public.s" in capsys.readouterr().out
