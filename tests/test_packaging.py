"""The built wheel installs pgshift under its own name and runs outside the source tree: every CLI command, every MCP
tool over stdio and the dashboard in Chromium, from one install, in a project folder outside the checkout."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from pgshift.tools.localpg import LocalPostgres

ROOT = Path(__file__).resolve().parents[1]


def _build_and_install(tmp_path: Path) -> tuple[Path, Path]:
    wheels, lib = tmp_path / "wheels", tmp_path / "lib"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)], check=True, timeout=120
    )
    (wheel,) = wheels.glob("pgshift-*.whl")
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(lib), str(wheel)], check=True, timeout=120
    )
    return wheel, lib


def _outside_env(lib: Path) -> dict[str, str]:
    """Only the installed wheel and the dependencies: `-S` skips site, so the editable install is not seen."""
    return {"PYTHONPATH": f"{lib}:{sysconfig.get_paths()['purelib']}", "PGSHIFT_STATE_DIR": str(lib.parent / "state")}


def _import_outside(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    code = "import pgshift.tools.compare as c; print(c.__file__)\nimport tools"
    return subprocess.run(
        [sys.executable, "-S", "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


async def test_the_wheel_installs_one_pgshift_package_that_serves_mcp_outside_the_source_tree(
    installed: Installed, tmp_path: Path
) -> None:
    wheel, lib = installed.wheel, installed.lib
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert tops == {"pgshift", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}
    assert {p.name for p in lib.iterdir() if not p.name.endswith(".dist-info")} <= {"pgshift", "bin"}
    assert any(n.endswith(".sql") for n in zipfile.ZipFile(wheel).namelist()), "package data (lints, samples) missing"

    env = {**_outside_env(lib), "PGSHIFT_STATE_DIR": str(tmp_path / "state")}
    found = _import_outside(env, tmp_path)
    assert found.stdout.strip().startswith(str(lib)), found.stdout + found.stderr
    assert "No module named 'tools'" in found.stderr  # nothing is installed under a generic top-level name

    params = StdioServerParameters(command=sys.executable, args=["-S", "-m", "pgshift"], env=env, cwd=str(tmp_path))
    async with Client(params, read_timeout_seconds=60) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        answer = await client.call_tool("list_environments", {})
    assert {"compare_schemas", "apply_migration", "list_environments"} <= names
    assert answer.is_error and "DATABASE_URL" in str(answer.content)  # nothing configured: it says what to set


# One wheel install serves what users run: every CLI command, every MCP tool over stdio and the dashboard in
# Chromium, each run by the installed console script or `python -m pgshift` from a project folder outside the
# checkout, with only the install and the dependencies on the path (`-S`: the editable install is not seen).

NOTE = "20240101000000_note"
DROP_BODY = "20240102000000_drop_body"
MIGRATIONS = {
    NOTE: "CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL);\nINSERT INTO note VALUES (1, 'a'), (2, 'b');\n",
    DROP_BODY: "ALTER TABLE note DROP COLUMN body;\n",
}
BROKEN = ("Traceback", "ModuleNotFoundError", "No module named", "unexpected ")
INTERNAL_ERROR = re.compile(r"Error executing tool \w+")
"""A tool's answer to an exception it did not expect: the name and nothing else (a tool error says what failed)."""


