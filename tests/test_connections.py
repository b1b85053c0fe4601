"""Connections: every call starts from a clean session, URLs of every form Prisma and Supabase hand out connect,
and a malformed URL is one environment's clear error, never a crash or a piece of its password.

All against the embedded PostgreSQL 18; leaks are checked on the next call and, where PostgreSQL can show it,
directly on a second plain connection.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
from mcp import Client

from pgshift.server.app import build_app
from pgshift.tools.catalog import list_environments
from pgshift.tools.databases import Databases, Environment, EnvironmentBusy, connect, connect_kwargs
from pgshift.tools.errors import ConfigError, ConnectionFailed
from pgshift.tools.localpg import LocalPostgres

# Every character a password may hold that a URL gives a meaning to; each fragment is distinctive ("Qz").
SPECIALS = ["#", "/", "?", "@", "%", " "]


def password_with(char: str) -> str:
    return f"Qz1one{char}Qz2two{char}Qz3end"


def rows_of(content: Any) -> list[dict[str, Any]]:
    """The `rows` of an execute_sql result, wherever the result's shape puts them."""
    if isinstance(content, dict):
        if isinstance(content.get("rows"), list):
            return list(content["rows"])
        for value in content.values():
            found = rows_of(value)
            if found:
                return found
    return []


async def attempt(client: Client, sql: str) -> None:
    """An attack through execute_sql (write=true): refused by policy or run, what counts is the next call."""
    await client.call_tool("execute_sql", {"environment": "local", "sql": sql, "write": True})


async def run_sql(client: Client, sql: str, *, write: bool = False) -> list[dict[str, Any]]:
    result = await client.call_tool("execute_sql", {"environment": "local", "sql": sql, "write": write})
    assert not result.is_error, result.content
    return rows_of(result.structured_content)


def one_connection_client(url: str) -> Client:
    """A client whose 'local' pool holds a single connection, so every call reuses the previous one's session."""
    envs = [Environment(name="local", url=f"{url}?connection_limit=1")]
    return Client(build_app(lambda: envs), raise_exceptions=False)


@pytest.fixture
async def role(pg18: LocalPostgres) -> AsyncIterator[str]:
    name = f"leak_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(pg18.url())
    try:
        await conn.execute(f"CREATE ROLE {name}")
        yield name
    finally:
        await conn.execute(f"DROP ROLE IF EXISTS {name}")
        await conn.close()


# ------------------------------------------------------------------------------------------ session state


@pytest.mark.parametrize("switch", ["SET ROLE {role}", "SET SESSION AUTHORIZATION {role}"])
async def test_a_role_switched_in_one_call_is_gone_in_the_next(db18: str, role: str, switch: str) -> None:
    async with one_connection_client(db18) as client:
        assert await run_sql(client, "SELECT current_user AS who") == [{"who": "postgres"}]
        await attempt(client, switch.format(role=role))
        after = await run_sql(client, "SELECT current_user AS who, session_user AS session")
    assert after == [{"who": "postgres", "session": "postgres"}]


async def test_a_temporary_table_never_shadows_the_real_table_in_the_next_call(db18: str) -> None:
    async with one_connection_client(db18) as client:
        await run_sql(client, "CREATE TABLE items (id int)", write=True)
        await attempt(client, "CREATE TEMP TABLE items (id int)")
        await run_sql(client, "INSERT INTO items VALUES (1)", write=True)
    conn = await asyncpg.connect(db18)
    try:
        assert await conn.fetchval("SELECT count(*) FROM public.items") == 1
        assert await conn.fetchval("SELECT count(*) FROM pg_class WHERE relpersistence = 't'") == 0
    finally:
        await conn.close()


async def test_a_prepared_statement_does_not_survive_into_the_next_call(db18: str) -> None:
    async with one_connection_client(db18) as client:
        await attempt(client, "PREPARE leaked AS SELECT 1")
        left = await run_sql(client, "SELECT count(*) AS n FROM pg_prepared_statements WHERE name = 'leaked'")
        await run_sql(client, "PREPARE leaked AS SELECT 2", write=True)  # would fail: "already exists"
    assert left == [{"n": 0}]


async def test_settings_listeners_and_advisory_locks_are_reset_between_calls(db18: str) -> None:
    async with one_connection_client(db18) as client:
        await run_sql(client, "CREATE SCHEMA elsewhere", write=True)
        await attempt(client, "SET search_path = elsewhere")
        await attempt(client, "LISTEN leaked_channel")
        await attempt(client, "SELECT pg_advisory_lock(4242)")  # session-level: outlives its transaction
        conn = await asyncpg.connect(db18)
        try:
            locks = await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
        finally:
            await conn.close()
        path = await run_sql(client, "SELECT current_setting('search_path') AS path")
        listening = await run_sql(client, "SELECT count(*) AS n FROM pg_listening_channels()")
    assert locks == 0
    assert path == [{"path": '"$user", public'}] and listening == [{"n": 0}]


