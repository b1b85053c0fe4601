"""`pgshift serve --http`: streamable HTTP on 127.0.0.1 that requires the bearer token."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from pgshift.tools.localpg import LocalPostgres

TOKEN = "test-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server(tmp_path: Path, pg18: LocalPostgres) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PGSHIFT_HTTP_TOKEN": TOKEN, "DATABASE_URL": pg18.url()}
    env.pop("SUPABASE_DB_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgshift.server.cli", "serve", "--http", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("HTTP server did not start within 30 s")
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


async def test_http_without_the_bearer_token_gets_401(http_server: str) -> None:
    async with httpx2.AsyncClient() as http:
        plain = await http.post(http_server, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        wrong = await http.post(
            http_server, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers={"Authorization": "Bearer x"}
        )
    assert plain.status_code == 401 and wrong.status_code == 401


async def test_http_with_the_token_serves_the_same_tools_as_stdio(http_server: str) -> None:
    with anyio.fail_after(60):
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
            async with Client(streamable_http_client(http_server, http_client=http)) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                out = await client.call_tool("execute_sql", {"environment": "local", "sql": "SELECT 1 AS one"})
    assert "execute_sql" in names and "list_environments" in names
    assert out.structured_content is not None and out.structured_content["result"]["data"]["rows"] == [{"one": 1}]


BAD_URL = "postgresql://postgres:Qz1#Qz2/Qz3?Qz4@Qz5%Qz6 Qz7@127.0.0.1:1/postgres"


@pytest.fixture
def bad_url_server(tmp_path: Path, pg18: LocalPostgres) -> Iterator[str]:
    """The HTTP server with a malformed DATABASE_URL; on the way out, its stderr must hold no traceback and no
    piece of the password."""
    port = free_port()
    env = {**os.environ, "PGSHIFT_HTTP_TOKEN": TOKEN, "DATABASE_URL": BAD_URL, "SUPABASE_DB_URL": pg18.url()}
    env.pop("PGSHIFT_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgshift.server.cli", "serve", "--http", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("HTTP server did not start within 30 s")
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate(timeout=10)
    stderr = err.decode()
    assert "Traceback" not in stderr and "Qz" not in stderr, stderr


async def test_over_http_bad_input_never_reaches_stderr_as_a_traceback_or_a_password(bad_url_server: str) -> None:
    url = bad_url_server
    with anyio.fail_after(60):
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
            garbage = await http.post(url, content=b"{not json", headers={"content-type": "application/json"})
            odd = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "no/such/method"})
            async with Client(streamable_http_client(url, http_client=http)) as client:
                listed = await client.call_tool("list_environments", {})
                broken = await client.call_tool("list_tables", {"environment": "local"})
    assert garbage.status_code >= 400 and odd.status_code >= 400
    assert listed.structured_content is not None
    by_name = {e["name"]: e for e in listed.structured_content["environments"]}
    assert by_name["production"]["reachable"] and "environment 'local'" in by_name["local"]["error"]
    assert broken.is_error and "Qz" not in repr(listed) + repr(broken)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_a_loopback_host_is_served_without_a_warning(host: str) -> None:
    from pgshift.server.http import exposure_warning

    assert exposure_warning(host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_a_non_loopback_host_is_warned_about(host: str) -> None:
    from pgshift.server.http import exposure_warning

    warning = exposure_warning(host)
    assert warning is not None and f"--host {host} is not a loopback address" in warning and "127.0.0.1" in warning
