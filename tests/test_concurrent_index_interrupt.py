"""issue 17: an interrupted CREATE INDEX CONCURRENTLY (or VALIDATE CONSTRAINT) is never recorded as done.

A concurrent build commits its catalog entry first, so a build whose session dies leaves the index INVALID; `IF NOT
EXISTS` then skips it on the next run. The build is held in its last phase (it waits for a transaction holding an
older snapshot, opened here on our own connection: deterministic, whatever the table's size) and its backend is
terminated from our connection once pg_stat_activity shows it waiting. Everything is judged on our own connection.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
from support_apply import prisma_folder, target

from pgshift.tools.deploy import deploy
from pgshift.tools.ledger import LEDGER, prisma_table
from pgshift.tools.migrations import leftovers
from pgshift.tools.migrations.parse import split_statements

ROWS = 20_000
BOUND_S = 30.0

INIT = f"""CREATE TABLE "Big" (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO "Big" SELECT g, g % 1000 FROM generate_series(1, {ROWS}) AS g;
"""
INDEX = 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "Big_v_idx" ON "Big" (v);\n'

BUILD_WAITING = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'
  AND query ILIKE '%CREATE INDEX CONCURRENTLY%' AND wait_event_type IS NOT NULL
"""
INDEX_STATE = """
SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'Big_v_idx'
"""


async def _build_backend(conn: asyncpg.Connection) -> int:
    """The pid of the concurrent build once it waits (bounded)."""
    deadline = time.monotonic() + BOUND_S
    while True:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        pid = await conn.fetchval(BUILD_WAITING)
        if pid is not None:
            return int(pid)
        if time.monotonic() > deadline:
            raise AssertionError(f"the concurrent build did not show up waiting within {BOUND_S} s")
        await asyncio.sleep(0.02)


async def _recorded(conn: asyncpg.Connection, version: str) -> tuple[int, int]:
    """(applied rows in our ledger, finished rows in _prisma_migrations) for `version`."""
    ledger = await conn.fetchval(f"SELECT count(*) FROM {LEDGER} WHERE version = $1 AND outcome = 'applied'", version)
    prisma = await conn.fetchval(
        f"SELECT count(*) FROM {prisma_table()} WHERE migration_name LIKE $1 || '%' AND finished_at IS NOT NULL",
        version,
    )
    return int(ledger), int(prisma)


async def test_an_interrupted_concurrent_index_is_never_recorded_and_the_next_deploy_rebuilds_it(
    fresh_db: str, tmp_path: Path
) -> None:
    folder = prisma_folder(tmp_path, {"20240101000000_init": INIT})
    db = target(fresh_db)
    watcher = await asyncpg.connect(fresh_db)
    holder = await asyncpg.connect(fresh_db)
    try:
        assert (await deploy(db, "target", str(folder))).status == "deployed"
        prisma_folder(tmp_path, {"20240102000000_index": INDEX})
        # An old snapshot the build's last phase must wait for (it touches no table: no lock conflicts with it).
        snapshot_tx = holder.transaction(isolation="repeatable_read")
        await snapshot_tx.start()
        await holder.fetchval("SELECT 1")
        running = asyncio.create_task(deploy(db, "target", str(folder)))
        try:
            pid = await _build_backend(watcher)
            assert await watcher.fetchval("SELECT pg_terminate_backend($1)", pid)
            interrupted = await asyncio.wait_for(running, BOUND_S)
        finally:
            if not running.done():
                running.cancel()
            await snapshot_tx.rollback()

        assert interrupted.status == "failed"
        assert await watcher.fetchval(INDEX_STATE) is False  # left INVALID by the interrupted build
        assert await _recorded(watcher, "20240102000000") == (0, 0)

        again = await deploy(db, "target", str(folder))
        assert again.status == "deployed", again.message
        assert "built again" in again.applied[0].message
        assert await watcher.fetchval(INDEX_STATE) is True
        assert await _recorded(watcher, "20240102000000") == (1, 1)
        assert await watcher.fetchval("SELECT count(*) FROM pg_indexes WHERE tablename = 'Big'") == 2
    finally:
        await watcher.close()
        await holder.close()
        await db.close()


SLOW_CHECK = """CREATE TABLE "Checked" (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO "Checked" SELECT g, g FROM generate_series(1, 50) AS g;
CREATE FUNCTION slow_ok(v int) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN PERFORM pg_sleep(0.2); RETURN v > 0; END $$;
ALTER TABLE "Checked" ADD CONSTRAINT "Checked_v_check" CHECK (slow_ok(v)) NOT VALID;
"""
VALIDATE = 'ALTER TABLE "Checked" VALIDATE CONSTRAINT "Checked_v_check";\n'
VALIDATING = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'
  AND query ILIKE '%VALIDATE CONSTRAINT%' AND wait_event = 'PgSleep'
"""
CONVALIDATED = "SELECT convalidated FROM pg_constraint WHERE conname = 'Checked_v_check'"


async def test_an_interrupted_validation_is_never_recorded_and_the_next_deploy_validates(
    db18: str, tmp_path: Path
) -> None:
    folder = prisma_folder(tmp_path, {"20240101000000_init": SLOW_CHECK})
    db = target(db18)
    watcher = await asyncpg.connect(db18)
    try:
        assert (await deploy(db, "target", str(folder))).status == "deployed"
        prisma_folder(tmp_path, {"20240102000000_validate": VALIDATE})
        running = asyncio.create_task(deploy(db, "target", str(folder)))
        try:
            deadline = time.monotonic() + BOUND_S
            while (pid := await watcher.fetchval(VALIDATING)) is None:
                assert time.monotonic() < deadline, "the validation did not show up within the bound"
                await asyncio.sleep(0.02)
                await watcher.execute("SELECT pg_stat_clear_snapshot()")
            assert await watcher.fetchval("SELECT pg_terminate_backend($1)", pid)
            interrupted = await asyncio.wait_for(running, BOUND_S)
        finally:
            if not running.done():
                running.cancel()
        assert interrupted.status == "failed"
        assert await watcher.fetchval(CONVALIDATED) is False
        assert await _recorded(watcher, "20240102000000") == (0, 0)
        # What the runner checks before it records a migration: the constraint it validates is still NOT VALID.
        problems = await leftovers.unfinished(watcher, split_statements(VALIDATE))
        assert len(problems) == 1 and "NOT VALID" in problems[0]

        await watcher.execute(
            "CREATE OR REPLACE FUNCTION slow_ok(v int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT v > 0'"
        )
        again = await deploy(db, "target", str(folder))
        assert again.status == "deployed", again.message
        assert await watcher.fetchval(CONVALIDATED) is True
        assert await _recorded(watcher, "20240102000000") == (1, 1)
        assert await leftovers.unfinished(watcher, split_statements(VALIDATE)) == []
    finally:
        await watcher.close()
        await db.close()
