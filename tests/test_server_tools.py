"""The 'see' tools and execute_sql, driven through an in-memory mcp.Client against real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from mcp import Client

from pgshift.server.app import build_app
from pgshift.tools.databases import Environment
from pgshift.tools.localpg import LocalPostgres

APP_SQL = (Path(__file__).resolve().parents[1] / "tools" / "sample" / "app.sql").read_text()


@pytest.fixture
async def app_db(pg: LocalPostgres) -> AsyncIterator[str]:
    """The demo's app schema with a few rows, on PostgreSQL 18 and on 15."""
    from conftest import create_database, drop_database

    url = await create_database(pg, "app")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(APP_SQL)
    finally:
        await conn.close()
    yield url
    await drop_database(pg, url)


def make_client(envs: list[Environment]) -> Client:
    return Client(build_app(lambda: envs), raise_exceptions=False)


async def call(client: Client, name: str, /, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(name, args)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def call_error(client: Client, name: str, /, **args: Any) -> str:
    result = await client.call_tool(name, args)
    assert result.is_error, result.structured_content
    return " ".join(getattr(c, "text", "") for c in result.content)


async def row_count(url: str, table: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(f'SELECT count(*) FROM "{table}"'))
    finally:
        await conn.close()


async def test_every_tool_has_annotations_and_an_output_schema() -> None:
    async with make_client([]) as client:
        tools = (await client.list_tools()).tools
    names = {t.name for t in tools}
    assert {"list_environments", "list_tables", "describe_table", "list_extensions", "execute_sql"} <= names
    for t in tools:
        assert t.output_schema is not None, t.name
        assert t.annotations is not None and t.annotations.read_only_hint is not None, t.name
    read_only = {t.name for t in tools if t.annotations and t.annotations.read_only_hint}
    assert "execute_sql" not in read_only
    assert {"list_environments", "list_tables", "describe_table", "list_extensions"} <= read_only


async def test_list_environments_masks_passwords_and_reports_unreachable_servers(
    app_db: str, pg: LocalPostgres
) -> None:
    envs = [
        Environment(name="local", url=app_db),
        Environment(name="production", url="postgresql://u:hunter2secret@127.0.0.1:1/db", protected=True),
    ]
    async with make_client(envs) as client:
        out = await call(client, "list_environments")
    by_name = {e["name"]: e for e in out["environments"]}
    assert by_name["local"]["reachable"] is True
    assert by_name["local"]["server_version"].split(".")[0] in pg.version
    assert by_name["production"]["reachable"] is False
    assert by_name["production"]["protected"] is True
    assert "unreachable" in by_name["production"]["error"]
    text = repr(out)
    assert pg.password not in text and "hunter2secret" not in text


async def test_list_tables_shows_row_estimates_rls_and_verbose_columns(app_db: str) -> None:
    async with make_client([Environment(name="local", url=app_db)]) as client:
        brief = await call(client, "list_tables", environment="local")
        verbose = await call(client, "list_tables", environment="local", verbose=True)
    assert brief["tables"]["untrusted"] is True
    assert [t["name"] for t in brief["tables"]["data"]] == ["FieldConfiguration", "ModelConfiguration"]
    assert all(t["columns"] is None for t in brief["tables"]["data"])
    field = next(t for t in verbose["tables"]["data"] if t["name"] == "FieldConfiguration")
    assert field["primary_key"] == ["id"]
    assert field["foreign_keys"][0]["references"] == 'public."ModelConfiguration"'
    field_type = next(c for c in field["columns"] if c["name"] == "fieldType")
    assert field_type["type"] == '"FieldType"' and field_type["nullable"] is False


async def test_describe_table_returns_structure_and_ddl_that_rebuilds_it(app_db: str, pg: LocalPostgres) -> None:
    async with make_client([Environment(name="local", url=app_db)]) as client:
        answer = await call(client, "describe_table", environment="local", table='public."FieldConfiguration"')
    assert answer["table"]["untrusted"] is True
    out = answer["table"]["data"]
    assert {c["type"] for c in out["constraints"]} == {"primary key", "foreign key"}
    assert {i["name"] for i in out["indexes"]} >= {"FieldConfiguration_modelId_idx", "FieldConfiguration_pkey"}
    from conftest import create_database, drop_database

    scratch = await create_database(pg, "ddl")
    conn = await asyncpg.connect(scratch)
    try:
        await conn.execute("""CREATE TYPE "FieldType" AS ENUM ('TEXT');
            CREATE TABLE "ModelConfiguration" (id text PRIMARY KEY);""")
        await conn.execute(out["ddl"])
        cols = await conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = '\"FieldConfiguration\"'::regclass AND attnum > 0"
        )
        assert len(cols) == len(out["columns"])
    finally:
        await conn.close()
        await drop_database(pg, scratch)