LEAKS = {
    "role": ("SET ROLE {role}", "SELECT current_user::text = 'postgres'"),
    "session authorization": ("SET SESSION AUTHORIZATION {role}", "SELECT session_user::text = 'postgres'"),
    "setting": ("SET search_path = pg_catalog", "SELECT current_setting('search_path') = '\"$user\", public'"),
    "temporary table": ("CREATE TEMP TABLE shadow (id int)", "SELECT to_regclass('pg_temp.shadow') IS NULL"),
    "prepared statement": ("PREPARE leaked AS SELECT 1", "SELECT NOT EXISTS (SELECT FROM pg_prepared_statements)"),
    "listener": ("LISTEN leaked", "SELECT NOT EXISTS (SELECT FROM pg_listening_channels())"),
    "advisory lock": ("SELECT pg_advisory_lock(7)", "SELECT NOT EXISTS (SELECT FROM pg_locks WHERE objid = 7)"),
}


@pytest.mark.parametrize("leak", sorted(LEAKS))
async def test_every_connection_goes_back_to_the_pool_as_a_new_session(db18: str, role: str, leak: str) -> None:
    attack, check = LEAKS[leak]
    db = Databases([Environment(name="local", url=f"{db18}?connection_limit=1")])
    try:
        async with db.connection("local") as conn:
            backend = conn.get_server_pid()
            await conn.execute(attack.format(role=role))
        async with db.connection("local") as conn:
            assert conn.get_server_pid() == backend  # the same server session, reset in between
            assert await conn.fetchval(check) is True
    finally:
        await db.close()


async def test_pooled_connections_still_answer_after_their_reset(db18: str) -> None:
    db = Databases([Environment(name="local", url=f"{db18}?connection_limit=1")])
    try:
        for i in range(3):  # the same connection, reset (DISCARD ALL) between uses
            async with db.read_only("local") as conn:
                assert await conn.fetchval("SELECT $1::int + 1", i) == i + 1
                assert await conn.fetchval("SELECT count(*) FROM pg_class WHERE relname = $1", "pg_class") == 1
    finally:
        await db.close()


# ------------------------------------------------------------------------------------------ a busy pool


async def test_a_busy_pool_is_reported_as_busy_not_as_a_failed_connection(db18: str) -> None:
    db = Databases([Environment(name="local", url=f"{db18}?connection_limit=1&pool_timeout=0.2")])
    try:
        async with db.connection("local"):
            with pytest.raises(EnvironmentBusy, match="'local' is busy") as caught:
                async with db.connection("local"):
                    pass
        assert "cannot connect" not in str(caught.value)
    finally:
        await db.close()


async def test_several_connections_taken_together_never_deadlock_with_each_other(db18: str) -> None:
    import asyncio

    db = Databases([Environment(name="local", url=f"{db18}?connection_limit=3&pool_timeout=20")])

    async def pair() -> int:
        async with db.read_only_with_helpers("local", helpers=1) as (conn, helpers):
            await asyncio.sleep(0)  # yield while holding both, as a compare does
            return len(helpers) + int(await conn.fetchval("SELECT 1"))

    try:
        assert await asyncio.wait_for(asyncio.gather(*(pair() for _ in range(12))), timeout=20) == [2] * 12
    finally:
        await db.close()


# ------------------------------------------------------------------------------------------ URL forms


@pytest.fixture
def dotted_user(pg18: LocalPostgres) -> Iterator[tuple[str, str]]:
    """A role named like a Supabase pooler user (`postgres.<project-ref>`), with a password."""
    import asyncio

    name, password = f"postgres.{secrets.token_hex(6)}", secrets.token_urlsafe(12)

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(pg18.url())
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'"))
    yield name, password
    asyncio.run(run(f'DROP ROLE IF EXISTS "{name}"'))


PRISMA_QUERIES = [
    "schema=public",
    "schema=app&connection_limit=1",
    "pgbouncer=true&connection_limit=1",
    "connect_timeout=10",
    "connect_timeout=0&pool_timeout=0",
    "sslmode=prefer",
    "sslmode=disable&sslaccept=accept_invalid_certs",
    "socket_timeout=20&statement_cache_size=100",
    "application_name=pgshift_test&schema=public",
    "schema=public&connection_limit=5&pool_timeout=10&connect_timeout=10&socket_timeout=20&pgbouncer=true",
]


