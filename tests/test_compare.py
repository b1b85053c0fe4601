"""compare_schemas and the `compare` command on real PostgreSQL."""

from __future__ import annotations

import argparse
import asyncio
import json

import pytest
from support_introspect import databases

from server.commands import add_compare_arguments, run_compare
from tools.compare import CompareResult, compare_schemas
from tools.databases import Databases
from tools.errors import ConfigError
from tools.localpg import LocalPostgres

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
    from tools.databases import Environment

    async with databases((pg18, LOCAL), (pg18, PRODUCTION)) as (local, production):
        envs = [Environment(name="local", url=local), Environment(name="production", url=production)]
        code = await asyncio.to_thread(run_compare, _cli_args("--source", "local", "--target", "production"), envs)
    out = capsys.readouterr().out
    assert code == 2
    assert "+ index public.profiles_name" in out
    assert "~ column public.profiles.mood" in out and "default: \"'sad'::public.mood\" -> \"'ok'::public.mood\"" in out
