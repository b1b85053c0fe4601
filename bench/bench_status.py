"""Benchmark: `pgshift status` on a deployed Supabase-shaped project (umami's Prisma chain), whole processes.

    python bench/bench_status.py [--runs 3]

On a local PostgreSQL 15 (Debian's, `PGSHIFT_PG15_BIN` or /usr/lib/postgresql/15/bin: umami needs pgcrypto,
which the embedded 18 build lacks): a database given pgshift's Supabase shape (`tools/sample/supabase_shape.sql`,
the roles it needs, `extensions` on the search_path), umami's migrations deployed into it by `pgshift deploy`.
A project folder holds the migrations and a `pgshift.toml` naming that database `production` (no shadow_url: a
replay starts its own scratch server, as on a CI runner). Then, each `--runs` times, `pgshift status` with:

- replay: a fresh state directory and no `.pgshift/expected/`: drift replays the chain (what every status on a
  fresh CI runner paid before the expected schema was kept);
- cold: a fresh state directory, the project's kept expected schema present (a new CI runner, the file
  committed): `drift_path` "kept-expected";
- warm: the same state directory again, nothing changed: the fingerprint path.

and `pgshift compare` of the database against itself, printed beside it (the issue's goal: status ≤ 2 s when
nothing changed, ≤ compare + 1 s otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_drift import run_cli  # noqa: E402  (one whole `pgshift` process, timed)

from pgshift.tools.localpg import LocalPostgres  # noqa: E402

UMAMI = ROOT / "tests" / "corpus" / "prisma" / "umami" / "migrations"
SHAPE = ROOT / "tools" / "sample" / "supabase_shape.sql"
ROLES = ("anon", "authenticated", "service_role", "supabase_admin")


async def supabase_shaped(server: LocalPostgres, name: str) -> str:
    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        existing = {r["rolname"] for r in await admin.fetch("SELECT rolname FROM pg_roles")}
        for role in ROLES:
            if role not in existing:
                await admin.execute(f"CREATE ROLE {role} NOLOGIN")
    finally:
        await admin.close()
    url = server.url(name)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(SHAPE.read_text())
        await conn.execute(f'ALTER DATABASE "{name}" SET search_path = "$user", public, extensions')
    finally:
        await conn.close()
    return url


def drift_path(stdout: str) -> str | None:
    status = json.loads(stdout)
    drift = status["environments"][0].get("drift") or {}
    return drift.get("drift_path")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bin_dir = Path(os.environ.get("PGSHIFT_PG15_BIN", "/usr/lib/postgresql/15/bin"))
    server = LocalPostgres(bin_dir).start()
    work = Path(tempfile.mkdtemp(prefix="pgshift-bench-status-"))
    states = Path(tempfile.mkdtemp(prefix="pgshift-bench-status-states-"))
    try:
        url = await supabase_shaped(server, "umami_status")
        shutil.copytree(UMAMI, work / "prisma" / "migrations")
        (work / "pgshift.toml").write_text(f'[environments.production]\nurl = "{url}"\nprotected = false\n')
        run_cli(["deploy", "--target", "production", "--migrations", "prisma/migrations"], work, states / "deploy")
        status = ["status", "--migrations", "prisma/migrations", "--json"]
        samples: dict[str, list[float]] = {"replay": [], "cold": [], "warm": [], "compare": []}
        paths: dict[str, set[str | None]] = {k: set() for k in samples}
        kept = work / ".pgshift" / "expected"
        for i in range(args.runs):
            shutil.rmtree(kept, ignore_errors=True)
            for what, state in (("replay", f"r{i}"), ("cold", f"c{i}"), ("warm", f"c{i}")):
                took, out = run_cli(status, work, states / state)
                samples[what].append(took)
                paths[what].add(drift_path(out))
            took, _ = run_cli(["compare", "--source", "production", "--target", "production"], work, states / "cmp")
            samples["compare"].append(took)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(states, ignore_errors=True)
    compare = statistics.median(samples["compare"])
    print("| pgshift status, umami (PostgreSQL 15, Supabase shape) | median | ratio to compare | drift_path |")
    print("|---|---:|---:|---|")
    for what, values in samples.items():
        median = statistics.median(values)
        shown = ", ".join(sorted(str(p) for p in paths[what])) if what != "compare" else "-"
        print(f"| {what} | {median:.2f} s | {median / compare:.2f}x | {shown} |")


if __name__ == "__main__":
    asyncio.run(main())
