"""A person approves writes to a protected environment; the assistant cannot do it for them (issue 8, finding 4).

Every attack is made the way an assistant confined to MCP tool calls could make it, and judged by reading the
database over a second, plain asyncpg connection, never by the tool's answer.
"""

from __future__ import annotations

import os
import select
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from mcp import Client, types

from pgshift.server.app import build_app
from pgshift.tools.approval import ApprovalStore
from pgshift.tools.databases import Environment
from pgshift.tools.errors import NotAllowed
from pgshift.tools.localpg import LocalPostgres

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = "CREATE TABLE audit (id serial PRIMARY KEY, note text NOT NULL); CREATE TABLE keep (id int);"
INSERT = "INSERT INTO audit (note) VALUES ('approved')"
DROP = "DROP TABLE keep"
FORGED = ["0123456789abcdef", "../../../etc/passwd", "1.bogus", "", "ffffffffffffffff"]


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared approval directory (server and `pgshift approve`), private to each test."""
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


async def direct_sql(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def seen(url: str) -> tuple[list[str], bool, bool]:
    """What a second connection sees: audit notes, whether `keep` exists, whether any migration was recorded."""
    conn = await asyncpg.connect(url)
    try:
        notes = [r[0] for r in await conn.fetch("SELECT note FROM audit ORDER BY id")]
        keep = await conn.fetchval("SELECT to_regclass('public.keep') IS NOT NULL")
        recorded = await conn.fetchval("SELECT to_regclass('pgshift.migrations') IS NOT NULL")
        if recorded:
            recorded = bool(await conn.fetchval("SELECT count(*) FROM pgshift.migrations"))
        return notes, bool(keep), bool(recorded)
    finally:
        await conn.close()


UNCHANGED: tuple[list[str], bool, bool] = ([], True, False)


@pytest.fixture
async def production(pg18: LocalPostgres) -> AsyncIterator[str]:
    from conftest import create_database, drop_database

    url = await create_database(pg18, "prod")
    await direct_sql(url, SCHEMA)
    yield url
    await drop_database(pg18, url)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose one pending Prisma migration drops a table."""
    folder = tmp_path / "project" / "prisma" / "migrations" / "20240101000000_drop_keep"
    folder.mkdir(parents=True)
    (folder / "migration.sql").write_text(f"{DROP};\n")
    monkeypatch.chdir(tmp_path / "project")
    return tmp_path / "project"


def client_for(url: str, **kwargs: Any) -> Client:
    envs = [Environment(name="production", url=url, protected=True)]
    return Client(build_app(lambda: envs), raise_exceptions=False, **kwargs)


def answering(action: str, approve: bool = True) -> Any:
    async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        content = {"approve": approve} if action == "accept" else None
        return types.ElicitResult(action=action, content=content)  # type: ignore[arg-type]

    return callback


async def attempt(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    """Call a tool; its structured answer (or the error text under 'error')."""
    result = await client.call_tool(tool, args)
    if result.is_error:
        return {"error": " ".join(getattr(c, "text", "") for c in result.content)}
    return dict(result.structured_content or {})


WRITES: list[tuple[str, dict[str, Any]]] = [
    ("execute_sql", {"environment": "production", "sql": INSERT, "write": True}),
    ("apply_migration", {"environment": "production", "name": "drop_keep", "sql": f"{DROP};"}),
    ("deploy", {"environment": "production"}),
]


# The store itself.


def test_a_request_file_is_private_and_holds_statements_and_the_redacted_url_never_the_password(tmp_path: Path) -> None:
    store = ApprovalStore(tmp_path)
    url = "postgresql://postgres:****@db.example.com:5432/postgres"
    request = store.file("execute_sql", "production", url, [INSERT], ("execute_sql", "production", INSERT))
    path = store.directory / f"{request.id}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    text = path.read_text()
    assert INSERT in text and "****@db.example.com" in text and len(request.id) == 16


def test_an_approval_serves_exactly_one_call_even_when_calls_race(tmp_path: Path) -> None:
    store = ApprovalStore(tmp_path)
    binding = ("execute_sql", "production", INSERT)
    request = store.file("execute_sql", "production", "u", [INSERT], binding)
    store.approve(request.id)

    def use(_: int) -> bool:
        try:
            store.consume(request.id, "u", binding, "this SQL")
            return True
        except NotAllowed:
            return False

    with ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(use, range(16))) == [False] * 15 + [True]


