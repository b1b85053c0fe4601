"""The built wheel installs pgshift under its own name and runs outside the source tree."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

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


async def test_the_wheel_installs_one_pgshift_package_that_serves_mcp_outside_the_source_tree(tmp_path: Path) -> None:
    wheel, lib = _build_and_install(tmp_path)
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert tops == {"pgshift", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}
    assert {p.name for p in lib.iterdir() if not p.name.endswith(".dist-info")} <= {"pgshift", "bin"}
    assert any(n.endswith(".sql") for n in zipfile.ZipFile(wheel).namelist()), "package data (lints, samples) missing"

    env = _outside_env(lib)
    found = _import_outside(env, tmp_path)
    assert found.stdout.strip().startswith(str(lib)), found.stdout + found.stderr
    assert "No module named 'tools'" in found.stderr  # nothing is installed under a generic top-level name

    params = StdioServerParameters(command=sys.executable, args=["-S", "-m", "pgshift"], env=env, cwd=str(tmp_path))
    async with Client(params, read_timeout_seconds=60) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        answer = await client.call_tool("list_environments", {})
    assert {"compare_schemas", "apply_migration", "list_environments"} <= names
    assert answer.is_error and "DATABASE_URL" in str(answer.content)  # nothing configured: it says what to set
