"""compare_schemas and the `compare` command on real PostgreSQL."""

from __future__ import annotations

import argparse
import asyncio
import json

import pytest
from support_introspect import databases

from pgshift.server.commands import add_compare_arguments, run_compare
from pgshift.tools.compare import CompareAnswer, CompareResult, PageRequest, answer_page, compare_schemas
from pgshift.tools.databases import Databases
from pgshift.tools.errors import ConfigError
from pgshift.tools.localpg import LocalPostgres

LOCAL = """
CREATE SCHEMA auth;
CREATE TABLE auth.users (id uuid PRIMARY KEY);
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id),
  name text NOT NULL,
  mood mood DEFAULT 'ok',
  bio text
);
CREATE INDEX profiles_name ON profiles (name);
CREATE SCHEMA reports;
CREATE VIEW reports.names AS SELECT id, name FROM public.profiles;
"""
# Production drifted: a column missing, a default changed, an index missing, an extra table, and a change
# inside a Supabase-managed schema (ignored unless asked for).
PRODUCTION = (
    LOCAL.replace("  bio text\n", "  legacy integer\n")
    .replace("DEFAULT 'ok'", "DEFAULT 'sad'")
    .replace("CREATE INDEX profiles_name ON profiles (name);", "CREATE TABLE audit (at timestamptz);")
    .replace("CREATE TABLE auth.users (id uuid PRIMARY KEY);", "CREATE TABLE auth.users (id uuid PRIMARY KEY, x int);")
)


async def _compare(local: str, production: str, **options: object) -> CompareResult:
    db = Databases.from_urls({"local": local, "production": production})
    try:
        return await compare_schemas(db, "local", "production", **options)  # type: ignore[arg-type]
    finally:
        await db.close()


async def test_a_database_compared_with_itself_is_in_sync(pg: LocalPostgres) -> None:
    async with databases((pg, LOCAL)) as (url,):
        result = await _compare(url, url)
    assert result.in_sync and result.differences.data == [] and result.summary.total == 0


async def test_every_difference_is_reported_with_its_kind_name_and_fields(pg18: LocalPostgres) -> None:
    async with databases((pg18, LOCAL), (pg18, PRODUCTION)) as (local, production):
        result = await _compare(local, production)
    assert not result.in_sync
    found = {(d.kind, d.name, d.change) for d in result.differences.data}
    assert found == {
        ("table", "public.audit", "removed"),
        ("column", "public.profiles.bio", "added"),
        ("column", "public.profiles.legacy", "removed"),
        ("column", "public.profiles.mood", "changed"),
        ("index", "public.profiles_name", "added"),
    }
    mood = next(d for d in result.differences.data if d.name == "public.profiles.mood")
    assert [(f.field, f.before, f.after) for f in mood.fields] == [
        ("default", "'sad'::public.mood", "'ok'::public.mood")
    ]
    added_index = next(d for d in result.differences.data if d.kind == "index")
    assert added_index.definition is not None and "profiles_name" in added_index.definition["definition"]
    assert (result.summary.added, result.summary.removed, result.summary.changed) == (2, 2, 1)
    assert result.summary.by_kind["column"].added == 1
    json.loads(result.model_dump_json())  # the tool result serialises


async def test_managed_schemas_are_compared_only_on_request(pg18: LocalPostgres) -> None:
    async with databases((pg18, LOCAL), (pg18, PRODUCTION)) as (local, production):
        default = await _compare(local, production, schemas=["reports"])
        managed = await _compare(local, production, include_managed=True, include_kinds=["column"])
    assert default.in_sync and default.schemas == ["reports"]
    assert ("column", "auth.users.x", "removed") in {(d.kind, d.name, d.change) for d in managed.differences.data}


