"""How big is each tool's answer, for an assistant? Bytes and estimated tokens (bytes/4) per tool.

    python bench/answer_sizes.py [--sizes 100 1000]

Builds the drifted pair (`../shared/tools/genschema.py --tables N --seed 7 --variant base|target`, or the
committed 200-table pair in tests/corpus/genschema/ when the generator is absent) into two databases of one
embedded PostgreSQL 18, calls every tool through an in-memory `mcp.Client` with its default arguments (plus
the few variants an assistant reaches for: verbose, plan), and prints the size of the text content and of the
structured content (compact JSON, as on the wire). Claude Code truncates answers above about 25,000 tokens.
`tools/list` is measured compact and pretty-printed. Writes run only as dry runs; deploy is not called.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GENSCHEMA = ROOT.parent / "shared" / "tools" / "genschema.py"
CORPUS = ROOT / "tests" / "corpus" / "genschema"
sys.path.insert(0, str(ROOT))

from mcp import Client  # noqa: E402

from server.app import build_app  # noqa: E402
from tools.databases import Environment  # noqa: E402
from tools.localpg import LocalPostgres, embedded_server  # noqa: E402

MIGRATION = "ALTER TABLE t_0001 ADD COLUMN IF NOT EXISTS bench_note text;"


def schema_sql(n: int, variant: str) -> tuple[int, str]:
    """The generated schema of n tables (or the committed 200-table pair when the generator is absent)."""
    if not GENSCHEMA.exists():
        return 200, (CORPUS / f"{variant}.sql").read_text()
    args = [sys.executable, str(GENSCHEMA), "--tables", str(n), "--seed", "7", "--variant", variant]
    return n, subprocess.run(args, check=True, capture_output=True, text=True).stdout


async def load(server: LocalPostgres, name: str, sql: str) -> str:
    import asyncpg

    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(server.url(name))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
    return server.url(name)


def first_table(sql: str) -> str:
    return sql.split("CREATE TABLE ", 1)[1].split("(", 1)[0].strip()


def calls(table: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, tool, arguments): every tool, with its defaults and the large variants."""
    return [
        ("list_environments", "list_environments", {}),
        ("list_tables", "list_tables", {"environment": "local"}),
        ("list_tables verbose", "list_tables", {"environment": "local", "verbose": True}),
        ("describe_table", "describe_table", {"environment": "local", "table": table}),
        ("list_extensions", "list_extensions", {"environment": "local"}),
        ("execute_sql", "execute_sql", {"environment": "local", "sql": "SELECT * FROM pg_class"}),
        ("compare_schemas", "compare_schemas", {}),
        ("compare_schemas plan", "compare_schemas", {"plan": True}),
        ("check_migration", "check_migration", {"environment": "production", "sql": MIGRATION}),
        (
            "apply_migration dry_run",
            "apply_migration",
            {"environment": "production", "name": "bench", "sql": MIGRATION, "dry_run": True},
        ),
        ("list_migrations", "list_migrations", {"directory": "supabase/migrations"}),
    ]


def size(text: str) -> str:
    return f"{len(text.encode()):>9} {len(text.encode()) // 4:>8}"


async def measure(local: str, production: str, table: str) -> list[str]:
    envs = [Environment(name="local", url=local), Environment(name="production", url=production)]
    rows = []
    async with Client(build_app(lambda: envs), raise_exceptions=False) as client:
        listed = await client.list_tools()
        tools = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed.tools]
        compact = json.dumps({"tools": tools}, separators=(",", ":"))
        rows.append(f"{'tools/list (compact)':<26} {size(compact)}")
        rows.append(f"{'tools/list (indent=2)':<26} {size(json.dumps({'tools': tools}, indent=2))}")
        for label, name, args in calls(table):
            result = await client.call_tool(name, args)
            text = "".join(getattr(c, "text", "") for c in result.content)
            structured = json.dumps(result.structured_content, separators=(",", ":"))
            mark = " ERROR" if result.is_error else ""
            rows.append(f"{label:<26} {size(text)} {size(structured)}{mark}")
    return rows


async def run(server: LocalPostgres, n: int) -> None:
    n, base = schema_sql(n, "base")
    _, target = schema_sql(n, "target")
    local = await load(server, f"sizes_base_{n}", base)
    production = await load(server, f"sizes_target_{n}", target)
    rows = await measure(local, production, first_table(base))
    print(f"\n{n} tables (drifted pair, seed 7)")
    print(f"{'tool':<26} {'text B':>9} {'text tok':>8} {'struct B':>9} {'str. tok':>8}")
    print("\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    sizes = parser.parse_args().sizes
    with tempfile.TemporaryDirectory() as project, embedded_server() as server:
        folder = Path(project) / "supabase" / "migrations"
        folder.mkdir(parents=True)
        (folder / "20260101000000_bench.sql").write_text(MIGRATION)
        here = Path.cwd()
        try:
            os.chdir(project)  # tool paths resolve inside the server's working directory
            for n in sizes:
                asyncio.run(run(server, n))
        finally:
            os.chdir(here)


if __name__ == "__main__":
    main()
