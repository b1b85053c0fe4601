"""Undo costs, each printed beside its reference measured in the same run (a ratio; read ratios, not seconds, on a
shared machine).

1. A genschema schema (`../shared/tools/genschema.py --tables N`):
   - `snapshot_schema` after a change (pg_dump) and with the schema unchanged (the DDL reused);
   - the snapshot an apply takes when the schema did not change since the last snapshot: `prepare_snapshot` +
     `save_snapshot` alone (median of 5; goal 30 ms), and an apply that adds a column with its snapshot vs the same
     apply on a copy of the database (`CREATE DATABASE ... TEMPLATE`) with snapshots off (median of 3 rounds);
   - `rollback(migration=...)` of the last apply, schema only (goal 3 s).
2. A table of `--rows` rows: an apply that drops a text column (the column and the keys are kept first, in the same
   transaction), beside the same apply with snapshots off; the kept copy's size; the rollback that writes the values
   back vs the reference: `pg_dump --data-only -t` of that table plus its load by psql (COPY) into an empty copy of
   the table (goal 1.5x).

python bench/bench_undo.py [--tables 1000] [--rows 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import asyncpg

import pgshift.tools.apply as apply_module
from pgshift.tools.apply import apply_migration
from pgshift.tools.databases import Databases, Environment
from pgshift.tools.judge import pg_env, url_without_password
from pgshift.tools.localpg import LocalPostgres, embedded_server
from pgshift.tools.undo.capture import options_for
from pgshift.tools.undo.rollback import rollback
from pgshift.tools.undo.snapshots import snapshot_schema
from pgshift.tools.undo.store import prepare_snapshot, save_snapshot

APPLY_ROUNDS = 3
GENSCHEMA = Path(__file__).resolve().parents[2] / "shared" / "tools" / "genschema.py"


async def timed(work: Awaitable[Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    result = await work
    return result, time.perf_counter() - t0


async def new_db(server: LocalPostgres, name: str) -> str:
    conn = await asyncpg.connect(server.url())
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return server.url(name)


async def run_sql(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def without_snapshots(work: Awaitable[Any]) -> tuple[Any, float]:
    """`work` (an apply) with undo off: no snapshot, nothing kept."""
    original = apply_module.undo_options
    apply_module.undo_options = lambda *_: None  # type: ignore[assignment,return-value]
    try:
        return await timed(work)
    finally:
        apply_module.undo_options = original


async def snapshot_step(db: Databases, environment: str, url: str) -> float:
    """The snapshot step of an apply alone, on an unchanged schema (reused): median seconds of 5."""
    options = options_for(db, environment)
    conn = await asyncpg.connect(url)
    try:
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            taken = await prepare_snapshot(conn, options, 5000)
            async with conn.transaction():
                await save_snapshot(conn, taken, label="bench")
            times.append(time.perf_counter() - t0)
            assert taken.ddl is None, "the schema did not change: the snapshot must be reused"
    finally:
        await conn.close()
    return statistics.median(times)


async def many_tables(server: LocalPostgres, tables: int) -> None:
    ddl = subprocess.run(  # noqa: ASYNC221 (once, before anything is timed)
        [sys.executable, str(GENSCHEMA), "--tables", str(tables), "--seed", "7", "--variant", "base"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    url = await new_db(server, "wide")
    await run_sql(url, ddl)
    conn = await asyncpg.connect(url)
    table = await conn.fetchval(
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = 'public' LIMIT 1"
    )
    await conn.close()
    await run_sql(server.url(), "CREATE DATABASE wide_plain TEMPLATE wide")
    db = Databases([Environment(name="wide", url=url), Environment(name="plain", url=server.url("wide_plain"))])
    first = f"ALTER TABLE {table} ADD COLUMN bench_first int;"  # pgshift's ledger exists from here on, as in use
    plain_runs, kept_runs = [], []
    try:
        await without_snapshots(apply_migration(db, "plain", "first", sql=first, version="0"))
        await apply_migration(db, "wide", "first", sql=first, version="0")
        _, again_s = await timed(snapshot_schema(db, "wide", "bench"))  # the schema changed since: a dump
        _, same_s = await timed(snapshot_schema(db, "wide", "bench"))  # same fingerprint: reused
        step_s = await snapshot_step(db, "wide", url)
        for n in range(1, APPLY_ROUNDS + 1):  # each apply after a snapshot of the schema it finds, alternating
            if n > 1:
                await snapshot_schema(db, "wide", "bench")
            sql = f"ALTER TABLE {table} ADD COLUMN bench_extra_{n} int;"
            _, plain_s = await without_snapshots(apply_migration(db, "plain", "extra", sql=sql, version=str(n)))
            _, apply_s = await timed(apply_migration(db, "wide", "extra", sql=sql, version=str(n)))
            plain_runs.append(plain_s)
            kept_runs.append(apply_s)
        last = str(APPLY_ROUNDS)
        result, back_s = await timed(rollback(db, "wide", migration=last, accept_data_loss=True, shadow=server))
    finally:
        await db.close()
    plain_s, apply_s = statistics.median(plain_runs), statistics.median(kept_runs)
    cost = statistics.median(k - p for k, p in zip(kept_runs, plain_runs, strict=True))
    print(
        f"{tables} tables: snapshot_schema {again_s:.2f} s after a change, {same_s:.2f} s with the schema unchanged; "
        f"the snapshot step of an apply, schema unchanged: {step_s * 1000:.0f} ms (goal 30 ms)\n"
        f"  apply (median of {APPLY_ROUNDS}, schema unchanged since the last snapshot) with its snapshot "
        f"{apply_s:.2f} s vs without {plain_s:.2f} s: {cost * 1000:+.0f} ms, {apply_s / plain_s:.2f}x\n"
        f"  rollback, schema only: {back_s:.2f} s ({result.status}, {len(result.plan.data.statements)} statement(s);"
        f" goal 3 s: {back_s / 3:.2f}x the goal)"
    )


def dump_table(url: str, bin_dir: Path, table: str) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [str(bin_dir / "pg_dump"), "--data-only", "-t", table, "--dbname", url_without_password(url)],
        check=True,
        capture_output=True,
        env=pg_env(url),
    ).stdout
    return time.perf_counter() - t0, out


def load_dump(url: str, bin_dir: Path, dump: Path) -> float:
    """psql runs the dump (its COPY ... FROM stdin) into `url`: seconds."""
    t0 = time.perf_counter()
    subprocess.run(
        [str(bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(dump), url_without_password(url)],
        check=True,
        capture_output=True,
        env=pg_env(url),
    )
    return time.perf_counter() - t0


async def big_table(server: LocalPostgres, rows: int) -> None:
    create = "CREATE TABLE big (id bigint PRIMARY KEY, payload text, n int);"
    fill = (
        f"{create}"
        f"INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text), g % 1000 FROM generate_series(1, {rows}) g;"
    )
    plain, kept, reference = (
        await new_db(server, "big_plain"),
        await new_db(server, "big_kept"),
        await new_db(server, "big_reference"),
    )
    for url in (plain, kept):
        await run_sql(url, fill)
        await run_sql(url, "VACUUM ANALYZE big")
    await run_sql(reference, create)
    dump_s, dumped = dump_table(kept, server.bin_dir, "big")
    with tempfile.TemporaryDirectory() as folder:
        dump_file = Path(folder) / "big.sql"
        dump_file.write_bytes(dumped)
        copy_s = load_dump(reference, server.bin_dir, dump_file)
    sql = "ALTER TABLE big DROP COLUMN payload;"
    db = Databases([Environment(name="plain", url=plain), Environment(name="kept", url=kept)])
    try:
        _, plain_s = await without_snapshots(apply_migration(db, "plain", "drop payload", sql=sql, version="1"))
        applied, kept_s = await timed(apply_migration(db, "kept", "drop payload", sql=sql, version="1"))
        result, back_s = await timed(rollback(db, "kept", migration="1", shadow=server))
    finally:
        await db.close()
    kept_bytes = applied.kept_bytes or 0
    reference_s = dump_s + copy_s
    print(
        f"{rows} rows, drop a text column: apply {plain_s:.2f} s without undo, {kept_s:.2f} s keeping it "
        f"({kept_bytes / 1e6:.1f} MB kept; {kept_s / plain_s:.2f}x)\n"
        f"  rollback writing the column back {back_s:.2f} s ({result.status}) vs pg_dump --data-only -t big "
        f"{dump_s:.2f} s ({len(dumped) / 1e6:.1f} MB) + COPY into an empty table {copy_s:.2f} s = {reference_s:.2f} s: "
        f"{back_s / reference_s:.2f}x (goal 1.5x)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    server = embedded_server().start()
    try:
        await many_tables(server, args.tables)
        await big_table(server, args.rows)
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