async def test_kinds_can_be_included_or_excluded(pg18: LocalPostgres) -> None:
    async with databases((pg18, LOCAL), (pg18, PRODUCTION)) as (local, production):
        only_tables = await _compare(local, production, include_kinds=["table"])
        no_columns = await _compare(local, production, exclude_kinds=["column", "index"])
    assert {d.kind for d in only_tables.differences.data} == {"table"}
    assert only_tables.kinds == ["table"]
    assert {d.kind for d in no_columns.differences.data} == {"table"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"include_kinds": ["tables"]}, "unknown object kind"),
        ({"exclude_kinds": ["nope"]}, "unknown object kind"),
        ({"include_kinds": ["table"], "exclude_kinds": ["table"]}, "no object kind left"),
        ({"schemas": []}, "schemas is empty"),
        ({"schemas": ["no_such_schema"]}, "exist in neither"),
    ],
)
async def test_bad_kinds_and_schemas_are_configuration_errors(
    pg18: LocalPostgres, options: dict[str, object], message: str
) -> None:
    async with databases((pg18, LOCAL)) as (url,):
        with pytest.raises(ConfigError, match=message):
            await _compare(url, url, **options)


async def test_an_unknown_environment_is_a_configuration_error(pg18: LocalPostgres) -> None:
    db = Databases.from_urls({"local": pg18.url()})
    with pytest.raises(ConfigError, match="unknown environment 'production'"):
        await compare_schemas(db)


async def test_the_same_ddl_on_postgres_15_and_18_is_in_sync(pg18: LocalPostgres, pg15: LocalPostgres) -> None:
    async with databases((pg18, LOCAL), (pg15, LOCAL)) as (on18, on15):
        result = await _compare(on18, on15)
    assert result.in_sync, [d.model_dump() for d in result.differences.data]


def _cli_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_compare_arguments(parser)
    return parser.parse_args(argv)


async def test_the_compare_command_exits_0_in_sync_2_different_and_1_on_error(
    pg18: LocalPostgres, capsys: pytest.CaptureFixture[str]
) -> None:
    async with databases((pg18, LOCAL), (pg18, PRODUCTION)) as (local, production):
        same = await asyncio.to_thread(run_compare, _cli_args("--source", local, "--target", local))
        same_out = capsys.readouterr().out
        different = await asyncio.to_thread(run_compare, _cli_args("--source", local, "--target", production, "--json"))
        different_out = capsys.readouterr().out
    unreachable = pg18.url("postgres").replace(f":{pg18.port}/", ":1/")
    failed = await asyncio.to_thread(run_compare, _cli_args("--source", unreachable, "--target", "production"))
    failed_err = capsys.readouterr().err
    assert (same, different, failed) == (0, 2, 1)
    assert same_out.startswith("in sync")
    parsed = json.loads(different_out)
    assert parsed["in_sync"] is False and parsed["summary"]["total"] == 5
    assert "neither a postgresql:// URL nor a configured environment" in failed_err or "cannot connect" in failed_err
    assert pg18.password not in failed_err


async def test_the_compare_command_reads_a_text_report_and_names_environments(
    pg18: LocalPostgres, capsys: pytest.CaptureFixture[str]
) -> None:
    from pgshift.tools.databases import Environment

    async with databases((pg18, LOCAL), (pg18, PRODUCTION)) as (local, production):
        envs = [Environment(name="local", url=local), Environment(name="production", url=production)]
        code = await asyncio.to_thread(run_compare, _cli_args("--source", "local", "--target", "production"), envs)
    out = capsys.readouterr().out
    assert code == 2
    assert "+ index public.profiles_name" in out
    assert "~ column public.profiles.mood" in out and "default: \"'sad'::public.mood\" -> \"'ok'::public.mood\"" in out


