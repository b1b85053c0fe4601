"""Client setup: mcp.json runs without an activated venv, and a broken or empty configuration never kills the
server: every tool call answers with what is wrong and the next step."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from pgshift.server.app import build_app
from pgshift.server.config import load_configuration

ROOT = Path(__file__).resolve().parents[1]


def text_of(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def test_mcp_json_starts_the_server_with_the_venvs_python_on_a_path_without_the_venv() -> None:
    entry = json.loads((ROOT / "mcp.json").read_text())["mcpServers"]["pgshift"]
    assert entry["type"] == "stdio" and entry["args"] == ["-m", "pgshift"]
    command = ROOT / entry["command"]  # relative to the project, where Claude Code starts its servers
    assert command.is_file(), f"{entry['command']} is not the venv's python"
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "DATABASE_URL": "", "SUPABASE_DB_URL": ""}
    params = StdioServerParameters(command=str(command), args=entry["args"], env=env, cwd=str(ROOT))
    async with Client(params, read_timeout_seconds=60) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert {"list_environments", "compare_schemas", "apply_migration"} <= names


async def test_an_unset_variable_in_pgshift_toml_leaves_the_server_running_and_every_call_says_what_to_fix(
    tmp_path: Path,
) -> None:
    (tmp_path / "pgshift.toml").write_text("[environments.production]\nurl_env = 'PGSHIFT_TEST_UNSET_VAR'\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PGSHIFT_TEST_UNSET_VAR", "PGSHIFT_CONFIG")}
    env["PYTHONPATH"] = str(ROOT)
    params = StdioServerParameters(command=sys.executable, args=["-m", "pgshift"], env=env, cwd=str(tmp_path))
    async with Client(params, read_timeout_seconds=60) as client:
        listed = await client.call_tool("list_environments", {})
        tables = await client.call_tool("list_tables", {"environment": "production"})
    for result in (listed, tables):
        assert result.is_error
        message = text_of(result)
        assert "PGSHIFT_TEST_UNSET_VAR is not set" in message and "restart the server" in message, message


@pytest.mark.parametrize(
    "toml, says",
    [
        ("[environments.local]\nurl = 'mysql://nope'\n", "needs url = 'postgresql://...'"),
        ("[environments\n", "invalid TOML"),
        ("[environments.local]\nurl_env = 'PGSHIFT_TEST_UNSET_VAR'\n", "PGSHIFT_TEST_UNSET_VAR is not set"),
    ],
    ids=["bad URL scheme", "bad TOML", "unset variable"],
)
async def test_a_broken_configuration_is_a_tool_error_on_every_call_with_the_next_step(
    tmp_path: Path, toml: str, says: str
) -> None:
    (tmp_path / "pgshift.toml").write_text(toml)
    app = build_app(lambda: load_configuration(tmp_path, {}))
    async with Client(app, raise_exceptions=False) as client:
        results = [
            await client.call_tool("list_environments", {}),
            await client.call_tool("check_locks", {"environment": "local"}),
            await client.call_tool("list_migrations", {}),
        ]
    for result in results:
        assert result.is_error and says in text_of(result) and "Next step: fix it" in text_of(result)


async def test_with_nothing_configured_list_environments_and_other_tools_say_how_to_configure(tmp_path: Path) -> None:
    app = build_app(lambda: load_configuration(tmp_path, {}))
    async with Client(app, raise_exceptions=False) as client:
        listed = await client.call_tool("list_environments", {})
        tables = await client.call_tool("list_tables", {"environment": "local"})
    assert listed.is_error and "no database environment is configured" in text_of(listed)
    for result in (listed, tables):
        assert "Next step: set DATABASE_URL" in text_of(result) and "pgshift.toml" in text_of(result)


def test_pgshift_serve_reports_a_broken_configuration_on_stderr_and_keeps_serving(tmp_path: Path) -> None:
    import subprocess

    (tmp_path / "pgshift.toml").write_text("[environments.local]\nurl = 'mysql://nope'\n")
    init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
    proc = subprocess.run(
        [sys.executable, "-m", "pgshift"],
        cwd=tmp_path,
        input=request + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "needs url = 'postgresql://...'" in proc.stderr
    assert json.loads(proc.stdout.splitlines()[0])["result"]["serverInfo"]["name"] == "pgshift"
