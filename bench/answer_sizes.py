"""How big is each tool's answer, for an assistant? Bytes and estimated tokens (bytes/4) per tool.

    python bench/answer_sizes.py [--sizes 100 1000]

Builds the drifted pair (`../shared/tools/genschema.py --tables N --seed 7 --variant base|target`, or the
committed 200-table pair in tests/corpus/genschema/ when the generator is absent) into two databases of one
embedded PostgreSQL 18, and calls every registered tool through an in-memory `mcp.Client`: each with its default
arguments (required ones filled by name from `BENCH_VALUES`), plus the variants an assistant reaches for
(`VARIANTS`: verbose, plan, detail). A tool added later is measured without touching this file, unless it has a
required argument of a new name. Prints the size of the text content (what the assistant reads) and of the
structured content, and of `tools/list` (compact JSON, as on the wire). Claude Code truncates answers above about
25,000 tokens; `BUDGET_TOKENS` is ours. Writes go to `production`, which is protected: they answer with an
approval request and run nothing. tests/test_answer_sizes.py runs the same measurement on the committed pair.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GENSCHEMA = ROOT.parent / "shared" / "tools" / "genschema.py"
CORPUS = ROOT / "tests" / "corpus" / "genschema"
sys.path.insert(0, str(ROOT))

from mcp import Client  # noqa: E402
from mcp.types import Tool  # noqa: E402

from pgshift.server.app import build_app  # noqa: E402
from pgshift.tools.databases import Environment  # noqa: E402
from pgshift.tools.localpg import LocalPostgres, embedded_server  # noqa: E402

BUDGET_TOKENS = 20_000
"""Every tool's default answer, in estimated tokens (Claude Code truncates above about 25,000)."""
TOOLS_LIST_BUDGET_TOKENS = 10_000
MIGRATION = "ALTER TABLE t_0001 ADD COLUMN IF NOT EXISTS bench_note text;"
MIGRATION_FILE = "20260101000000_bench.sql"

BENCH_VALUES: dict[str, Any] = {"sql": MIGRATION, "name": "bench", "snapshot": 1}
"""Values for required arguments, by argument name (`environment` and `table` depend on the call)."""

TOOL_ARGUMENTS: dict[str, dict[str, Any]] = {
    "execute_sql": {"sql": "SELECT * FROM pg_class"},
    "check_migration": {"sql": MIGRATION},
    "apply_migration": {"sql": MIGRATION},
}
"""A tool's default call, beyond its required arguments, when it needs one of several optional arguments."""

VARIANTS: list[tuple[str, str, dict[str, Any]]] = [
    ("list_tables verbose", "list_tables", {"verbose": True}),
    ("compare_schemas plan", "compare_schemas", {"plan": True}),
    ("compare_schemas detail", "compare_schemas", {"detail": True}),
    ("compare_schemas plan detail", "compare_schemas", {"plan": True, "detail": True}),
    ("apply_migration dry_run", "apply_migration", {"dry_run": True}),
]
"""(label, tool, arguments beyond the defaults): the larger answers an assistant asks for."""


def tokens(text: str) -> int:
    """Estimated tokens: UTF-8 bytes / 4."""
    return len(text.encode()) // 4


@dataclass(frozen=True)
class Measured:
    label: str
    text_tokens: int
    structured_tokens: int
    error: str = ""


def tools_list_text(tools: list[Tool]) -> str:
    """`tools/list` as compact JSON, as a client receives it."""
    listed = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]
    return json.dumps({"tools": listed}, separators=(",", ":"))


