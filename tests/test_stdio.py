"""The server as a client runs it: `python -m server` over stdio, configured by environment variables."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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
        writes: list[tuple[str, dict[str, Any]]] = [
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


INIT = """CREATE TABLE "Note" (
    "id" INTEGER NOT NULL, "body" TEXT, "legacy" TEXT, CONSTRAINT "Note_pkey" PRIMARY KEY ("id")
);
"""
DROP_LEGACY = 'ALTER TABLE "Note" DROP COLUMN "legacy";\n'
UNDO_TOOLS = {
    # name: (read_only, destructive), as the README's tables say
    "snapshot_schema": (False, False),
    "list_snapshots": (True, False),
    "verify_snapshot": (True, False),
    "rollback": (False, True),
    "detect_drift": (True, False),
    "apply_migration": (False, True),
    "deploy": (False, True),
}


async def test_over_stdio_snapshot_verify_rollback_and_drift_work_with_honest_annotations(
    tmp_path: Path, db18: str
) -> None:
    import asyncpg

    for label, sql in [("20240101000000_init", INIT), ("20240202000000_drop_legacy", DROP_LEGACY)]:
        (tmp_path / "prisma" / "migrations" / label).mkdir(parents=True)
        (tmp_path / "prisma" / "migrations" / label / "migration.sql").write_text(sql)
    own = await asyncpg.connect(db18)

    async def legacy() -> list[tuple[int, str | None]]:
        """The rows' legacy values, on our own connection; none while the column is gone."""
        if not await own.fetchval(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'Note' AND column_name = 'legacy'"
        ):
            return []
        return [(r["id"], r["legacy"]) for r in await own.fetch('SELECT id, legacy FROM "Note" ORDER BY id')]

    async def call(client: Client, tool: str, **args: object) -> dict[str, Any]:
        out = await client.call_tool(tool, args)
        assert not out.is_error and out.structured_content is not None, (tool, out.content)
        return out.structured_content

    env = {"DATABASE_URL": db18, "PGSHIFT_STATE_DIR": str(tmp_path / "state")}
    try:
        async with Client(stdio_params(tmp_path, env), read_timeout_seconds=60) as client:
            hints = {t.name: t.annotations for t in (await client.list_tools()).tools}
            for name, (read_only, destructive) in UNDO_TOOLS.items():
                hint = hints[name]
                assert hint is not None, name
                assert (hint.read_only_hint, hint.destructive_hint) == (read_only, destructive), name
            init = "prisma/migrations/20240101000000_init"
            await call(client, "apply_migration", environment="local", name="init", migration=init)
            await own.execute("""INSERT INTO "Note" VALUES (1, 'a', 'kept one'), (2, 'b', 'kept two')""")
            taken = await call(client, "snapshot_schema", environment="local", label="before drop")
            listed = await call(client, "list_snapshots", environment="local")
            snapshot_id = taken["snapshot"]["data"]["id"]
            assert snapshot_id in [s["id"] for s in listed["snapshots"]["data"]]
            verified = await call(client, "verify_snapshot", environment="local", snapshot=snapshot_id)
            assert verified["verified"] is True
            drop = "prisma/migrations/20240202000000_drop_legacy"
            await call(client, "apply_migration", environment="local", name="drop_legacy", migration=drop)
            assert await legacy() == []
            dry = await call(client, "rollback", environment="local", migration="20240202000000", dry_run=True)
            assert dry["status"] == "dry_run" and await legacy() == []
            done = await call(client, "rollback", environment="local", migration="20240202000000")
            assert done["status"] == "rolled_back", done["message"]
            assert await legacy() == [(1, "kept one"), (2, "kept two")]
            await own.execute('ALTER TABLE "Note" ADD COLUMN "by_hand" INTEGER')
            drift = await call(client, "detect_drift", environment="local", directory="prisma/migrations")
            assert drift["state"] == "drift", drift
    finally:
        await own.close()