def test_an_expired_or_withdrawn_request_can_be_neither_approved_nor_used(tmp_path: Path) -> None:
    expired = ApprovalStore(tmp_path, ttl_s=0)
    old = expired.file("deploy", "production", "u", ["x"], ("x",))
    with pytest.raises(NotAllowed, match="expired"):
        expired.approve(old.id)
    store = ApprovalStore(tmp_path)
    declined = store.file("deploy", "production", "u", ["x"], ("x",))
    store.withdraw(declined.id)
    with pytest.raises(NotAllowed, match="does not exist"):
        store.approve(declined.id)
    with pytest.raises(NotAllowed, match="does not exist"):
        store.consume(declined.id, "u", ("x",), "this deploy")


def test_a_string_that_is_not_a_request_id_names_no_file(tmp_path: Path) -> None:
    store = ApprovalStore(tmp_path)
    for forged in FORGED[1:4]:
        with pytest.raises(NotAllowed, match="not an approval request id"):
            store.consume(forged, "u", ("x",), "this")


# Through MCP (in memory): the tricks of a client without elicitation and of one whose person declines.


async def test_a_client_without_elicitation_cannot_make_a_protected_write_with_any_id_it_gets(
    production: str, pg18: LocalPostgres, state_dir: Path
) -> None:
    async with client_for(production) as client:
        first = await attempt(client, "execute_sql", **WRITES[0][1])
        request_id = first["approval_id"]
        assert first["status"] == "confirmation_required" and "pgshift approve" in first["message"]
        filed = (state_dir / "approvals" / f"{request_id}.json").read_text()
        assert INSERT in filed and pg18.password not in filed
        for candidate in [request_id, *FORGED]:
            out = await attempt(client, "execute_sql", **WRITES[0][1], approval_id=candidate)
            assert "error" in out, out
        smuggled = {"answer": {"action": "accept", "data": {"approve": True}}, "first": first}
        assert "error" in await attempt(client, "execute_sql", **WRITES[0][1], approval_id=request_id, **smuggled)
        assert await seen(production) == UNCHANGED

        ApprovalStore().approve(request_id)  # the person approves INSERT ...
        other = "DELETE FROM keep"  # ... and the assistant sends something else with the id
        out = await attempt(
            client, "execute_sql", environment="production", sql=other, write=True, approval_id=request_id
        )
        assert "does not match" in out["error"]
        assert "error" in await attempt(client, "execute_sql", **WRITES[0][1], approval_id=request_id)
        assert await seen(production) == UNCHANGED

        again = (await attempt(client, "execute_sql", **WRITES[0][1]))["approval_id"]
        ApprovalStore().approve(again)
        answers = [await attempt(client, "execute_sql", **WRITES[0][1], approval_id=again) for _ in range(3)]
    assert answers[0]["committed"] is True and all("error" in a for a in answers[1:])
    assert await seen(production) == (["approved"], True, False)  # once, not three times


async def test_an_approved_migration_is_refused_when_the_target_changed_before_use(production: str) -> None:
    args = WRITES[1][1]
    async with client_for(production) as client:
        request_id = (await attempt(client, "apply_migration", **args))["approval_id"]
        ApprovalStore().approve(request_id)
        await direct_sql(production, "CREATE TABLE drifted (id int)")
        out = await attempt(client, "apply_migration", **args, approval_id=request_id)
        assert "target changed" in out["error"]
        out = await attempt(client, "apply_migration", **args, approval_id=request_id)
    assert "does not exist" in out["error"]
    assert await seen(production) == UNCHANGED


