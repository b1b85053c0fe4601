"""Benchmark: `pgshift drift` beside `pgshift compare` on the same drifted pair, as ratios in one run.

    python bench/bench_drift.py [--sizes 1000 5000] [--runs 3] [--fast-runs 20] [--in-process]

Whole processes first (the CLI, as a CI job runs it; cwd the project, `pgshift.toml` naming the target, the base
and the bench's server as shadow_url, so a replay never waits for `initdb`), each against `pgshift compare
--source target --target base` of the same pair (median of `--runs`), printed as time and ratio:

`pgshift drift` prints text (a CI gate: the verdict, no repair plans); "cold, --json" prints the whole report with
both repair plans (adopt and revert), whose planning is most of its time on a large drift.

- replay: a fresh state directory and no kept expected schema: the migrations are replayed (what every full
  check on a CI runner paid before the expected schema was kept), then kept;
- cold: a fresh state directory (a new CI runner) with the project's `.pgshift/expected/` copy present:
  `drift_path` "kept-expected", no replay;
- warm: the same state directory again with `--refresh` (the fingerprint skipped: the catalogs changed since),
  the state directory's MAC-checked copy read; "warm, unchanged": without `--refresh` (the fingerprint path).

With `--in-process`, also the older in-process table below.

For each size, on one embedded PostgreSQL 18: a Supabase-layout folder holding genschema's base schema
(`../shared/tools/genschema.py --tables N --seed 7 --variant base`) cut into migrations of 2,000 statements,
a database `bench_base_N` with that schema, and a target database `bench_target_N` holding the target
variant (the base plus a team's manual changes) whose history records the base migrations as applied. So the
drift detect_drift finds is exactly the difference `pgshift compare --source bench_target_N --target
bench_base_N` finds, and the two are timed side by side (in process, medians):

- full: detect_drift with refresh (live read, replay of the folder into a throw-away database, diff, both
  plans), the shadow server already running (as in the tests; starting one adds the time of `initdb` and
  `pg_ctl start`, measured once as "full + own shadow");
- fast: detect_drift on the unchanged target, answered from the cache (a catalog fingerprint query and the
  history, over a warm pool, then the cached result read back: large here, with every drifted object and both
  plans; then the newest snapshot's row for since_last_apply; the parts are one run's, not medians); "fast, in
  sync": the same on `bench_base_N` with its history (no drift, a small cached result); "fast, new connection"
  opens the pool too;
- compare: `compare_environments(target, base)`, the engine of `pgshift compare`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
GENSCHEMA = ROOT.parent / "shared" / "tools" / "genschema.py"
PGSHIFT = str(Path(sys.executable).parent / "pgshift")
sys.path.insert(0, str(ROOT))

from pgshift.tools import ledger  # noqa: E402
from pgshift.tools.compare import compare_environments  # noqa: E402
from pgshift.tools.databases import Databases, Environment  # noqa: E402
from pgshift.tools.localpg import LocalPostgres, embedded_server  # noqa: E402
from pgshift.tools.migrations.folder import read_migrations  # noqa: E402
from pgshift.tools.migrations.parse import split_statements  # noqa: E402
from pgshift.tools.watch.drift import detect_drift  # noqa: E402

FIRST_VERSION = 20240101000000
STATEMENTS_PER_MIGRATION = 2_000  # one transaction per migration: 5,000 tables in one exceed the lock table


def schema_sql(n: int, variant: str) -> str:
    args = [sys.executable, str(GENSCHEMA), "--tables", str(n), "--seed", "7", "--variant", variant]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


async def create(server: LocalPostgres, name: str, sql: str) -> str:
    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = server.url(name)
    psql = str(server.bin_dir / "psql")
    load = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"]
    subprocess.run(load, input=sql, check=True, text=True)  # noqa: ASYNC221 (setup, before anything is timed)
    return url


def write_folder(folder: Path, sql: str) -> int:
    """The base schema as migrations of STATEMENTS_PER_MIGRATION statements each, in order; how many."""
    statements = split_statements(sql)
    chunks = [statements[i : i + STATEMENTS_PER_MIGRATION] for i in range(0, len(statements), STATEMENTS_PER_MIGRATION)]
    for n, chunk in enumerate(chunks):
        text = "".join(f"{s.text};\n" for s in chunk)
        (folder / f"{FIRST_VERSION + n}_base_{n}.sql").write_text(text)
    return len(chunks)


async def record_applied(url: str, folder: Path) -> None:
    """The target's history says the base migrations are applied (they were, before the manual changes)."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            now = datetime.now(UTC)
            for migration in read_migrations(folder).migrations:
                await ledger.record(conn, migration, statements=[], started_at=now, duration_ms=0, outcome="applied")
    finally:
        await conn.close()