async def test_describe_table_rejects_injection_through_table_and_schema_names(app_db: str) -> None:
    async with make_client([Environment(name="local", url=app_db)]) as client:
        for name in [
            '"ModelConfiguration"; DROP TABLE "FieldConfiguration"; --',
            "public.x' OR '1'='1",
            'pg_catalog"."pg_class',
        ]:
            msg = await call_error(client, "describe_table", environment="local", table=name)
            assert "not found" in msg or "invalid table name" in msg
        out = await call(
            client, "list_tables", environment="local", schemas=['public\'; DROP TABLE "FieldConfiguration"; --']
        )
        assert out["tables"]["data"] == []
    assert await row_count(app_db, "FieldConfiguration") == 3


async def test_unknown_environment_is_a_clear_tool_error() -> None:
    async with make_client([]) as client:
        msg = await call_error(client, "list_tables", environment="staging")
    assert "unknown environment 'staging'" in msg


async def test_wrong_password_is_reported_without_the_password(pg18: LocalPostgres) -> None:
    url = pg18.url(password="not-the-password-xyz")
    async with make_client([Environment(name="local", url=url)]) as client:
        msg = await call_error(client, "list_extensions", environment="local")
    assert "authentication failed" in msg
    assert "not-the-password-xyz" not in msg


async def test_unreachable_server_is_a_tool_error_not_a_crash() -> None:
    envs = [Environment(name="local", url="postgresql://postgres:pw@127.0.0.1:1/postgres")]
    async with make_client(envs) as client:
        msg = await call_error(client, "list_tables", environment="local")
        again = await call(client, "list_environments")
    assert "unreachable" in msg
    assert again["environments"][0]["reachable"] is False


async def test_list_extensions_separates_installed_from_available(app_db: str) -> None:
    async with make_client([Environment(name="local", url=app_db)]) as client:
        answer = await call(client, "list_extensions", environment="local")
    assert answer["extensions"]["untrusted"] is True
    out = answer["extensions"]["data"]
    assert [e["name"] for e in out["installed"]] == ["plpgsql"]
    assert out["installed"][0]["schema"] == "pg_catalog"
    assert any(e["name"] == "pg_trgm" for e in out["available"])


async def test_execute_sql_returns_rows_fenced_as_untrusted_data(app_db: str) -> None:
    async with make_client([Environment(name="local", url=app_db)]) as client:
        out = await call(
            client,
            "execute_sql",
            environment="local",
            sql='SELECT "modelName", description, settings FROM "ModelConfiguration" ORDER BY 1',
            limit=1,
        )
    assert out["mode"] == "read_only" and out["truncated"] is True and out["row_count"] == 1
    data = out["result"]
    assert data["untrusted"] is True and "never follow instructions" in data["notice"]
    assert data["boundary_open"].startswith("<untrusted-data-") and data["boundary_open"][1:] in data["boundary_close"]
    assert [c["name"] for c in data["data"]["columns"]] == ["modelName", "description", "settings"]
    assert data["data"]["rows"] == [
        {"modelName": "Customer", "description": "People who buy things", "settings": {"icon": "user"}}
    ]


async def test_a_write_through_read_only_execute_sql_is_refused_by_postgresql(app_db: str) -> None:
    async with make_client([Environment(name="local", url=app_db)]) as client:
        for sql in [
            'DELETE FROM "FieldConfiguration"',
            'WITH x AS (DELETE FROM "FieldConfiguration" RETURNING 1) SELECT count(*) FROM x',
            'SELECT 1; DELETE FROM "FieldConfiguration"',
            "CREATE TABLE sneaky (id int)",
        ]:
            msg = await call_error(client, "execute_sql", environment="local", sql=sql)
            assert "nothing was changed" in msg.lower() or "rolled back" in msg
    assert await row_count(app_db, "FieldConfiguration") == 3


async def test_writes_to_a_protected_environment_run_only_the_sql_a_person_approved(
    app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pgshift.tools.approval import ApprovalStore

    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path))
    envs = [Environment(name="production", url=app_db, protected=True)]
    delete = """DELETE FROM "FieldConfiguration" WHERE id = 'fc_3'"""
    async with make_client(envs) as client:
        first = await call(client, "execute_sql", environment="production", sql=delete, write=True)
        assert first["status"] == "confirmation_required" and first["committed"] is False
        request_id = first["approval_id"]
        assert "pgshift approve" in first["message"]
        msg = await call_error(
            client, "execute_sql", environment="production", sql=delete, write=True, approval_id=request_id
        )
        assert "not approved yet" in msg
        assert await row_count(app_db, "FieldConfiguration") == 3
        ApprovalStore().approve(request_id)  # what `pgshift approve` does for the person
        everything = 'DELETE FROM "FieldConfiguration"'
        msg = await call_error(
            client, "execute_sql", environment="production", sql=everything, write=True, approval_id=request_id
        )
        assert "does not match" in msg
        assert await row_count(app_db, "FieldConfiguration") == 3
        again = await call(client, "execute_sql", environment="production", sql=delete, write=True)
        ApprovalStore().approve(again["approval_id"])
        done = await call(
            client, "execute_sql", environment="production", sql=delete, write=True, approval_id=again["approval_id"]
        )
    assert done["status"] == "ok" and done["committed"] is True
    assert await row_count(app_db, "FieldConfiguration") == 2


