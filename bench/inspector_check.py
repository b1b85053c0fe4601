"""Every tool through the MCP Inspector's CLI, as a newcomer tries pgshift: a table of tool × ok / error.

    python bench/inspector_check.py [--python .venv/bin/python] [--timeout 120]

Starts one embedded PostgreSQL with two databases, `local` (the demo's app schema) and `production` (shaped like
Supabase, protected), writes a project folder with a `pgshift.toml` naming them (README "Environments") and a
Prisma migrations folder, then runs, in that folder,

    npx -y @modelcontextprotocol/inspector --cli <python> -m server --method tools/list
    npx -y @modelcontextprotocol/inspector --cli <python> -m server --method tools/call --tool-name X --tool-arg k=v

for every tool the list names. A tool is `ok` when the call answers without `isError`; a protected write that asks
for approval (the Inspector cannot answer elicitation) is `ok` too: asking is the answer. Node and npm must be
installed; npx fetches the Inspector on first use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

INSPECTOR = ["npx", "-y", "@modelcontextprotocol/inspector", "--cli"]
APP_SQL = (ROOT / "tools" / "sample" / "app.sql").read_text()
SUPABASE_SHAPE = (ROOT / "tools" / "sample" / "supabase_shape.sql").read_text()
MIGRATION = '-- CreateTable\nCREATE TABLE "Note" ("id" TEXT NOT NULL, CONSTRAINT "Note_pkey" PRIMARY KEY ("id"));\n'

# Arguments for each tool, in the order the calls run (a tool the list names that is not here gets its required
# arguments from DEFAULTS by name).
CALLS: dict[str, dict[str, str]] = {
    "list_environments": {},
    "list_tables": {"environment": "local"},
    "describe_table": {"environment": "local", "table": "ModelConfiguration"},
    "list_extensions": {"environment": "production"},
    "execute_sql": {"environment": "local", "sql": 'SELECT count(*) FROM "ModelConfiguration"'},
    "compare_schemas": {"source": "local", "target": "production", "plan": "true"},
    "check_migration": {"environment": "production", "migration": "prisma/migrations/20240101000000_note"},
    "apply_migration": {
        "environment": "local",
        "name": "inspector_check",
        "sql": "CREATE TABLE inspector_check (id int)",
    },
    "list_migrations": {},
    "deploy": {"environment": "local"},
    "get_status": {},
    "snapshot_schema": {"environment": "local", "label": "inspector"},
    "list_snapshots": {"environment": "local"},
    "verify_snapshot": {"environment": "local", "snapshot": "1"},
    "rollback": {"environment": "local", "snapshot": "1", "dry_run": "true"},
    "detect_drift": {"environment": "local"},
    "adopt_drift": {"environment": "local", "name": "inspector_adopted"},
    "check_locks": {"environment": "production"},
    "get_advisors": {"environment": "production"},
}
DEFAULTS = {"environment": "local", "source": "local", "target": "production", "name": "inspector_check"}


def inspector(python: str, project: Path, timeout: float, *method: str) -> tuple[int, Any, str]:
    """Run the Inspector CLI once against `python -m server` in `project`: (exit code, parsed JSON or None, stderr)."""
    done = subprocess.run(
        [*INSPECTOR, python, "-m", "pgshift", *method],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=timeout,
    )
    try:
        parsed = json.loads(done.stdout)
    except json.JSONDecodeError:
        parsed = None
    return done.returncode, parsed, done.stderr


def arguments_for(tool: dict[str, Any]) -> dict[str, str]:
    if tool["name"] in CALLS:
        return CALLS[tool["name"]]
    required = tool.get("inputSchema", {}).get("required", [])
    return {name: DEFAULTS.get(name, "x") for name in required}


def outcome(code: int, answer: Any, stderr: str) -> tuple[str, str]:
    """('ok' | 'error', one line saying what the tool answered)."""
    if code != 0 or not isinstance(answer, dict):
        return "error", f"inspector exit {code}: {stderr.strip().splitlines()[-1:] or ''}"
    text = " ".join(c.get("text", "") for c in answer.get("content", []) if isinstance(c, dict))
    structured = answer.get("structuredContent")
    line = text if answer.get("isError") or not structured else json.dumps(structured)
    line = " ".join(line.split())
    return ("error" if answer.get("isError") else "ok"), (line[:100] + "…" if len(line) > 100 else line)


async def _prepare(local: str, production: str) -> None:
    import asyncpg

    for url, sql in ((local, APP_SQL), (production, SUPABASE_SHAPE)):
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()


async def _create(admin: str, *names: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin)
    try:
        for name in names:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def write_project(project: Path, local: str, production: str) -> None:
    (project / "pgshift.toml").write_text(
        f'[environments.local]\nurl = "{local}"\n\n[environments.production]\nurl = "{production}"\nprotected = true\n'
    )
    folder = project / "prisma" / "migrations" / "20240101000000_note"
    folder.mkdir(parents=True)
    (folder / "migration.sql").write_text(MIGRATION)
    (project / "prisma" / "migrations" / "migration_lock.toml").write_text('provider = "postgresql"\n')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", default=sys.executable, help="the interpreter that runs `-m server`")
    parser.add_argument("--timeout", type=float, default=180, help="seconds per Inspector run")
    args = parser.parse_args()

    from pgshift.tools.localpg import embedded_server

    server = embedded_server().start()
    rows: list[tuple[str, str, str, float]] = []
    try:
        asyncio.run(_create(server.url(), "inspector_local", "inspector_production"))
        local, production = server.url("inspector_local"), server.url("inspector_production")
        asyncio.run(_prepare(local, production))
        with tempfile.TemporaryDirectory(prefix="pgshift-inspector-") as tmp:
            project = Path(tmp)
            write_project(project, local, production)
            started = time.perf_counter()
            code, listed, err = inspector(args.python, project, args.timeout, "--method", "tools/list")
            if code != 0 or not isinstance(listed, dict):
                raise SystemExit(f"tools/list failed (exit {code}): {err[-1000:]}")
            tools = listed["tools"]
            size = len(json.dumps(listed, separators=(",", ":")))
            print(
                f"tools/list: {len(tools)} tools, {size:,} characters compact ({time.perf_counter() - started:.1f} s)"
            )
            order = {name: i for i, name in enumerate(CALLS)}
            for tool in sorted(tools, key=lambda t: order.get(t["name"], len(order))):
                method = ["--method", "tools/call", "--tool-name", tool["name"]]
                for key, value in arguments_for(tool).items():
                    method += ["--tool-arg", f"{key}={value}"]
                started = time.perf_counter()
                result, line = outcome(*inspector(args.python, project, args.timeout, *method))
                rows.append((tool["name"], result, line, time.perf_counter() - started))
                print(f"{tool['name']}: {result} ({rows[-1][3]:.1f} s)", flush=True)
    finally:
        server.stop()

    print("\n| tool | result | answer (first 100 characters) |\n| --- | --- | --- |")
    for name, result, line, _ in rows:
        print(f"| `{name}` | {result} | {line.replace('|', '/')} |")
    failed = [r[0] for r in rows if r[1] != "ok"]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} tools ok" + (f"; errors: {', '.join(failed)}" if failed else ""))
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
