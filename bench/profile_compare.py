"""Where the time of a whole `pgshift compare` (and `pgshift plan`) process goes, phase by phase.

    python bench/profile_compare.py [--sizes 1000 5000] [--runs 3] [--plan] [--queries]
    python bench/profile_compare.py --source URL --target URL [--plan]      # an existing pair

Each run is a fresh child process doing what `pgshift compare` does, with a clock between the phases:

- start-up: the interpreter and everything outside the phases below (the whole process, timed by the parent,
  minus the phases the child times);
- import: the modules `pgshift compare` loads (`server.commands`, `tools.compare`);
- connect: two connections per database, both databases at once (as `compare_environments`);
- catalog queries: every catalog query of both sides (two connections per side sharing one snapshot), rows
  decoded by asyncpg: PostgreSQL's work plus the wire and the decoding;
- model build: rows to the frozen model (`tools.introspect.build_schema`), both sides;
- diff: `tools.diff.diff_schemas`;
- render: the result model and its text (`build_result`, `render_compare`), and closing the connections.

With `--plan` a second table does the same for `pgshift plan` (catalog queries with dependencies, then
`plan_migration`, the script text and the row checks on the target). `--queries` also times each catalog query
alone, one after the other on one connection of the target (PostgreSQL's time plus decoding).
The pairs are built as in bench_compare.py (`../shared/tools/genschema.py --tables N --seed 7`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

COMPARE_PHASES = ("import", "connect", "catalog queries", "model build", "diff", "render")
PLAN_PHASES = ("import", "connect", "catalog queries", "model build", "plan", "render", "row checks")


def child(source: str, target: str, mode: str) -> None:
    """One measured process: print the phase times (seconds) as JSON."""
    t = {"start": time.perf_counter()}
    from pgshift.server import commands
    from pgshift.tools import compare

    t["import"] = time.perf_counter()
    import asyncpg

    from pgshift.tools.databases import Environment, connect
    from pgshift.tools.diff import diff_schemas
    from pgshift.tools.introspect import QUERIES, _fetch_all, build_schema, gc_paused
    from pgshift.tools.introspect.filters import filter_args

    with_dependencies = mode == "plan"
    queries = [q for q in QUERIES if with_dependencies or q[0] != "dependencies"]
    args = filter_args(None, False)
    envs = (Environment(name="source", url=source), Environment(name="target", url=target))
    out: dict[str, float | int] = {}

    async def run() -> None:
        conns = await asyncio.gather(*(connect(e) for e in envs for _ in range(2)))
        t["connect"] = time.perf_counter()

        async def fetch(conn: asyncpg.Connection, helper: asyncpg.Connection) -> tuple[tuple[int, bool], dict]:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return await _fetch_all(conn, [helper], queries, args)

        with gc_paused():
            fetched = await asyncio.gather(fetch(conns[0], conns[1]), fetch(conns[2], conns[3]))
            t["catalog queries"] = time.perf_counter()
            src, tgt = (build_schema(rows, v, s, None, False, with_dependencies) for (v, s), rows in fetched)
            del fetched
            t["model build"] = time.perf_counter()
            if mode == "compare":
                diff = diff_schemas(src, tgt, kinds=compare.KINDS)
                t["diff"] = time.perf_counter()
                result = compare.build_result(
                    diff, "source", "target", None, list(compare.KINDS), {}, None, compare.not_compared(src, tgt)
                )
                del src, tgt, diff  # as `compare_environments`: the models go before the collector resumes
                out["lines"] = commands.render_compare(result).count("\n") + 1
            else:
                from pgshift.tools.plan.planner import plan_migration
                from pgshift.tools.plan.rows import count_blockers

                plan = plan_migration(src, tgt, allow_data_loss=True)
                del src, tgt
                t["plan"] = time.perf_counter()
                out["lines"] = plan.script.count("\n")
                t["render"] = time.perf_counter()
                if plan.row_checks:
                    await count_blockers(conns[2], plan)
        await asyncio.gather(*(c.close() for c in conns))
        t["render" if mode == "compare" else "row checks"] = time.perf_counter()

    asyncio.run(run())
    phases = COMPARE_PHASES if mode == "compare" else PLAN_PHASES
    marks = ["start", *phases]
    out |= {p: t[p] - t[marks[i]] for i, p in enumerate(phases)}
    print(json.dumps(out))


def measure(source: str, target: str, mode: str) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, source, target], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the {mode} child failed: {done.stderr[-2000:]}")
    info = json.loads(done.stdout)
    phases = COMPARE_PHASES if mode == "compare" else PLAN_PHASES
    info["start-up"] = wall - sum(info[p] for p in phases)
    info["whole process"] = wall
    return info


def table(label: str, mode: str, results: dict[int | str, list[dict[str, float]]]) -> None:
    """A markdown table: one row per phase, one column per size (median seconds, share of the whole)."""
    phases = ("start-up", *(COMPARE_PHASES if mode == "compare" else PLAN_PHASES), "whole process")
    print(f"\n{label}\n")
    print("| phase | " + " | ".join(f"{n} tables" for n in results) + " |")
    print("|---|" + "---:|" * len(results))
    for p in phases:
        cells = []
        for runs in results.values():
            value = statistics.median(r[p] for r in runs)
            whole = statistics.median(r["whole process"] for r in runs)
            cells.append(f"{value:.2f} s ({100 * value / whole:.0f} %)" if p != "whole process" else f"{value:.2f} s")
        print(f"| {p} | " + " | ".join(cells) + " |")


async def per_query(url: str) -> list[tuple[str, float, int]]:
    """Each catalog query alone on one connection of `url`: (name, seconds, rows), costliest first."""
    from pgshift.tools.databases import Environment, connect
    from pgshift.tools.introspect import _SETUP, QUERIES
    from pgshift.tools.introspect.filters import filter_args

    conn = await connect(Environment(name="target", url=url))
    out = []
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await conn.fetchrow(_SETUP)
            args = filter_args(None, False)
            for name, sql, filtered in QUERIES:
                started = time.perf_counter()
                rows = await conn.fetch(sql, *args) if filtered else await conn.fetch(sql)
                out.append((name, time.perf_counter() - started, len(rows)))
    finally:
        await conn.close()
    return sorted(out, key=lambda r: -r[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--plan", action="store_true", help="profile `pgshift plan` too")
    parser.add_argument("--queries", action="store_true", help="time each catalog query alone")
    parser.add_argument("--source", help="an existing pair instead of genschema's (with --target)")
    parser.add_argument("--target")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "SOURCE", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[1], args.child[2], args.child[0])
        return
    server = None
    pairs: dict[int | str, tuple[str, str]] = {}
    if args.source and args.target:
        pairs["given"] = (args.source, args.target)
    else:
        from bench_compare import build_pair

        from pgshift.tools.localpg import embedded_server

        server = embedded_server().start()
        for n in args.sizes:
            pairs[n] = build_pair(server.url(), server.url, n, str(server.bin_dir / "psql"))
    try:
        modes = ["compare", *(["plan"] if args.plan else [])]
        results: dict[str, dict[int | str, list[dict[str, float]]]] = {m: {n: [] for n in pairs} for m in modes}
        for _ in range(args.runs):  # rounds interleaved: load from elsewhere weighs on every size alike
            for n, (source, target) in pairs.items():
                for mode in modes:
                    results[mode][n].append(measure(source, target, mode))
        table(f"`pgshift compare` (medians of {args.runs} runs)", "compare", results["compare"])
        if args.plan:
            table(f"`pgshift plan` (medians of {args.runs} runs)", "plan", results["plan"])
        if args.queries:
            for n, (_, target) in pairs.items():
                listed = ", ".join(
                    f"{name} {s * 1000:.0f} ms ({rows} rows)" for name, s, rows in asyncio.run(per_query(target))
                )
                print(f"\ncatalog queries alone, {n} tables (target): {listed}")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