def arguments(tool: Tool, table: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The required arguments of a tool, filled by name: `environment` is `local` for a read-only tool and the
    protected `production` otherwise. KeyError names an argument `BENCH_VALUES` lacks."""
    writes = not (tool.annotations is not None and tool.annotations.read_only_hint)
    values = {**BENCH_VALUES, "environment": "production" if writes else "local", "table": table}
    filled = {}
    for name in tool.input_schema.get("required", []):
        if name not in values:
            raise KeyError(f"{tool.name}: no bench value for its required argument '{name}' (add it to BENCH_VALUES)")
        filled[name] = values[name]
    return {**filled, **TOOL_ARGUMENTS.get(tool.name, {}), **(extra or {})}


async def measure(client: Client, table: str) -> tuple[int, list[Measured]]:
    """tools/list's tokens, and every tool's answer (defaults first, then the variants)."""
    tools = (await client.list_tools()).tools
    by_name = {t.name: t for t in tools}
    calls: list[tuple[str, str, dict[str, Any]]] = [(t.name, t.name, {}) for t in tools] + [
        v for v in VARIANTS if v[1] in by_name
    ]
    out = []
    for label, name, extra in calls:
        result = await client.call_tool(name, arguments(by_name[name], table, extra))
        text = "".join(getattr(c, "text", "") for c in result.content)
        structured = json.dumps(result.structured_content, separators=(",", ":"))
        out.append(Measured(label, tokens(text), tokens(structured), text[:200] if result.is_error else ""))
    return tokens(tools_list_text(tools)), out


async def every_page(client: Client, arguments: dict[str, Any]) -> tuple[int, int]:
    """compare_schemas followed page by page to the end: (pages, the largest page's tokens)."""
    count, largest, cursor = 0, 0, None
    while count < 1000:
        result = await client.call_tool("compare_schemas", {**arguments, **({"cursor": cursor} if cursor else {})})
        count += 1
        largest = max(largest, tokens("".join(getattr(c, "text", "") for c in result.content)))
        cursor = (result.structured_content or {}).get("next_cursor")
        if cursor is None:
            break
    return count, largest


def environments(local: str, production: str) -> list[Environment]:
    return [Environment(name="local", url=local), Environment(name="production", url=production, protected=True)]


def write_project(folder: Path) -> None:
    """The server's working directory: one Supabase migration, and the approval store."""
    migrations = folder / "supabase" / "migrations"
    migrations.mkdir(parents=True, exist_ok=True)
    (migrations / MIGRATION_FILE).write_text(MIGRATION)


def first_table(sql: str) -> str:
    return sql.split("CREATE TABLE ", 1)[1].split("(", 1)[0].strip()


def schema_sql(n: int, variant: str, generator: Path = GENSCHEMA) -> tuple[int, str]:
    """The generated schema of n tables (or the committed 200-table pair when the generator is absent)."""
    if not generator.exists():
        return 200, (CORPUS / f"{variant}.sql").read_text()
    args = [sys.executable, str(generator), "--tables", str(n), "--seed", "7", "--variant", variant]
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


def report(n: int, listed: int, rows: list[Measured]) -> str:
    lines = [f"\n{n} tables (drifted pair, seed 7); budget {BUDGET_TOKENS} tokens per answer"]
    lines.append(f"{'tool':<30} {'text tok':>9} {'struct tok':>10}")
    lines.append(f"{'tools/list':<30} {listed:>9}")
    for r in rows:
        over = " OVER BUDGET" if r.text_tokens > BUDGET_TOKENS else ""
        error = f" ERROR {r.error}" if r.error else ""
        lines.append(f"{r.label:<30} {r.text_tokens:>9} {r.structured_tokens:>10}{over}{error}")
    return "\n".join(lines)


async def run(server: LocalPostgres, n: int, generator: Path) -> None:
    n, base = schema_sql(n, "base", generator)
    _, target = schema_sql(n, "target", generator)
    local = await load(server, f"sizes_base_{n}", base)
    production = await load(server, f"sizes_target_{n}", target)
    async with Client(build_app(lambda: environments(local, production)), raise_exceptions=False) as client:
        listed, rows = await measure(client, first_table(base))
        paged = [
            (args, await every_page(client, args)) for args in ({}, {"plan": True}, {"plan": True, "detail": True})
        ]
    print(report(n, listed, rows), flush=True)
    for args, (count, largest) in paged:
        print(f"compare_schemas {json.dumps(args)}: {count} page(s) to the end, the largest {largest} tokens")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--genschema", type=Path, default=GENSCHEMA, help="the generator (default ../shared/tools)")
    parsed = parser.parse_args()
    with tempfile.TemporaryDirectory() as project, embedded_server() as server:
        write_project(Path(project))
        os.environ["PGSHIFT_STATE_DIR"] = str(Path(project) / "state")
        here = Path.cwd()
        try:
            os.chdir(project)  # tool paths resolve inside the server's working directory
            for n in parsed.sizes:
                asyncio.run(run(server, n, parsed.genschema.resolve()))
        finally:
            os.chdir(here)


if __name__ == "__main__":
    main()
