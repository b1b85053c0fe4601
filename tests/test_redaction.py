"""Other database sessions' statements never bring their secrets into an answer (issue 16, finding 3).

Real sessions put `ALTER ROLE … PASSWORD`, pgcrypto keys and connection strings with `password=` into
pg_stat_activity while they hold a lock; check_locks (over MCP) and apply_migration's lock refusal must show the
sessions without any of those secrets, in the structured content or the text. A statement cut at
track_activity_query_size (a literal cut open) shows only its kind.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from mcp import Client
from support_apply import target

from pgshift.server.app import build_app
from pgshift.tools.apply import Timeouts, apply_migration
from pgshift.tools.databases import Environment
from pgshift.tools.errors import NotAllowed
from pgshift.tools.redact import MASKED_LITERAL, redact_statement, statement_kind

LONG_KEY = "trunc-secret-" + "k" * 3000  # longer than track_activity_query_size (1024 by default)

# (setup statements run first in the same transaction, the statement whose text carries the secret, the secret)
SECRET_STATEMENTS: list[tuple[list[str], str, str]] = [
    (["CREATE ROLE redact_victim_a"], "ALTER ROLE redact_victim_a PASSWORD 'hunter2-secret'", "hunter2-secret"),
    (
        ["CREATE ROLE redact_victim_b"],
        "ALTER USER redact_victim_b WITH ENCRYPTED PASSWORD $pw$dollar-secret$pw$",
        "dollar-secret",
    ),
    (
        ["CREATE FUNCTION public.pgp_sym_encrypt(text, text) RETURNS bytea LANGUAGE sql AS 'SELECT NULL::bytea'"],
        "SELECT pgp_sym_encrypt('row data', E'pgcrypto-key-secret')",
        "pgcrypto-key-secret",
    ),
    (
        ["CREATE FUNCTION public.dblink_connect(text) RETURNS text LANGUAGE sql AS 'SELECT NULL::text'"],
        "SELECT dblink_connect('host=elsewhere dbname=x user=u password=dblink-secret')",
        "dblink-secret",
    ),
    (
        [
            "CREATE FOREIGN DATA WRAPPER redact_fdw",
            "CREATE SERVER redact_srv FOREIGN DATA WRAPPER redact_fdw OPTIONS (host 'h', dbname 'd')",
        ],
        "CREATE USER MAPPING FOR CURRENT_USER SERVER redact_srv OPTIONS (user 'u', password 'mapping-secret')",
        "mapping-secret",
    ),
    (
        ["CREATE FUNCTION public.pgp_sym_encrypt(text, text, text) RETURNS bytea LANGUAGE sql AS 'SELECT NULL::bytea'"],
        f"SELECT pgp_sym_encrypt('row data', '{LONG_KEY}', 'cipher-algo=aes256')",
        "trunc-secret",
    ),
    (  # connect = false: allowed in a transaction block, and it never connects anywhere
        [],
        "CREATE SUBSCRIPTION redact_sub CONNECTION 'host=elsewhere dbname=x password=subscription-secret' "
        "PUBLICATION p WITH (connect = false)",
        "subscription-secret",
    ),
]
SECRETS = [s for _, _, s in SECRET_STATEMENTS]


@dataclass
class Holders:
    url: str
    pids: dict[str, int]  # secret → pid of the session whose statement carries it


@pytest.fixture
async def holders(fresh_db: str) -> AsyncIterator[Holders]:
    """One session per secret: BEGIN; a lock on `accounts`; the secret statement; then idle in transaction.
    (Each creates differently named objects, so no session waits for another's uncommitted catalog row.)"""
    setup = await asyncpg.connect(fresh_db)
    await setup.execute("CREATE TABLE accounts (id int PRIMARY KEY)")
    await setup.close()
    conns: list[asyncpg.Connection] = []
    pids: dict[str, int] = {}
    try:
        for prelude, statement, secret in SECRET_STATEMENTS:
            conn = await asyncpg.connect(fresh_db)
            conns.append(conn)
            await conn.execute("SET lock_timeout = '5s'")  # bounded: sessions must never wait for one another
            await conn.execute("BEGIN")
            await conn.execute("LOCK TABLE accounts IN ACCESS SHARE MODE")
            for sql in prelude:
                await conn.execute(sql)
            await conn.execute(statement)
            pids[secret] = conn.get_server_pid()
        yield Holders(fresh_db, pids)
    finally:
        for conn in conns:
            if not conn.is_closed():
                await conn.execute("ROLLBACK")
                await conn.close()


async def seen_in_pg_stat_activity(url: str) -> str:
    """What PostgreSQL itself shows (the attack is real only if the secrets are there)."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT query FROM pg_stat_activity WHERE datname = current_database()")
        return "\n".join(r["query"] or "" for r in rows)
    finally:
        await conn.close()


def everything(result: Any) -> str:
    """Every character of an MCP answer: structured content and text content."""
    texts = [getattr(c, "text", "") for c in result.content]
    return json.dumps(result.structured_content) + "\n".join(texts)


async def test_check_locks_shows_other_sessions_without_their_passwords_keys_or_connection_strings(
    holders: Holders,
) -> None:
    raw = await seen_in_pg_stat_activity(holders.url)
    assert all(s in raw for s in SECRETS if s != "trunc-secret") and "trunc-secret" in raw
    app = build_app(lambda: [Environment(name="local", url=holders.url)])
    async with Client(app, raise_exceptions=False) as client:
        result = await client.call_tool("check_locks", {"environment": "local", "tables": ["accounts"]})
    assert not result.is_error, result.content
    answer = everything(result)
    for secret in SECRETS:
        assert secret not in answer, secret
    assert "k" * 40 not in answer  # no part of the cut key either
    shown = {s["pid"]: s["query"] for s in result.structured_content["statements"]["data"]}
    assert set(holders.pids.values()) <= set(shown)  # every session is there, only its secret is not
    assert shown[holders.pids["hunter2-secret"]] == f"ALTER ROLE redact_victim_a PASSWORD {MASKED_LITERAL}"
    assert shown[holders.pids["pgcrypto-key-secret"]] == f"SELECT pgp_sym_encrypt({MASKED_LITERAL}, {MASKED_LITERAL})"
    assert shown[holders.pids["trunc-secret"]].startswith("SELECT … [statement text withheld")


async def test_the_lock_refusal_of_an_apply_names_the_blocking_session_without_its_password(
    holders: Holders,
) -> None:
    db = target(holders.url)
    try:
        with pytest.raises(NotAllowed) as info:
            await apply_migration(
                db,
                "target",
                "add",
                sql="ALTER TABLE accounts ADD COLUMN note text;\n",
                version="1",
                timeouts=Timeouts(lock_ms=1),
            )
    finally:
        await db.close()
    message = str(info.value)
    assert f"pid {holders.pids['hunter2-secret']}" in message  # the refusal happened, naming the holder
    assert "ALTER ROLE redact_victim_a PASSWORD" in message
    for secret in SECRETS:
        assert secret not in message, secret
    conn = await asyncpg.connect(holders.url)
    try:  # judged on the database: nothing ran
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM pg_attribute WHERE attrelid = 'accounts'::regclass AND attname = 'note'"
            )
            == 0
        )
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("ALTER ROLE app PASSWORD 'plain-secret'", "plain-secret"),
        ("alter user app with encrypted password E'esc\\'aped-secret'", "aped-secret"),
        ("CREATE ROLE app LOGIN PASSWORD $$dollar-secret$$ VALID UNTIL 'infinity'", "dollar-secret"),
        ("CREATE USER app PASSWORD $tag$tagged-secret$tag$", "tagged-secret"),
        ("ALTER ROLE app PASSWORD U&'unicode\\0073ecret'", "unicode"),
        ("SELECT pgp_sym_decrypt(col, 'sym-key-secret') FROM t", "sym-key-secret"),
        ("SELECT pgp_pub_encrypt('x', dearmor('-----BEGIN PGP PUBLIC KEY----- pub-secret'))", "pub-secret"),
        ("SELECT encrypt('data', 'aes-key-secret', 'aes')", "aes-key-secret"),
        ("SELECT decrypt(c, 'aes-key-secret', 'aes') FROM t", "aes-key-secret"),
        ("SELECT hmac('data', 'hmac-key-secret', 'sha256')", "hmac-key-secret"),
        ("SELECT crypt('crypt-secret', gen_salt('bf'))", "crypt-secret"),
        ("SELECT * FROM dblink('dbname=x password=dbl-secret', 'SELECT 1') AS t(a int)", "dbl-secret"),
        ("CREATE SUBSCRIPTION s CONNECTION 'host=h password=sub-secret' PUBLICATION p", "sub-secret"),
        ("ALTER SUBSCRIPTION s CONNECTION 'password=sub2-secret'", "sub2-secret"),
        ("CREATE USER MAPPING FOR u SERVER s OPTIONS (password 'map-secret')", "map-secret"),
        ("ALTER USER MAPPING FOR u SERVER s OPTIONS (SET password 'map2-secret')", "map2-secret"),
        ("CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (password 'fdw-secret')", "fdw-secret"),
        ("SELECT 1; ALTER ROLE app PASSWORD 'second-statement-secret'", "second-statement-secret"),
        ("SELECT 1 -- note: the password is comment-secret\n", "comment-secret"),
        ("SELECT /* comment-secret */ 1", "comment-secret"),
        ("ALTER ROLE app PASSWORD 'cut-open-secret", "cut-open-secret"),
        ("SELECT pgp_sym_encrypt('x', $k$cut-dollar-secret", "cut-dollar-secret"),
        ("DO $$ BEGIN EXECUTE 'ALTER ROLE app PASSWORD ''do-secret'''; END $$", "do-secret"),
    ],
)
def test_a_secret_in_any_string_constant_or_comment_is_never_kept(text: str, secret: str) -> None:
    redacted = redact_statement(text)
    assert redacted is not None and secret not in redacted


def test_a_statement_that_does_not_parse_shows_only_its_leading_keywords() -> None:
    assert redact_statement("ALTER ROLE app PASSWORD 'cut") == (
        "ALTER ROLE … [statement text withheld: it does not parse, it may be cut short]"
    )
    assert statement_kind("  -- lead\n/* c */ create user mapping for someone server s options (password 'x")
    assert statement_kind("hunter2 is my password") == "(unknown statement)"
    assert statement_kind('ALTER ROLE "hunter2" PASSWORD') == "ALTER ROLE"


def test_the_shape_of_a_parsed_statement_stays_readable() -> None:
    assert redact_statement('SELECT id, "Name" FROM public.t WHERE a = $1 AND b > 3') == (
        'SELECT id, "Name" FROM public.t WHERE a = $1 AND b > 3'
    )
    assert redact_statement(None) is None
    assert redact_statement("<insufficient privilege>") == "<insufficient privilege>"
