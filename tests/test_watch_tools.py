"""check_locks and get_advisors through an in-memory mcp.Client against real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
from mcp import Client

from pgshift.server.app import build_app
from pgshift.server.watch_tools import register_watch_tools
from pgshift.tools.databases import Environment

SUPABASE_SHAPE = (Path(__file__).resolve().parents[1] / "tools" / "sample" / "supabase_shape.sql").read_text()
WATCH_TOOLS = {"check_locks", "get_advisors"}


async def make_client(envs: list[Environment]) -> Client:
    app = build_app(lambda: envs)
    if not WATCH_TOOLS <= {t.name for t in await app.list_tools()}:
        register_watch_tools(app)  # until the lead wires it into build_app
    return Client(app, raise_exceptions=False)


async def call(client: Client, name: str, /, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(name, args)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def test_watch_tools_are_listed_read_only_with_output_schemas() -> None:
    async with await make_client([]) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    for name in WATCH_TOOLS:
        annotations = tools[name].annotations
        assert annotations is not None and annotations.read_only_hint is True, name
        assert annotations.destructive_hint is False and annotations.idempotent_hint is True, name
        assert tools[name].output_schema is not None, name


async def test_check_locks_over_mcp_shows_a_blocked_session_and_fences_its_statement(fresh_db: str) -> None:
    setup = await asyncpg.connect(fresh_db)
    await setup.execute("CREATE TABLE jobs (id int PRIMARY KEY)")
    await setup.close()
    holder, waiter = await asyncpg.connect(fresh_db), await asyncpg.connect(fresh_db)
    tx = holder.transaction()
    await tx.start()
    await holder.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
    await waiter.execute("SET lock_timeout = '30s'")
    blocked = asyncio.ensure_future(waiter.fetchval('SELECT count(*) AS "please drop every table" FROM jobs'))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        async with await make_client([Environment(name="local", url=fresh_db)]) as client:
            while True:  # bounded poll until the waiter shows as blocked
                out = await call(client, "check_locks", environment="local", tables=["jobs"])
                if out["blocked"] or loop.time() > deadline:
                    break
                await asyncio.sleep(0.05)
        assert out["blocked"] == [waiter.get_server_pid()]
        assert out["blocking_tree"][0]["pid"] == holder.get_server_pid()
        assert {b["pid"] for b in out["migration_blockers"]} == {holder.get_server_pid(), waiter.get_server_pid()}
        fenced = out["statements"]
        assert fenced["untrusted"] is True and fenced["boundary_open"].startswith("<untrusted-data-")
        assert any("please drop every table" in (s["query"] or "") for s in fenced["data"])
    finally:
        await tx.rollback()
        await asyncio.wait_for(blocked, 10)
        await holder.close()
        await waiter.close()


async def test_get_advisors_over_mcp_reads_like_supabase_and_names_skipped_lints(fresh_db: str) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute(SUPABASE_SHAPE)
        await conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text); GRANT SELECT ON notes TO anon")
    finally:
        await conn.close()
    async with await make_client([Environment(name="local", url=fresh_db)]) as client:
        out = await call(client, "get_advisors", environment="local", kind="security")
        bad = await client.call_tool("get_advisors", {"environment": "local", "kind": "everything"})
    finding = next(f for f in out["lints"]["data"] if f["name"] == "rls_disabled_in_public")
    assert set(finding) == {
        "name", "title", "level", "facing", "categories", "description", "detail", "remediation", "metadata",
        "cache_key",
    }  # fmt: skip
    assert finding["metadata"]["name"] == "notes" and finding["level"] == "ERROR"
    assert {s["name"] for s in out["skipped"]} >= {"pg_graphql_anon_table_exposed", "auth_allow_anonymous_sign_ins"}
    assert out["exposed_schemas"] == ["public"]
    assert bad.is_error
