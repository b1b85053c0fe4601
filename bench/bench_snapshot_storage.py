"""Bytes stored per snapshot on the Supabase stand-in (tests/support_supabase.py: Supabase's own SQL on Debian's
PostgreSQL 15, `postgres` not a superuser): 20 app migrations applied as `postgres`, each with its snapshot.

Prints each snapshot's DDL size, its chunks and the bytes it added (its row plus the chunks it was first to use,
with the tuple overhead), and what one whole-dump row per snapshot cost before (the text, and after TOAST's pglz).

python bench/bench_snapshot_storage.py
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
os.environ.setdefault("PGSHIFT_STATE_DIR", tempfile.mkdtemp(prefix="pgshift-bench-state-"))

from support_supabase import StandIn, copy_project, drop_project, start_stand_in

from pgshift.tools.apply import apply_migration
from pgshift.tools.databases import Databases, Environment
from pgshift.tools.undo.store import read_snapshot

MIGRATIONS = [
    "CREATE TABLE public.account (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), email text NOT NULL UNIQUE, "
    "created_at timestamptz DEFAULT now());",
    "CREATE TABLE public.project (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
    "account_id uuid REFERENCES public.account (id), name text);",
    "CREATE INDEX project_account ON public.project (account_id);",
    "ALTER TABLE public.account ENABLE ROW LEVEL SECURITY; "
    "CREATE POLICY own ON public.account FOR SELECT TO authenticated USING (id = auth.uid());",
    "CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.created_at := now(); "
    "RETURN NEW; END $$;",
    "ALTER TABLE public.project ADD COLUMN archived boolean NOT NULL DEFAULT false;",
    *(f"CREATE TABLE public.extra_{i} (id int PRIMARY KEY, v text);" for i in range(14)),
]
CHUNK_ROW_OVERHEAD = 24 + 4 + 33  # tuple header, `bytes`, the 32-byte key


async def measure(stand_in: StandIn) -> None:
    name = await copy_project(stand_in)
    url = stand_in.app_url(name)
    db = Databases([Environment(name="production", url=url)])
    try:
        for n, sql in enumerate(MIGRATIONS, start=1):
            await apply_migration(db, "production", f"m{n}", sql=sql, version=f"{n:04d}")
    finally:
        await db.close()
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT id, ddl_bytes, chunks, pg_column_size(s.*) AS row FROM pgshift.snapshots s ORDER BY id"
        )
        seen: set[bytes] = set()
        added = []
        for r in rows:
            new = [bytes(d) for d in r["chunks"] if bytes(d) not in seen]
            seen.update(new)
            size = await conn.fetchval(
                "SELECT coalesce(sum(pg_column_size(data) + $2), 0) FROM pgshift.snapshot_chunks "
                "WHERE sha256 = ANY($1::bytea[])",
                new,
                CHUNK_ROW_OVERHEAD,
            )
            added.append((int(r["id"]), int(r["ddl_bytes"]), int(r["row"]) + int(size), len(r["chunks"])))
        _, ddl = await read_snapshot(conn, int(rows[-1]["id"]))
        await conn.execute("CREATE TEMP TABLE whole_dump (ddl text)")
        await conn.execute("INSERT INTO whole_dump VALUES ($1)", ddl)
        toasted = int(await conn.fetchval("SELECT pg_column_size(ddl) FROM whole_dump"))
    finally:
        await conn.close()
        await drop_project(stand_in, name)
    for snapshot_id, ddl_bytes, stored, chunks in added:
        print(f"snapshot {snapshot_id}: DDL {ddl_bytes} bytes in {chunks} chunks, stored {stored} bytes")
    later = [a[2] for a in added[1:]]
    whole = len(ddl.encode())
    print(f"before: {whole} bytes of DDL text per snapshot ({toasted} bytes after TOAST's pglz)")
    mean = sum(later) // len(later)
    print(f"after: first snapshot {added[0][2]} bytes, each later one {min(later)}..{max(later)} (mean {mean})")
    n, total = len(added), sum(a[2] for a in added)
    print(f"{n} snapshots: {total} bytes; before {n * whole} text, {n * toasted} toasted")


def main() -> None:
    stand_in, tree = start_stand_in(Path(os.environ.get("PGSHIFT_PG15_BIN", "/usr/lib/postgresql/15/bin")))
    try:
        asyncio.run(measure(stand_in))
    finally:
        stand_in.server.stop()
        shutil.rmtree(tree, ignore_errors=True)


if __name__ == "__main__":
    main()