def _synthetic(
    n_differences: int, statements: list[str], allow_data_loss: bool = False, n_uncompared: int = 0
) -> CompareResult:
    """A comparison result without a database: n changed columns, a plan of the given statements (a DROP deletes
    data) and n rules pgshift does not compare."""
    from pgshift.tools.compare import CompareSummary, Difference, FieldDifference, KindCounts, NotCompared
    from pgshift.tools.plan.statement import ClientPlan, Hazard, HazardKind, Statement
    from pgshift.tools.untrusted import fence

    differences = [
        Difference(
            kind="column",
            name=f"public.t.c{i:04}",
            change="changed",
            table="public.t",
            fields=[FieldDifference(field="default", before="x" * (i % 7) * 300, after=None)],
        )
        for i in range(n_differences)
    ]
    plan = ClientPlan(
        statements=tuple(
            Statement(
                sql=sql,
                object=f"table {sql.split()[-1]}",
                hazards=(Hazard.of(HazardKind.DELETES_DATA),) if sql.startswith("DROP") else (),
            )
            for sql in statements
        ),
        allow_data_loss=allow_data_loss,
    )
    return CompareResult(
        source="local",
        target="production",
        in_sync=not differences,
        summary=CompareSummary(
            added=0,
            removed=0,
            changed=n_differences,
            total=n_differences,
            by_kind={"column": KindCounts(changed=n_differences)} if differences else {},
        ),
        schemas=None,
        kinds=["column"],
        differences=fence(differences),
        plan=fence(plan),
        uncompared_count=n_uncompared,
        uncompared=fence(
            [
                NotCompared(kind="rule", name=f"public.r{i:03}", definition="x" * 90, in_source=True, in_target=False)
                for i in range(n_uncompared)
            ]
        )
        if n_uncompared
        else None,
    )


def _all_pages(result: CompareResult, limit: int) -> list[CompareAnswer]:
    out = [answer_page(result, PageRequest(limit=limit))]
    while out[-1].next_cursor is not None and len(out) < 100:
        out.append(answer_page(result, PageRequest(limit=limit, cursor=out[-1].next_cursor)))
    return out


def test_pages_hold_every_difference_and_statement_once_within_the_limit_and_the_byte_budget() -> None:
    result = _synthetic(700, [f"CREATE TABLE public.t{i}" for i in range(300)], n_uncompared=150)
    got = _all_pages(result, limit=120)
    rules = [o.name for p in got if p.uncompared is not None for o in p.uncompared.data]
    assert rules == [f"public.r{i:03}" for i in range(150)]
    names = [d.name for p in got for d in p.differences.data]
    sql = [s.sql for p in got if p.statements is not None for s in p.statements.data]
    assert names == [d.name for d in result.differences.data] and len(set(names)) == 700
    assert sql == [f"CREATE TABLE public.t{i}" for i in range(300)]
    assert all(len(p.differences.data) <= 120 and len(p.model_dump_json(exclude_none=True)) < 80_000 for p in got)
    assert got[0].detail is False and got[0].differences.data[0].model_dump(exclude_none=True).get("changed_fields")
    assert got[0].script is None and got[0].plan is not None and "pgshift plan" in (got[0].plan.script_withheld or "")
    assert len(got) > 5 and "Last page." in got[-1].next_step and "cursor=" in got[0].next_step


def test_a_small_comparison_is_one_detailed_page_with_its_script() -> None:
    [page] = _all_pages(_synthetic(3, ["CREATE TABLE public.a"]), limit=200)
    assert page.detail is True and page.next_cursor is None
    assert page.script is not None and page.script.data == "CREATE TABLE public.a;\n"


def test_a_blocked_plan_names_its_destructive_statements_in_the_summary_and_has_no_script() -> None:
    [page] = _all_pages(_synthetic(0, ["CREATE TABLE public.a", "DROP TABLE public.gone"]), limit=200)
    assert page.plan is not None and page.plan.blocked_by_data_loss and page.script is None
    assert page.plan.destructive is not None
    assert [(d.position, d.object) for d in page.plan.destructive.data] == [(1, "table public.gone")]
    assert page.next_step.startswith("Blocked: 1 statement(s) would delete data")


def test_a_cursor_of_another_comparison_or_not_ours_is_refused() -> None:
    first = answer_page(_synthetic(700, []), PageRequest(limit=10))
    assert first.next_cursor is not None
    with pytest.raises(ConfigError, match="changed since that cursor"):
        answer_page(_synthetic(699, []), PageRequest(limit=10, cursor=first.next_cursor))
    with pytest.raises(ConfigError, match="not a next_cursor"):
        answer_page(_synthetic(700, []), PageRequest(cursor="1.2"))
