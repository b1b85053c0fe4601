"""Benchmark: our compare vs migra vs pg_dump --schema-only, on the same drifted pair of databases.

    python bench/bench_compare.py [--sizes 1000 5000] [--runs 3] [--migra /tmp/migra-venv/bin/migra]

For each size it starts nothing new: one embedded PostgreSQL 18 holds every pair. The pair is built with
`../shared/tools/genschema.py --tables N --seed 7 --variant base|target`. Each measured command runs in
its own process; peak memory is that process's max RSS (os.wait4). Times are medians of --runs runs
(migra: one run per size unless --migra-runs says otherwise). See bench/README.md for the results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENSCHEMA = ROOT.parent / "shared" / "tools" / "genschema.py"
sys.path.insert(0, str(ROOT))


def run_with_peak(args: list[str]) -> tuple[float, float, int, str]:
    """Run a child and return (wall seconds, its own peak RSS in MB, exit code, stdout)."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_chunks: list[str] = []
    assert proc.stdout is not None and proc.stderr is not None
    out_chunks.append(proc.stdout.read())
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    if code not in (0, 2):
        raise RuntimeError(f"{' '.join(args[:2])} failed ({code}): {err[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, code, "".join(out_chunks)


def build_pair(url_admin: str, server_url: object, n: int, psql: str) -> tuple[str, str]:
    """Create bench_base_N and bench_target_N from genschema (loaded with psql: one transaction per statement)."""
    urls = []
    for variant in ("base", "target"):
        sql = subprocess.run(
            [sys.executable, str(GENSCHEMA), "--tables", str(n), "--seed", "7", "--variant", variant],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        name = f"bench_{variant}_{n}"
        asyncio.run(_recreate_database(url_admin, name))
        url = server_url(name)  # type: ignore[operator]
        subprocess.run(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"],
            input=sql,
            check=True,
            capture_output=True,
            text=True,
        )
        urls.append(url)
    return urls[0], urls[1]


async def _recreate_database(url_admin: str, name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(url_admin)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


def ours_child(source: str, target: str) -> None:
    """Child mode: one compare end to end (connect, both introspections concurrently, diff); print JSON."""
    from pgshift.tools.compare import compare_environments
    from pgshift.tools.databases import Environment

    started = time.perf_counter()
    result = asyncio.run(
        compare_environments(Environment(name="source", url=source), Environment(name="target", url=target))
    )
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "peak_mb": peak,
                "differences": result.summary.total,
                "summary": result.summary.model_dump(exclude={"by_kind"}),
                "timings_ms": result.timings_ms,
            }
        )
    )


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--migra", default="/tmp/migra-venv/bin/migra")
    parser.add_argument("--migra-runs", type=int, default=1)
    parser.add_argument("--ours-child", nargs=2, metavar=("SOURCE", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ours_child:
        ours_child(*args.ours_child)
        return

    from pgshift.tools.localpg import embedded_server

    server = embedded_server().start()
    pg_dump = str(server.bin_dir / "pg_dump")
    rows = []
    try:
        print(f"server: {server.version}; cores: {os.cpu_count()}; runs: {args.runs}", flush=True)
        print(f"load average before: {os.getloadavg()}", flush=True)
        for n in args.sizes:
            t = time.perf_counter()
            base, target = build_pair(server.url(), server.url, n, str(server.bin_dir / "psql"))
            print(f"\n== {n} tables (pair built in {time.perf_counter() - t:.1f} s)", flush=True)

            # Interleaved rounds (ours, pg_dump x2, migra), so that load from elsewhere on the machine
            # weighs on every tool alike.
            ours, dumps, migra = [], [], []
            have_migra = Path(args.migra).exists()
            if not have_migra:
                print(f"migra not found at {args.migra}: see bench/README.md", flush=True)
            for round_ in range(max(args.runs, args.migra_runs if have_migra else 0)):
                if round_ < args.runs:
                    wall, peak, _, out = run_with_peak([sys.executable, __file__, "--ours-child", base, target])
                    info = json.loads(out)
                    ours.append((info["seconds"], wall, peak, info))
                    print(
                        f"ours: compare {info['seconds']:.3f} s (process {wall:.3f} s), peak {peak:.0f} MB, "
                        f"{info['differences']} differences {info['summary']}, timings {info['timings_ms']}",
                        flush=True,
                    )
                    per_side = []
                    for url in (base, target):
                        wall, peak, _, _ = run_with_peak([pg_dump, "--schema-only", "-f", "/dev/null", "-d", url])
                        per_side.append(wall)
                    dumps.append(per_side)
                    print(f"pg_dump --schema-only: base {per_side[0]:.3f} s, target {per_side[1]:.3f} s", flush=True)
                if have_migra and round_ < args.migra_runs:
                    wall, peak, _code, out = run_with_peak([args.migra, "--unsafe", target, base])
                    migra.append((wall, peak, out.count("\n")))
                    print(f"migra: {wall:.3f} s, peak {peak:.0f} MB, {out.count(chr(10))} lines of SQL", flush=True)

            ours_s = median([o[0] for o in ours])
            ours_proc = median([o[1] for o in ours])
            ours_peak = max(o[2] for o in ours)
            dump_pair = median([a + b for a, b in dumps])
            dump_side = median([x for d in dumps for x in d])
            migra_s = median([m[0] for m in migra]) if migra else float("nan")
            migra_peak = max(m[1] for m in migra) if migra else float("nan")
            rows.append((n, ours_s, ours_proc, ours_peak, migra_s, migra_peak, dump_side, dump_pair))
        print(f"load average after: {os.getloadavg()}", flush=True)
    finally:
        server.stop()

    print(
        "\n| tables | ours compare | ours process | ours peak | migra | migra peak | pg_dump/side "
        "| ours/migra | ours/(2 pg_dumps) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, ours_s, ours_proc, ours_peak, migra_s, migra_peak, dump_side, dump_pair in rows:
        print(
            f"| {n} | {ours_s:.2f} s | {ours_proc:.2f} s | {ours_peak:.0f} MB | {migra_s:.2f} s | {migra_peak:.0f} MB "
            f"| {dump_side:.2f} s | {ours_s / migra_s:.3f}x ({ours_proc / migra_s:.3f}x process) "
            f"| {ours_s / dump_pair:.2f}x ({ours_proc / dump_pair:.2f}x process) |"
        )


if __name__ == "__main__":
    main()