@dataclass(frozen=True)
class Installed:
    wheel: Path
    lib: Path
    project: Path
    env: dict[str, str]

    @property
    def folder(self) -> Path:
        return self.project / "prisma" / "migrations"

    def command(self, *args: str) -> list[str]:
        """The wheel's `pgshift` console script, run by this interpreter without site (its shebang's python)."""
        return [sys.executable, "-S", str(self.lib / "bin" / "pgshift"), *args]

    def run(self, *args: str, codes: tuple[int, ...] = (0,), timeout: float = 120) -> str:
        proc = subprocess.run(
            self.command(*args),
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        said = proc.stdout + proc.stderr
        assert not [m for m in BROKEN if m in said], f"pgshift {' '.join(args)}:\n{said[-3000:]}"
        assert proc.returncode in codes, f"pgshift {' '.join(args)} exited {proc.returncode}:\n{said[-3000:]}"
        return said


@pytest.fixture(scope="module")
def installed(pg18: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """The wheel built and installed once (--target), and a Prisma project outside the checkout whose pgshift.toml
    names `local` and a protected `production`, two empty databases."""
    from conftest import create_database, drop_database
    from support_apply import prisma_folder

    root = tmp_path_factory.mktemp("installed")
    assert not root.resolve().is_relative_to(ROOT)
    wheel, lib = _build_and_install(root)
    local, production = asyncio.run(create_database(pg18, "inst")), asyncio.run(create_database(pg18, "inst"))
    project = root / "app"
    prisma_folder(project, MIGRATIONS)
    (project / "package.json").write_text('{"name": "app", "private": true}\n')
    (project / "pgshift.toml").write_text(
        f"[environments.local]\nurl = '{local}'\n\n[environments.production]\nurl = '{production}'\nprotected = true\n"
    )
    env = {**_outside_env(lib), "PATH": "/usr/bin:/bin", "HOME": str(root), "LANG": "C.UTF-8"}
    yield Installed(wheel, lib, project, env)
    asyncio.run(drop_database(pg18, local))
    asyncio.run(drop_database(pg18, production))


@pytest.mark.timeout(900)  # about 3 minutes on a loaded 2-core machine, the demo included
def test_every_cli_command_runs_from_the_installed_wheel_in_a_project_outside_the_checkout(
    installed: Installed,
) -> None:
    demo = subprocess.Popen(  # its own two embedded servers: run beside the other commands
        installed.command("demo"),
        cwd=installed.project,
        env=installed.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        check_every_other_command(installed)
        told, _ = demo.communicate(timeout=600)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
    assert demo.returncode == 0 and "in sync" in told and not [m for m in BROKEN if m in told], told[-3000:]


def check_every_other_command(installed: Installed) -> None:
    listed = installed.run("--help")
    commands = set(listed.split("{", 1)[1].split("}", 1)[0].split(","))
    assert "pending" in installed.run("status", codes=(2,)).lower()
    installed.run("check", "--target", "production", str(installed.folder), codes=(0, 2))
    assert "note" in installed.run("deploy", "--target", "production", "--yes")
    installed.run("compare", "--source", "local", "--target", "production", codes=(2,))
    assert "CREATE TABLE" in installed.run("plan", "--source", "production", "--target", "local", codes=(2,))
    installed.run("apply", "--target", "local", "--name", "note", str(installed.folder / NOTE))
    installed.run("snapshot", "--target", "production", "--label", "by hand")
    assert "by hand" in installed.run("snapshots", "--target", "production")
    installed.run("drift", "--target", "production", "--migrations", str(installed.folder))
    installed.run("rollback", "--target", "production", "--migration", DROP_BODY.split("_")[0], "--yes")
    installed.run("discard-kept", "--target", "production", "--yes")
    watched = installed.run("watch", "--count", "1", "--interval", "1").splitlines()
    assert [json.loads(line) for line in watched if line.startswith("{")], watched
    for asked in ([], ["0123456789abcdef"]):  # approving needs a person at a terminal: refused, and said so
        assert "needs a person at a terminal" in installed.run("approve", *asked, codes=(1,))
    covered = {"status", "check", "deploy", "compare", "plan", "apply", "snapshot", "snapshots", "drift", "rollback"}
    covered |= {"discard-kept", "watch", "approve", "demo"}
    # serve: the MCP test below; dashboard: the Chromium test below.
    assert commands - covered == {"serve", "dashboard"}, commands


async def test_every_mcp_tool_answers_over_stdio_from_the_installed_wheel(installed: Installed) -> None:
    from mcp.client.stdio import stdio_client

    spec = importlib.util.spec_from_file_location("answer_sizes", ROOT / "bench" / "answer_sizes.py")
    assert spec is not None and spec.loader is not None
    sizes = sys.modules.setdefault("answer_sizes", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(sizes)
    params = StdioServerParameters(
        command=sys.executable, args=["-S", "-m", "pgshift"], env=installed.env, cwd=str(installed.project)
    )
    errors = installed.project.parent / "serve.stderr"
    answers: dict[str, str] = {}
    with errors.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=120) as client:
            tools = (await client.list_tools()).tools
            for tool in tools:
                result = await client.call_tool(tool.name, sizes.arguments(tool, "note"))
                answers[tool.name] = " ".join(getattr(c, "text", "") for c in result.content)
    assert len(tools) == 19
    for name, text in answers.items():
        assert not [m for m in BROKEN if m in text] and not INTERNAL_ERROR.fullmatch(text.strip()), f"{name}: {text}"
    said = errors.read_text()
    assert not [m for m in BROKEN if m in said], said[-3000:]


def test_the_dashboard_from_the_installed_console_script_renders_the_environments_in_chromium(
    installed: Installed, tmp_path: Path
) -> None:
    import shutil
    import socket
    import urllib.request

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium): the browser test cannot run")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    errors = tmp_path / "dashboard.stderr"
    with errors.open("w") as errlog:
        server = subprocess.Popen(
            installed.command("dashboard", "--port", str(port), "--interval", "1"),
            cwd=installed.project,
            env=installed.env,
            stdout=errlog,
            stderr=errlog,
            stdin=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, errors.read_text()
                try:
                    with opener.open(url + "status.json", timeout=30) as response:
                        assert response.status == 200
                        status = json.loads(response.read())
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the dashboard did not answer within 60 s"
                    time.sleep(0.2)
            proc = subprocess.run(
                [
                    chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--no-proxy-server",
                    f"--user-data-dir={tmp_path / 'profile'}",
                    "--virtual-time-budget=4000",
                    "--window-size=1280,900",
                    "--dump-dom",
                    url,
                ],
                capture_output=True,
                text=True,
                timeout=90,
            )
        finally:
            server.terminate()
            server.wait(10)
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [e["environment"] for e in status["environments"]] == ["local", "production"]
    assert re.search(r'<body[^>]* data-rendered="\d+"', dom), dom[:3000]  # the script ran and rendered the status
    for name in ("local", "production"):
        assert f'data-environment="{name}"' in dom, dom[:3000]
    said = errors.read_text()
    assert " 500 " not in said and not [m for m in BROKEN if m in said], said[-3000:]