def median_ms(samples: list[float]) -> str:
    return (
        f"{statistics.median(samples) * 1000:,.0f} ms"
        if statistics.median(samples) >= 1
        else (f"{statistics.median(samples) * 1000:.1f} ms")
    )


async def timed(work: object) -> float:
    started = time.perf_counter()
    await work  # type: ignore[misc]
    return time.perf_counter() - started


async def bench_size(server: LocalPostgres, n: int, runs: int, fast_runs: int, state: Path) -> dict[str, str]:
    base_sql, target_sql = schema_sql(n, "base"), schema_sql(n, "target")
    work = Path(tempfile.mkdtemp(prefix="pgshift-bench-drift-"))
    folder = work / "supabase" / "migrations"
    folder.mkdir(parents=True)
    migrations = write_folder(folder, base_sql)
    base_url = await create(server, f"bench_base_{n}", base_sql)
    target_url = await create(server, f"bench_target_{n}", target_sql)
    await record_applied(target_url, folder)
    target = Environment(name="target", url=target_url)
    base = Environment(name="base", url=base_url)

    await record_applied(base_url, folder)  # the base database is the folder deployed: no drift
    in_sync = Environment(name="in_sync", url=base_url)
    db = Databases([target, in_sync])
    try:
        full = [  # a fresh state directory each: the replay (the kept expected schema is the next one's)
            await timed(
                detect_drift(db, "target", str(folder), refresh=True, shadow=server, state_dir=state / f"full-{i}")
            )
            for i in range(runs)
        ]
        kept = [
            await timed(detect_drift(db, "target", str(folder), refresh=True, state_dir=state / "full-0"))
            for _ in range(runs)
        ]
        own = await timed(detect_drift(db, "target", str(folder), refresh=True, state_dir=state / "own"))
        found = await detect_drift(db, "target", str(folder), shadow=server, state_dir=state)
        assert found.from_fast_path, "the database did not change: the fast path should answer"
        fast = [await timed(detect_drift(db, "target", str(folder), state_dir=state)) for _ in range(fast_runs)]
        parts = (await detect_drift(db, "target", str(folder), state_dir=state)).timings_ms
        clean = await detect_drift(db, "in_sync", str(folder), shadow=server, state_dir=state)
        assert clean.state == "none", clean.error or clean.summary
        fast_clean = [await timed(detect_drift(db, "in_sync", str(folder), state_dir=state)) for _ in range(fast_runs)]
        clean_parts = (await detect_drift(db, "in_sync", str(folder), state_dir=state)).timings_ms
    finally:
        await db.close()
    cold: list[float] = []
    for _ in range(max(3, fast_runs // 4)):
        fresh = Databases([target])
        try:
            cold.append(await timed(detect_drift(fresh, "target", str(folder), state_dir=state)))
        finally:
            await fresh.close()
    compared = [await timed(compare_environments(target, base)) for _ in range(runs)]
    result = await compare_environments(target, base)
    return {
        "tables": f"{n:,} ({migrations} migrations)",
        "drifted objects": f"{found.summary.total:,} (compare: {result.summary.total:,})",
        "full": median_ms(full),
        "full + own shadow": median_ms([own]),
        "full, kept expected": median_ms(kept),
        "fast": f"{median_ms(fast)} (fingerprint {parts['fingerprint']:.0f} ms, cache {parts['cache']:.0f} ms, "
        f"since_last_apply {parts.get('since_last_apply', 0):.0f} ms)",
        "fast, in sync": f"{median_ms(fast_clean)} (fingerprint {clean_parts['fingerprint']:.0f} ms, "
        f"cache {clean_parts['cache']:.0f} ms)",
        "fast, new connection": median_ms(cold),
        "compare": median_ms(compared),
    }


def run_cli(args: list[str], cwd: Path, state: Path) -> tuple[float, str]:
    """One whole `pgshift` process (cwd the project, `state` its state directory): seconds and stdout."""
    env = {**os.environ, "PGSHIFT_STATE_DIR": str(state)}
    env.pop("PGSHIFT_CONFIG", None)
    started = time.perf_counter()
    done = subprocess.run([PGSHIFT, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 2):
        raise SystemExit(f"pgshift {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, done.stdout


def drift_path_of(stdout: str) -> str:
    """The drift path a `pgshift drift` answer names (JSON, or the text's first line)."""
    if stdout.startswith("{"):
        return str(json.loads(stdout)["drift_path"])
    found = re.search(r"drift path: ([a-z-]+)", stdout.split("\n", 1)[0])
    return found.group(1) if found else "?"


async def process_size(server: LocalPostgres, n: int, runs: int) -> dict[str, str]:
    """Whole processes: drift (replay / cold / warm) and compare on one drifted pair (see the docstring)."""
    base_sql, target_sql = schema_sql(n, "base"), schema_sql(n, "target")
    work = Path(tempfile.mkdtemp(prefix="pgshift-bench-drift-cli-"))
    folder = work / "supabase" / "migrations"
    folder.mkdir(parents=True)
    migrations = write_folder(folder, base_sql)
    base_url = await create(server, f"bench_cli_base_{n}", base_sql)
    target_url = await create(server, f"bench_cli_target_{n}", target_sql)
    await record_applied(target_url, folder)
    (work / "pgshift.toml").write_text(
        f'[environments.target]\nurl = "{target_url}"\nshadow_url = "{server.url()}"\n'
        f'[environments.base]\nurl = "{base_url}"\n'
    )
    drift = ["drift", "--target", "target", "--migrations", "supabase/migrations"]
    kept = work / ".pgshift" / "expected"
    states = Path(tempfile.mkdtemp(prefix="pgshift-bench-drift-states-"))
    samples: dict[str, list[float]] = {
        "replay": [],
        "cold": [],
        "cold, --json": [],
        "warm": [],
        "warm, unchanged": [],
        "compare": [],
    }
    try:
        for i in range(runs):
            shutil.rmtree(kept, ignore_errors=True)
            took, out = run_cli(drift, work, states / f"replay-{i}")
            assert drift_path_of(out) == "replay", out[:300]
            samples["replay"].append(took)
            took, out = run_cli(drift, work, states / f"cold-{i}")
            assert drift_path_of(out) == "kept-expected", out[:300]
            samples["cold"].append(took)
            took, out = run_cli([*drift, "--json"], work, states / f"json-{i}")
            assert drift_path_of(out) == "kept-expected", out[:300]
            samples["cold, --json"].append(took)
            took, out = run_cli([*drift, "--refresh"], work, states / f"cold-{i}")
            assert drift_path_of(out) == "kept-expected", out[:300]
            samples["warm"].append(took)
            took, out = run_cli(drift, work, states / f"cold-{i}")
            assert drift_path_of(out) == "fingerprint", out[:300]
            samples["warm, unchanged"].append(took)
            took, _ = run_cli(["compare", "--source", "target", "--target", "base", "--json"], work, states / "compare")
            samples["compare"].append(took)
    finally:
        shutil.rmtree(states, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    compare = statistics.median(samples["compare"])
    row = {"tables": f"{n:,} ({migrations} migration(s))"}
    for what, values in samples.items():
        median = statistics.median(values)
        row[what] = f"{median:.2f} s" + ("" if what == "compare" else f" ({median / compare:.2f}x)")
    return row


def print_table(rows: list[dict[str, str]]) -> None:
    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row[h] for h in header) + " |")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fast-runs", type=int, default=20)
    parser.add_argument("--in-process", action="store_true", help="also the in-process table (detect_drift timed)")
    args = parser.parse_args()
    server = embedded_server().start()
    try:
        print("Whole processes: pgshift drift (ratio to pgshift compare of the same pair, same run)")
        print_table([await process_size(server, n, args.runs) for n in args.sizes])
        if args.in_process:
            with tempfile.TemporaryDirectory(prefix="pgshift-bench-state-") as state:
                rows = [await bench_size(server, n, args.runs, args.fast_runs, Path(state)) for n in args.sizes]
            print("\nIn process: detect_drift")
            print_table(rows)
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
