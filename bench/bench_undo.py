"""Undo costs: snapshot and rollback of a 1,000-table schema, and a 1-million-row table whose column is dropped.

1. A genschema schema (`../shared/tools/genschema.py --tables N`): `snapshot_schema` (fingerprint + pg_dump), an apply
   that adds a column (its automatic snapshot included), then `rollback(migration=...)` (shadow load, plan, dry run,
   real run, both verified).
2. A table of `--rows` rows: an apply that drops a text column (the column and the keys are kept first, in the same
   transaction), beside the same apply with snapshots off; the kept copy's size; the rollback that writes the values
   back; and `pg_dump --data-only -t` of that table (time and size) for comparison.

python bench/bench_undo.py [--tables 1000] [--rows 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
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
from pgshift.tools.undo.rollback import rollback
from pgshift.tools.undo.snapshots import snapshot_schema

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


async def many_tables(server: LocalPostgres, tables: int) -> None:
    ddl = subprocess.run(  # noqa: ASYNC221 (once, before anything is timed)
        [sys.executable, str(GENSCHEMA), "--tables", str(tables), "--seed", "7", "--variant", "base"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    url = await new_db(server, "wide")
    await run_sql(url, ddl)
    db = Databases([Environment(name="wide", url=url)])
    try:
        _, snap_s = await timed(snapshot_schema(db, "wide", "bench"))
        conn = await asyncpg.connect(url)
        table = await conn.fetchval(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = 'public' LIMIT 1"
        )
        await conn.close()
        sql = f"ALTER TABLE {table} ADD COLUMN bench_extra int;"
        _, apply_s = await timed(apply_migration(db, "wide", "extra", sql=sql, version="1"))
        result, back_s = await timed(rollback(db, "wide", migration="1", accept_data_loss=True, shadow=server))
    finally:
        await db.close()
    print(
        f"{tables} tables: snapshot_schema {snap_s:.2f} s; apply (with its snapshot) {apply_s:.2f} s; "
        f"rollback {back_s:.2f} s ({result.status}, {len(result.plan.data.statements)} statement(s))"
    )


def dump_table(url: str, bin_dir: Path, table: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [str(bin_dir / "pg_dump"), "--data-only", "-t", table, "--dbname", url_without_password(url)],
        check=True,
        capture_output=True,
        env=pg_env(url),
    ).stdout
    return time.perf_counter() - t0, len(out)


async def big_table(server: LocalPostgres, rows: int) -> None:
    fill = (
        "CREATE TABLE big (id bigint PRIMARY KEY, payload text, n int);"
        f"INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text), g % 1000 FROM generate_series(1, {rows}) g;"
    )
    plain, kept = await new_db(server, "big_plain"), await new_db(server, "big_kept")
    for url in (plain, kept):
        await run_sql(url, fill)
        await run_sql(url, "VACUUM ANALYZE big")
    dump_s, dump_bytes = dump_table(kept, server.bin_dir, "big")
    sql = "ALTER TABLE big DROP COLUMN payload;"
    db = Databases([Environment(name="plain", url=plain), Environment(name="kept", url=kept)])
    original = apply_module.undo_options
    try:
        apply_module.undo_options = lambda *_: None  # type: ignore[assignment,return-value]
        _, plain_s = await timed(apply_migration(db, "plain", "drop payload", sql=sql, version="1"))
        apply_module.undo_options = original
        applied, kept_s = await timed(apply_migration(db, "kept", "drop payload", sql=sql, version="1"))
        result, back_s = await timed(rollback(db, "kept", migration="1", shadow=server))
    finally:
        apply_module.undo_options = original
        await db.close()
    kept_bytes = applied.kept_bytes or 0
    print(
        f"{rows} rows, drop a text column: apply {plain_s:.2f} s without undo, {kept_s:.2f} s keeping it "
        f"({kept_bytes / 1e6:.1f} MB kept); rollback {back_s:.2f} s ({result.status}); "
        f"pg_dump --data-only -t big: {dump_s:.2f} s, {dump_bytes / 1e6:.1f} MB"
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