async def test_an_approval_does_not_run_on_another_database_configured_under_the_same_name(
    production: str, pg18: LocalPostgres
) -> None:
    from conftest import create_database, drop_database

    other = await create_database(pg18, "other")
    try:
        await direct_sql(other, SCHEMA)
        async with client_for(production) as client:
            request_id = (await attempt(client, "execute_sql", **WRITES[0][1]))["approval_id"]
        ApprovalStore().approve(request_id)
        async with client_for(other) as client:  # the server restarted with 'production' pointing elsewhere
            out = await attempt(client, "execute_sql", **WRITES[0][1], approval_id=request_id)
        assert "does not match" in out["error"]
        assert await seen(other) == UNCHANGED and await seen(production) == UNCHANGED
    finally:
        await drop_database(pg18, other)


# Both transports: "auto" negotiates 2026-07-28 (elicitation inside InputRequiredResult, resolvers re-run per
# round); "legacy" is the initialize handshake (a standalone elicitation/create request mid-call).
@pytest.mark.parametrize(
    ("action", "approve", "mode"), [("decline", True, "auto"), ("cancel", True, "legacy"), ("accept", False, "legacy")]
)
async def test_a_person_who_declines_elicitation_is_final_for_every_write(
    production: str, project: Path, action: str, approve: bool, mode: str
) -> None:
    async with client_for(production, elicitation_callback=answering(action, approve), mode=mode) as client:
        for tool, args in WRITES:
            out = await attempt(client, tool, **args)
            assert out["status"] == "confirmation_required" and out["approval_id"] is None, out
            assert "declined" in out["message"]
            for candidate in FORGED:
                assert "error" in await attempt(client, tool, **args, approval_id=candidate)
    assert ApprovalStore().pending() == []  # nothing left that anyone could approve later
    assert await seen(production) == UNCHANGED


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_person_approving_by_elicitation_runs_exactly_that_write_once(production: str, mode: str) -> None:
    asked: list[str] = []

    async def person(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"approve": True})

    async with client_for(production, elicitation_callback=person, mode=mode) as client:
        out = await attempt(client, "execute_sql", **WRITES[0][1])
    assert out["committed"] is True and out["approval_id"] is None
    assert len(asked) == 1 and INSERT in asked[0] and "production" in asked[0]
    assert ApprovalStore().pending() == []
    assert await seen(production) == (["approved"], True, False)


# `pgshift approve` at a terminal.


def approve_at_terminal(request_id: str, typed: str, state: Path) -> tuple[int, str]:
    """Run `pgshift approve ID` under a pseudo-terminal, type `typed`; its exit code and what it showed."""
    master, slave = os.openpty()
    env = {**os.environ, "PGSHIFT_STATE_DIR": str(state)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgshift.server.cli", "approve", request_id],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    os.write(master, f"{typed}\n".encode())
    shown = b""
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        return proc.wait(timeout=30), shown.decode(errors="replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


def test_pgshift_approve_shows_the_statements_and_approves_only_when_the_environment_name_is_typed(
    state_dir: Path,
) -> None:
    store = ApprovalStore()
    url = "postgresql://postgres:****@127.0.0.1:5432/postgres"
    wrong = store.file("execute_sql", "production", url, [INSERT], ("execute_sql", "production", INSERT))
    code, shown = approve_at_terminal(wrong.id, "yes", state_dir)
    assert code == 2 and INSERT in shown and url in shown
    assert not store.is_approved(wrong.id) and store.pending() == []  # declined: withdrawn
    right = store.file("execute_sql", "production", url, [INSERT], ("execute_sql", "production", INSERT))
    code, shown = approve_at_terminal(right.id, "production", state_dir)
    assert code == 0 and "approved" in shown and store.is_approved(right.id)


def test_pgshift_approve_without_a_terminal_refuses(state_dir: Path) -> None:
    store = ApprovalStore()
    request = store.file("execute_sql", "production", "u", [INSERT], ("execute_sql", "production", INSERT))
    proc = subprocess.run(
        [sys.executable, "-m", "pgshift.server.cli", "approve", request.id],
        input="production\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert proc.returncode == 1 and "TTY" in proc.stderr
    assert not store.is_approved(request.id)