@pytest.mark.parametrize("query", PRISMA_QUERIES)
async def test_every_url_form_prisma_writes_connects_and_keeps_its_own_parameters_to_itself(
    db18: str, query: str
) -> None:
    env = Environment(name="local", url=f"{db18}?{query}")
    db = Databases([env])
    try:
        async with db.read_only("local") as conn:
            assert await conn.fetchval("SELECT 1") == 1
            if "application_name" in query:
                assert await conn.fetchval("SHOW application_name") == "pgshift_test"
        direct = await connect(env)
        await direct.close()
        pool = await db.pool("local")
        limit = dict(p.split("=") for p in query.split("&")).get("connection_limit")
        assert pool.get_max_size() == (int(limit) if limit else 5)
    finally:
        await db.close()
    assert env.prisma_schema == dict(p.split("=") for p in query.split("&")).get("schema")
    assert env.uses_transaction_pooler == ("pgbouncer=true" in query)


async def test_supabase_pooler_urls_with_a_dotted_user_connect(
    pg18: LocalPostgres, dotted_user: tuple[str, str]
) -> None:
    user, password = dotted_user
    for query in ["", "?pgbouncer=true", "?pgbouncer=true&connection_limit=1", "?sslmode=prefer"]:
        env = Environment(name="production", url=pg18.url(user=user, password=password) + query)
        conn = await connect(env)
        try:
            assert await conn.fetchval("SELECT current_user") == user
        finally:
            await conn.close()


def test_prisma_parameters_become_client_settings() -> None:
    env = Environment(
        name="p", url="postgresql://u:pw@h:5432/db?schema=app&connect_timeout=3&application_name=x&options=-c%20a%3Db"
    )
    kwargs = connect_kwargs(env)
    assert kwargs["timeout"] == 3.0
    assert "schema" not in kwargs["dsn"] and "connect_timeout" not in kwargs["dsn"]
    assert "application_name=x" in kwargs["dsn"] and "options=" in kwargs["dsn"]
    assert env.prisma_schema == "app"


def test_a_parameter_that_is_not_a_number_is_a_clear_error_naming_the_environment() -> None:
    env = Environment(name="staging", url="postgresql://u:pw@h:5432/db?connection_limit=many")
    with pytest.raises(ConfigError, match=r"environment 'staging'.*connection_limit='many' is not a number"):
        connect_kwargs(env)


# ------------------------------------------------------------------------------------------ passwords


@pytest.fixture
def password_roles(pg18: LocalPostgres) -> Iterator[dict[str, str]]:
    """One login role per special character, its password holding that character."""
    import asyncio

    roles = {char: f"pw_{secrets.token_hex(4)}" for char in SPECIALS}

    async def run(statements: list[str]) -> None:
        conn = await asyncpg.connect(pg18.url())
        try:
            for sql in statements:
                await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run([f"CREATE ROLE {r} LOGIN PASSWORD '{password_with(c)}'" for c, r in roles.items()]))
    yield roles
    asyncio.run(run([f"DROP ROLE IF EXISTS {r}" for r in roles.values()]))


def raw_url(pg: LocalPostgres, user: str, password: str) -> str:
    return f"postgresql://{user}:{password}@127.0.0.1:{pg.port}/postgres"


@pytest.mark.parametrize("char", SPECIALS)
async def test_a_percent_encoded_password_with_any_special_character_connects(
    pg18: LocalPostgres, password_roles: dict[str, str], char: str
) -> None:
    env = Environment(name="local", url=raw_url(pg18, password_roles[char], quote(password_with(char), safe="")))
    conn = await connect(env)
    try:
        assert await conn.fetchval("SELECT current_user") == password_roles[char]
    finally:
        await conn.close()


@pytest.mark.parametrize("char", SPECIALS)
async def test_an_unencoded_password_is_one_environments_clear_error_and_never_shown(
    pg18: LocalPostgres, password_roles: dict[str, str], char: str
) -> None:
    bad = Environment(name="broken", url=raw_url(pg18, password_roles[char], password_with(char)))
    db = Databases([bad, Environment(name="local", url=pg18.url())])
    try:
        listed = {e.name: e for e in (await list_environments(db)).environments}
        try:
            async with db.read_only("broken") as conn:
                outcome = f"connected as {await conn.fetchval('SELECT current_user')}"
        except (ConfigError, ConnectionFailed) as exc:
            outcome = str(exc)
    finally:
        await db.close()
    assert listed["local"].reachable and listed["local"].error is None
    shown = f"{listed['broken'].model_dump_json()} {outcome}"
    assert "Qz" not in shown, shown
    if not listed["broken"].reachable:  # '@', '%' and spaces are read as meant; '#', '/', '?' cannot be
        assert "environment 'broken'" in (listed["broken"].error or "") and "percent-encode" in outcome
