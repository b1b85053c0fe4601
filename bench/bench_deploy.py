"""Deploy time of the hoppscotch Prisma chain: pgshift's deploy vs raw psql replay of the same files, same run.

Each run uses two fresh empty databases on the same server: one gets `tools.deploy.deploy` (advisory lock,
timeouts, per-migration transaction, history in three tables, extension pre-flight), the other one psql
process replaying every migration.sql (`psql -X -q -v ON_ERROR_STOP=1 -f ... -f ...`). Reports the median.

python bench/bench_deploy.py [--runs 5] [--server pg15|pg18]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
from pathlib import Path

import asyncpg

from pgshift.tools.databases import Databases
from pgshift.tools.deploy import deploy
from pgshift.tools.localpg import LocalPostgres, embedded_server, pg15_bin_dir
from pgshift.tools.migrations.folder import read_migrations
from pgshift.tools.sql import quote_ident

CHAIN = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "prisma" / "hoppscotch" / "migrations"


async def _create(server: LocalPostgres) -> str:
    name = f"bench_{secrets.token_hex(5)}"
    conn = await asyncpg.connect(server.url())
    try:
        await conn.execute(f"CREATE DATABASE {quote_ident(name)}")
    finally:
        await conn.close()
    return name


async def _drop(server: LocalPostgres, name: str) -> None:
    conn = await asyncpg.connect(server.url())
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
    finally:
        await conn.close()


async def time_deploy(server: LocalPostgres) -> float:
    name = await _create(server)
    db = Databases.from_urls({"bench": server.url(name)})
    try:
        started = time.perf_counter()
        result = await deploy(db, "bench", str(CHAIN))
        elapsed = time.perf_counter() - started
        if result.status != "deployed":
            raise SystemExit(f"deploy failed: {result.message}")
        return elapsed
    finally:
        await db.close()
        await _drop(server, name)


async def time_psql(server: LocalPostgres, files: list[str]) -> float:
    name = await _create(server)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    args = [str(server.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", server.url(name)]
    for f in files:
        args += ["-f", f]
    try:
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env
        )
        _, err = await asyncio.wait_for(proc.communicate(), timeout=300)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"psql replay failed: {err.decode()}")
        return elapsed
    finally:
        await _drop(server, name)


async def bench(server: LocalPostgres, runs: int) -> tuple[list[float], list[float]]:
    files = [m.path for m in read_migrations(CHAIN).migrations if m.path]
    ours: list[float] = []
    raw: list[float] = []
    await time_deploy(server)  # warm-up: imports, catalog caches
    for _ in range(runs):  # interleaved so both see the same machine load
        ours.append(await time_deploy(server))
        raw.append(await time_psql(server, files))
    return ours, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--server", choices=["pg15", "pg18"], default="pg15")
    args = parser.parse_args()
    bin_dir = pg15_bin_dir() if args.server == "pg15" else None
    server = LocalPostgres(bin_dir).start() if bin_dir is not None else embedded_server().start()
    try:
        ours, raw = asyncio.run(bench(server, args.runs))
    finally:
        server.stop()
    n = len(read_migrations(CHAIN).migrations)
    ours_m, raw_m = statistics.median(ours), statistics.median(raw)
    version = "15" if bin_dir is not None else "18"
    print(f"hoppscotch chain ({n} migrations) into an empty PostgreSQL {version} database, {args.runs} runs (median):")
    print(f"  pgshift deploy : {ours_m * 1000:8.1f} ms  (min {min(ours) * 1000:.1f}, max {max(ours) * 1000:.1f})")
    print(f"  psql replay    : {raw_m * 1000:8.1f} ms  (min {min(raw) * 1000:.1f}, max {max(raw) * 1000:.1f})")
    print(f"  ratio deploy / psql : {ours_m / raw_m:.2f}x")


if __name__ == "__main__":
    main()
