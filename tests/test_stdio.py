"""The server as a client runs it: `python -m server` over stdio, configured by environment variables."""

from __future__ import annotations

import sys
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from pgshift.tools.localpg import LocalPostgres


def stdio_params(tmp_path: Path, env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "pgshift"], env=env, cwd=str(tmp_path))


async def test_python_m_server_over_stdio_lists_tools_and_answers_them(tmp_path: Path, pg18: LocalPostgres) -> None:
    # Prisma-style: DATABASE_URL comes from ./.env in the working directory.
    (tmp_path / ".env").write_text(f'DATABASE_URL="{pg18.url()}"\n')
    params = stdio_params(tmp_path, {"SUPABASE_DB_URL": "postgresql://postgres:s3cr3t-pw@127.0.0.1:1/postgres"})
    async with Client(params, read_timeout_seconds=60) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"list_environments", "list_tables", "describe_table", "list_extensions", "execute_sql"} <= tools
        envs = await client.call_tool("list_environments", {})
        out = await client.call_tool("execute_sql", {"environment": "local", "sql": "SELECT 40 + 2 AS answer"})
        bad = await client.call_tool("list_tables", {"environment": "nope"})
    assert envs.structured_content is not None
    by_name = {e["name"]: e for e in envs.structured_content["environments"]}
    assert by_name["local"]["reachable"] and not by_name["production"]["reachable"]
    assert by_name["production"]["protected"] is True
    assert out.structured_content is not None and out.structured_content["result"]["data"]["rows"] == [{"answer": 42}]
    assert bad.is_error
    dumped = repr(envs) + repr(out) + repr(bad)
    assert "s3cr3t-pw" not in dumped and pg18.password not in dumped


async def test_compare_schemas_with_its_plan_works_over_stdio(
    tmp_path: Path, pg18: LocalPostgres, pg15: LocalPostgres
) -> None:
    import asyncpg
    from conftest import create_database, drop_database

    local, production = await create_database(pg18, "loc"), await create_database(pg15, "prod")
    try:
        for url, sql in [
            (local, "CREATE TABLE note (id bigint PRIMARY KEY, body text NOT NULL, pinned boolean DEFAULT false)"),
            (production, "CREATE TABLE note (id bigint PRIMARY KEY, body text NOT NULL)"),
        ]:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()
        params = stdio_params(tmp_path, {"DATABASE_URL": local, "SUPABASE_DB_URL": production})
        async with Client(params, read_timeout_seconds=60) as client:
            out = await client.call_tool("compare_schemas", {"plan": True})
        assert out.structured_content is not None, out.content
        result = out.structured_content
        assert result["in_sync"] is False
        assert [(d["kind"], d["name"], d["change"]) for d in result["differences"]["data"]] == [
            ("column", "public.note.pinned", "added")
        ]
        assert result["script"]["data"].strip() == "ALTER TABLE public.note ADD COLUMN pinned boolean DEFAULT false;"
    finally:
        await drop_database(pg18, local)
        await drop_database(pg15, production)


async def test_over_stdio_neither_a_declining_client_nor_one_without_elicitation_can_change_a_protected_database(
    tmp_path: Path, pg18: LocalPostgres
) -> None:
    from conftest import create_database, drop_database
    from test_approval import DROP, FORGED, INSERT, SCHEMA, UNCHANGED, answering, direct_sql, seen

    production = await create_database(pg18, "prod")
    try:
        await direct_sql(production, SCHEMA)
        env = {"SUPABASE_DB_URL": production, "PGSHIFT_STATE_DIR": str(tmp_path / "state")}
        writes = [
            ("execute_sql", {"environment": "production", "sql": INSERT, "write": True}),
            ("apply_migration", {"environment": "production", "name": "drop_keep", "sql": f"{DROP};"}),
        ]
        got: list[str] = []
        async with Client(stdio_params(tmp_path, env), read_timeout_seconds=60) as plain:
            for tool, args in writes:
                first = await plain.call_tool(tool, args)
                assert first.structured_content is not None, first.content
                got.append(first.structured_content["approval_id"])
                for candidate in [*got, *FORGED[:2]]:
                    assert (await plain.call_tool(tool, {**args, "approval_id": candidate})).is_error
        declining = answering("decline")
        async with Client(stdio_params(tmp_path, env), read_timeout_seconds=60, elicitation_callback=declining) as c:
            for tool, args in writes:
                out = await c.call_tool(tool, args)
                assert out.structured_content is not None and out.structured_content["approval_id"] is None
                for candidate in [*got, *FORGED[:2]]:
                    assert (await c.call_tool(tool, {**args, "approval_id": candidate})).is_error
        assert await seen(production) == UNCHANGED
    finally:
        await drop_database(pg18, production)


async def test_over_stdio_a_person_approving_at_a_terminal_lets_exactly_that_write_run_once(
    tmp_path: Path, pg18: LocalPostgres
) -> None:
    from conftest import create_database, drop_database
    from test_approval import INSERT, SCHEMA, approve_at_terminal, direct_sql, seen

    production = await create_database(pg18, "prod")
    try:
        await direct_sql(production, SCHEMA)
        env = {"SUPABASE_DB_URL": production, "PGSHIFT_STATE_DIR": str(tmp_path / "state")}
        args = {"environment": "production", "sql": INSERT, "write": True}
        async with Client(stdio_params(tmp_path, env), read_timeout_seconds=60) as client:
            first = await client.call_tool("execute_sql", args)
            assert first.structured_content is not None
            request_id = first.structured_content["approval_id"]
            code, shown = approve_at_terminal(request_id, "production", tmp_path / "state")
            assert code == 0 and INSERT in shown and pg18.password not in shown
            done = await client.call_tool("execute_sql", {**args, "approval_id": request_id})
            again = await client.call_tool("execute_sql", {**args, "approval_id": request_id})
        assert done.structured_content is not None and done.structured_content["committed"] is True
        assert again.is_error
        assert await seen(production) == (["approved"], True, False)
    finally:
        await drop_database(pg18, production)
