"""Concurrent tool calls, compares included, never deadlock the pools or fail as collateral.

50 mixed calls at once (a fifth of them compare_schemas, each taking two connections per environment), in
memory through `mcp.Client` and over streamable HTTP with the bearer token, must all succeed. Timings are the
benchmark's business (`bench/bench_load.py`); here every wait is only bounded.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from pgshift.server.app import build_app
from pgshift.tools.databases import Environment
from pgshift.tools.localpg import LocalPostgres

APP_SQL = (Path(__file__).resolve().parents[1] / "tools" / "sample" / "app.sql").read_text()
CALLS = 50
TOKEN = "load-token-0123456789"

# (tool, arguments): cycled to make the mixed load; compare_schemas is every fifth call.
MIX: list[tuple[str, dict[str, Any]]] = [
    ("compare_schemas", {"source": "local", "target": "production"}),
    ("list_tables", {"environment": "local"}),
    ("execute_sql", {"environment": "production", "sql": "SELECT count(*) AS n FROM pg_class"}),
    ("describe_table", {"environment": "local", "table": "ModelConfiguration"}),
    ("list_environments", {}),
    ("compare_schemas", {"source": "production", "target": "local", "plan": True}),
    ("list_extensions", {"environment": "production"}),
    ("list_tables", {"environment": "production", "verbose": True}),
    ("execute_sql", {"environment": "local", "sql": "SELECT 1 AS one"}),
    ("describe_table", {"environment": "production", "table": "FieldConfiguration"}),
]


def workload(calls: int = CALLS) -> list[tuple[str, dict[str, Any]]]:
    return [MIX[i % len(MIX)] for i in range(calls)]


async def run_concurrently(client: Client, calls: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, float, str]]:
    """Every call at once: (tool, seconds, error text or '') per call."""
    outcomes: list[tuple[str, float, str]] = []

    async def one(name: str, args: dict[str, Any]) -> None:
        started = time.perf_counter()
        try:
            result = await client.call_tool(name, args)
            error = " ".join(getattr(c, "text", "") for c in result.content) if result.is_error else ""
        except Exception as exc:  # a protocol or transport failure counts as an error too
            error = f"{type(exc).__name__}: {exc}"
        outcomes.append((name, time.perf_counter() - started, error))

    async with anyio.create_task_group() as tg:
        for name, args in calls:
            tg.start_soon(one, name, args)
    return outcomes


async def app_database(server: LocalPostgres, drift: bool) -> str:
    from conftest import create_database

    url = await create_database(server, "load")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(APP_SQL)
        if drift:
            await conn.execute('ALTER TABLE "ModelConfiguration" ADD COLUMN extra text')
    finally:
        await conn.close()
    return url


@pytest.fixture
async def two_databases(pg18: LocalPostgres) -> AsyncIterator[tuple[str, str]]:
    from conftest import drop_database

    local, production = await app_database(pg18, drift=True), await app_database(pg18, drift=False)
    yield local, production
    await drop_database(pg18, local)
    await drop_database(pg18, production)


async def test_fifty_concurrent_mixed_calls_with_compares_all_succeed_in_memory(
    two_databases: tuple[str, str],
) -> None:
    local, production = two_databases
    envs = [Environment(name="local", url=local), Environment(name="production", url=production, protected=True)]
    with anyio.fail_after(120):
        async with Client(build_app(lambda: envs), raise_exceptions=False) as client:
            outcomes = await run_concurrently(client, workload())
    errors = [(name, error) for name, _, error in outcomes if error]
    assert len(outcomes) == CALLS and errors == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_http_server(cwd: Path, local: str, production: str) -> tuple[subprocess.Popen[bytes], str]:
    """`pgshift serve --http` on a free port, once it accepts connections (bounded wait)."""
    port = free_port()
    env = {**os.environ, "PGSHIFT_HTTP_TOKEN": TOKEN, "DATABASE_URL": local, "SUPABASE_DB_URL": production}
    env.pop("PGSHIFT_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgshift.server.cli", "serve", "--http", "--port", str(port)],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"http://127.0.0.1:{port}/mcp"
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"HTTP server did not start: {proc.stderr.read().decode() if proc.stderr else ''}")


def stop_http_server(proc: subprocess.Popen[bytes]) -> str:
    """Stop the server; its stderr."""
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate(timeout=10)
    return err.decode()


@pytest.fixture
def http_server(tmp_path: Path, two_databases: tuple[str, str]) -> Iterator[str]:
    proc, url = start_http_server(tmp_path, *two_databases)
    try:
        yield url
    finally:
        stderr = stop_http_server(proc)
        assert "Traceback" not in stderr, stderr


async def test_fifty_concurrent_mixed_calls_with_compares_all_succeed_over_http(http_server: str) -> None:
    with anyio.fail_after(120):
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as http:
            async with Client(streamable_http_client(http_server, http_client=http)) as client:
                outcomes = await run_concurrently(client, workload())
    errors = [(name, error) for name, _, error in outcomes if error]
    assert len(outcomes) == CALLS and errors == []