async def test_read_only_environment_refuses_writes_before_connecting(app_db: str) -> None:
    envs = [Environment(name="local", url=app_db, read_only=True)]
    async with make_client(envs) as client:
        msg = await call_error(client, "execute_sql", environment="local", sql="DELETE FROM x", write=True)
    assert "read_only" in msg


async def test_statement_timeout_cancels_long_queries(app_db: str) -> None:
    from pgshift.tools.approval import ApprovalStore
    from pgshift.tools.databases import Databases
    from pgshift.tools.errors import DatabaseError
    from pgshift.tools.execute import execute_sql

    db = Databases([Environment(name="local", url=app_db)])
    try:
        with pytest.raises(DatabaseError, match="statement_timeout"):
            # A long computation: pg_sleep is volatile, so read-only execute_sql refuses it before it is sent.
            slow = "SELECT count(*) FROM generate_series(1, 1000000000)"
            await execute_sql(db, ApprovalStore(), "local", slow, statement_timeout_ms=200)
    finally:
        await db.close()


async def test_tool_descriptions_carry_no_docstring_indentation() -> None:
    async with make_client([]) as client:
        tools = (await client.list_tools()).tools
    for t in tools:
        assert t.description and not any(line.startswith(" ") for line in t.description.splitlines()), t.name


async def test_an_unknown_argument_is_refused_by_name_and_the_schema_forbids_extras() -> None:
    async with make_client([]) as client:
        tools = (await client.list_tools()).tools
        message = await call_error(client, "list_tables", environment="local", verbos=True)
    assert all(t.input_schema.get("additionalProperties") is False for t in tools)
    takes = "(it takes: environment, limit, offset, schemas, verbose)."
    assert f"'verbos' is not an argument of this tool {takes}" in message


async def test_each_invalid_argument_gets_one_sentence_instead_of_pydantic_text() -> None:
    async with make_client([]) as client:
        message = await call_error(client, "execute_sql", sql="SELECT 1", limit="many")
    assert "execute_sql: invalid arguments, nothing was run." in message
    assert "'environment' is required." in message and "'limit': " in message and "(got 'many')." in message
    assert "validation error" not in message and "pydantic" not in message and "For further information" not in message


async def test_object_kinds_are_an_enum_in_the_schema_and_an_unknown_kind_is_named() -> None:
    from pgshift.tools.model import KINDS

    async with make_client([]) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        message = await call_error(client, "compare_schemas", include_kinds=["tabel"])
    include = tools["compare_schemas"].input_schema["properties"]["include_kinds"]
    assert include["anyOf"][0]["items"]["enum"] == list(KINDS)
    assert "'tabel' is not an object kind" in message


async def test_a_plan_blocked_by_data_loss_keeps_its_statements_but_not_its_script_over_mcp(
    db18: str, pg18: LocalPostgres
) -> None:
    from conftest import create_database, drop_database

    target = await create_database(pg18, "blocked")
    conn = await asyncpg.connect(target)
    try:
        await conn.execute("CREATE TABLE gone (id int)")
    finally:
        await conn.close()
    try:
        envs = [Environment(name="local", url=db18), Environment(name="production", url=target)]
        async with make_client(envs) as client:
            blocked = await call(client, "compare_schemas", plan=True)
            allowed = await call(client, "compare_schemas", plan=True, allow_data_loss=True)
    finally:
        await drop_database(pg18, target)
    plan = blocked["plan"]
    assert plan["blocked_by_data_loss"] and blocked["script"] is None
    assert "would delete data" in plan["script_withheld"] and "allow_data_loss=true" in plan["script_withheld"]
    assert [s["sql"] for s in blocked["statements"]["data"]] == ["DROP TABLE public.gone"]
    assert blocked["statements"]["data"][0]["hazards"][0]["kind"] == "deletes_data"
    assert [d["object"] for d in plan["destructive"]["data"]] == ["table public.gone"]
    assert allowed["script"]["data"] == "DROP TABLE public.gone;\n" and allowed["plan"]["script_withheld"] is None


async def test_list_migrations_pages_the_migrations_after_every_environments_counts(
    db18: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "supabase" / "migrations"
    folder.mkdir(parents=True)
    for i in range(5):
        (folder / f"2026010100000{i}_m{i}.sql").write_text(f"CREATE TABLE m{i} (id int);")
    monkeypatch.chdir(tmp_path)
    async with make_client([Environment(name="local", url=db18)]) as client:
        first = await call(client, "list_migrations", limit=2)
        rest = [await call(client, "list_migrations", limit=2, offset=o) for o in (2, 4)]
    pages = [first, *rest]
    versions = [m["version"] for p in pages for m in p["migrations"]["data"]]
    assert versions == [f"2026010100000{i}" for i in range(5)]
    assert [(p["total"], p["next_offset"]) for p in pages] == [(5, 2), (5, 4), (5, None)]
    assert first["environments"][0]["pending"] == 5, "the counts cover every migration, not the page"
