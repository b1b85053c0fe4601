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


# Setup from another project: the README's `.mcp.json` entries and `claude mcp add` lines, with the placeholder
# paths replaced by this machine's (the checkout's venv python; its `pgshift` console script stands in for the one
# `uv tool install` / `pipx install` puts on PATH), started from a throw-away Prisma/Node project outside the checkout.
README_SETUP = "## Use it from an MCP client"


def readme_setup_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(README_SETUP)
    return text[start : text.index("\n## ", start + len(README_SETUP))]


def local_paths(text: str) -> str:
    python = Path(sys.executable)
    return text.replace("/home/you/.local/bin/pgshift", str(python.parent / "pgshift")).replace(
        "/path/to/pgshift/.venv/bin/python", str(python)
    )


def documented_entries() -> list[dict[str, Any]]:
    """The `.mcp.json` documents the README shows for another project (absolute `command`)."""
    blocks = readme_setup_section().split("```json\n")[1:]
    entries = [json.loads(block.split("```")[0])["mcpServers"]["pgshift"] for block in blocks]
    return [e for e in entries if e.get("type") == "stdio" and e["command"].startswith("/")]


def documented_add_lines() -> list[list[str]]:
    """The argv after `--` of each `claude mcp add` line the README shows."""
    import shlex

    lines = [line for line in readme_setup_section().splitlines() if line.startswith("claude mcp add ")]
    return [shlex.split(line.split("#")[0]) for line in lines]


def node_project(root: Path, database_url: str) -> Path:
    """A Prisma/Node project as a user has it: package.json, prisma/, ./.env; no .venv, no pgshift inside."""
    assert not root.resolve().is_relative_to(ROOT), "the project must be outside the checkout"
    (root / "prisma" / "migrations").mkdir(parents=True)
    (root / "package.json").write_text(json.dumps({"name": "app", "private": True, "devDependencies": {"prisma": "6"}}))
    (root / "prisma" / "schema.prisma").write_text(
        'datasource db {\n  provider = "postgresql"\n  url = env("DATABASE_URL")\n}\n'
    )
    (root / ".env").write_text(f'DATABASE_URL="{database_url}"\n')
    return root


def expand(value: str, environ: dict[str, str]) -> str:
    """Claude Code's `${VAR:-default}` expansion, enough for the documented entries."""
    import re

    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: environ.get(m[1]) or (m[2] or ""), value)


def test_the_readme_documents_absolute_mcp_json_entries_and_matching_claude_mcp_add_lines() -> None:
    entries = documented_entries()
    assert [e["args"] for e in entries] == [["serve"], ["-m", "pgshift"]], "a tool install and a checkout's venv"
    adds = documented_add_lines()
    assert len(adds) == len(entries)
    for argv, entry in zip(adds, entries, strict=True):
        assert argv[:3] == ["claude", "mcp", "add"] and "pgshift" in argv
        assert argv[argv.index("--") + 1 :] == [entry["command"], *entry["args"]]
    assert "git+https://github.com/" in readme_setup_section(), "the tool install names a git URL"
    repo_own = json.loads((ROOT / "mcp.json").read_text())["mcpServers"]["pgshift"]
    assert not repo_own["command"].startswith("/"), "the checkout's own mcp.json stays relative to the checkout"


@pytest.mark.parametrize("which", ["tool install (console script)", "checkout venv python"])
async def test_the_documented_mcp_json_starts_the_server_from_a_prisma_node_project_outside_the_checkout(
    tmp_path: Path, pg18: Any, which: str
) -> None:
    entry = documented_entries()[0 if which.startswith("tool") else 1]
    project = node_project(tmp_path / "app", pg18.url())
    (project / ".mcp.json").write_text(local_paths(json.dumps({"mcpServers": {"pgshift": entry}}, indent=2)))
    written = json.loads((project / ".mcp.json").read_text())["mcpServers"]["pgshift"]
    # What Claude Code does: expand ${...} against its own environment (neither variable set) and start the command
    # in the project folder, with a PATH that has no venv on it.
    client_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    env = {**client_env, **{k: expand(v, client_env) for k, v in written["env"].items()}}
    command = expand(written["command"], client_env)
    assert Path(command).is_absolute() and os.access(command, os.X_OK), command
    params = StdioServerParameters(command=command, args=written["args"], env=env, cwd=str(project))
    async with Client(params, read_timeout_seconds=60) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        listed = await client.call_tool("list_environments", {})
    assert len(names) == 19 and {"list_environments", "compare_schemas", "apply_migration"} <= names
    assert listed.structured_content is not None, text_of(listed)
    local = {e["name"]: e for e in listed.structured_content["environments"]}["local"]
    assert local["reachable"], "DATABASE_URL came from the Node project's ./.env"


def test_the_github_actions_example_installs_pgshift_from_its_repository_not_the_package_index() -> None:
    import shlex

    import yaml

    workflow = yaml.safe_load((ROOT / "examples" / "github-actions" / "pgshift.yml").read_text())
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    installs = [s for s in steps if "pip install" in s.get("run", "")]
    assert len(installs) == 1, "one install step"
    [step] = installs
    argv = shlex.split(step["run"].replace("$PGSHIFT_SOURCE", step.get("env", {}).get("PGSHIFT_SOURCE", "")))
    requirement = argv[-1]
    assert argv[:4] == ["python", "-m", "pip", "install"] and requirement != "pgshift"
    name, _, source = requirement.partition(" @ ")
    assert name == "pgshift" and source.startswith("git+https://github.com/") and "/pgshift@" in source, requirement
    later = [s.get("run", "") for s in steps[steps.index(step) + 1 :]]
    assert any("pgshift status" in r for r in later) and any("pgshift check" in r for r in later)
