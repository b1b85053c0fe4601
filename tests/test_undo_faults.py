"""rollback under faults: a killed connection, a lock held elsewhere, a missing or corrupted snapshot, a half-failed
migration, data written since the snapshot, a kept-data limit. The database is checked on its own connection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from support_apply import WAITING_ON_LOCK, run_sql, snapshot, target, wait_until

from pgshift.tools.apply import Timeouts, apply_migration
from pgshift.tools.approval import ApprovalStore
from pgshift.tools.errors import ConfigError, DatabaseError, NotAllowed
from pgshift.tools.localpg import LocalPostgres, embedded_bin_dir
from pgshift.tools.migrations.folder import Migration, checksum
from pgshift.tools.migrations.parse import split_statements
from pgshift.tools.undo.capture import prepare
from pgshift.tools.undo.rollback import rollback
from pgshift.tools.undo.store import SnapshotOptions

BASE = """
CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL, note text);
INSERT INTO person (name, note) VALUES ('ann', 'tea'), ('bob', NULL);
"""
DROP_NOTE = "ALTER TABLE person DROP COLUMN note;\n"


async def _lossy(url: str) -> None:
    db = target(url)
    try:
        await apply_migration(db, "target", "base", sql=BASE, version="1")
        await apply_migration(db, "target", "drop note", sql=DROP_NOTE, version="2")
    finally:
        await db.close()


async def _fetch(url: str, query: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()


async def test_a_rollback_killed_while_recording_its_history_leaves_database_and_histories_as_they_were(
    db18: str, pg18: LocalPostgres
) -> None:
    await _lossy(db18)
    before = await snapshot(db18)
    db = target(db18)
    holder = await asyncpg.connect(db18)
    try:
        # Reads pass, writes wait: the rollback gets through its dry run and its statements, then waits to record.
        await holder.execute("BEGIN; LOCK TABLE supabase_migrations.schema_migrations IN EXCLUSIVE MODE")
        task = asyncio.create_task(
            rollback(db, "target", migration="2", shadow=pg18, timeouts=Timeouts(lock_ms=60_000))
        )
        await wait_until(holder, WAITING_ON_LOCK)
        killed = await holder.fetchval(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        assert killed
        await holder.execute("ROLLBACK")
        with pytest.raises(DatabaseError) as info:
            await asyncio.wait_for(task, timeout=10)
    finally:
        await holder.close()
        await db.close()
    assert "connection was lost" in str(info.value)
    assert "the database and its histories are as they were" in str(info.value)
    assert await snapshot(db18) == before


async def test_a_lock_held_elsewhere_gives_a_clear_timeout_error_and_changes_nothing(
    db18: str, pg18: LocalPostgres
) -> None:
    await _lossy(db18)
    before = await snapshot(db18)
    db = target(db18)
    holder = await asyncpg.connect(db18)
    try:
        await holder.execute("BEGIN; LOCK TABLE person IN ACCESS SHARE MODE")
        with pytest.raises(DatabaseError) as info:
            await rollback(db, "target", migration="2", shadow=pg18, timeouts=Timeouts(lock_ms=100))
        await holder.execute("ROLLBACK")
    finally:
        await holder.close()
        await db.close()
    assert info.value.sqlstate == "55P03"
    assert "lock_timeout (100 ms)" in str(info.value)
    assert await snapshot(db18) == before


async def test_a_missing_or_corrupted_snapshot_is_refused_and_nothing_is_done(db18: str, pg18: LocalPostgres) -> None:
    await _lossy(db18)
    before = await snapshot(db18)
    db = target(db18)
    try:
        with pytest.raises(ConfigError, match="snapshot 999 does not exist"):
            await rollback(db, "target", snapshot=999, shadow=pg18)
        with pytest.raises(ConfigError, match="no snapshot precedes migration 7"):
            await rollback(db, "target", migration="7", shadow=pg18)
        # A stored part of its DDL edited: it no longer matches what was signed.
        await run_sql(db18, "UPDATE pgshift.snapshot_chunks SET data = data || '\\x00'::bytea")
        with pytest.raises(DatabaseError, match="fails its integrity check"):
            await rollback(db, "target", migration="2", shadow=pg18)
        # Edited together with its digest: the keyed MAC (whose key is not in the database) no longer verifies.
        await run_sql(db18, "UPDATE pgshift.snapshots SET ddl_sha256 = encode(sha256('x'::bytea), 'hex')")
        with pytest.raises(DatabaseError, match="fails its integrity check"):
            await rollback(db, "target", migration="2", shadow=pg18)
    finally:
        await db.close()
    after = await snapshot(db18)
    assert after == before
    assert (
        await _fetch(db18, "SELECT attname FROM pg_attribute WHERE attrelid = 'person'::regclass AND attname = 'note'")
        == []
    )


HALF_FAILING = """
CREATE TABLE side (id int);
CREATE INDEX CONCURRENTLY person_name ON person (name);
ALTER TABLE nosuch ADD COLUMN x int;
"""


async def test_a_migration_that_failed_half_way_is_rolled_back_to_the_snapshot_before_it(
    db18: str, pg18: LocalPostgres
) -> None:
    db = target(db18)
    try:
        await apply_migration(db, "target", "base", sql=BASE, version="1")
        with pytest.raises(DatabaseError, match="stay committed"):
            await apply_migration(db, "target", "half", sql=HALF_FAILING, version="2", rewrite=False)
        assert await _fetch(db18, "SELECT to_regclass('side') IS NOT NULL, to_regclass('person_name') IS NOT NULL") == [
            (True, True)
        ]
        result = await rollback(db, "target", migration="2", shadow=pg18)
    finally:
        await db.close()
    assert result.status == "rolled_back", result
    assert await _fetch(db18, "SELECT to_regclass('side'), to_regclass('person_name')") == [(None, None)]
    outcomes = await _fetch(db18, "SELECT outcome FROM pgshift.migrations WHERE version = '2' ORDER BY id")
    assert outcomes == [("failed",), ("rolled_back",)]
    assert await _fetch(db18, "SELECT name, note FROM person ORDER BY id") == [("ann", "tea"), ("bob", None)]


async def test_data_written_since_the_snapshot_blocks_the_rollback_unless_the_loss_is_accepted(
    db18: str, pg18: LocalPostgres
) -> None:
    db = target(db18)
    try:
        await apply_migration(db, "target", "base", sql=BASE, version="1")
        await apply_migration(db, "target", "audit", sql="CREATE TABLE audit (id int PRIMARY KEY);", version="2")
        await run_sql(db18, "INSERT INTO audit VALUES (1)")
        blocked = await rollback(db, "target", to_version="1", shadow=pg18)
        assert blocked.status == "blocked"
        assert "accept_data_loss" in blocked.plan.data.blockers[0]
        assert await _fetch(db18, "SELECT count(*) FROM audit") == [(1,)]
        done = await rollback(db, "target", to_version="1", accept_data_loss=True, shadow=pg18)
    finally:
        await db.close()
    assert (done.status, done.reverted) == ("rolled_back", ["2"])
    assert await _fetch(db18, "SELECT to_regclass('audit')") == [(None,)]


async def test_kept_data_is_sized_before_approval_and_refused_over_the_environment_limit(
    db18: str, tmp_path: Path
) -> None:
    await run_sql(db18, BASE)
    db = target(db18, protected=True)
    try:
        asked = await apply_migration(db, "target", "drop", sql=DROP_NOTE, approvals=ApprovalStore(tmp_path))
    finally:
        await db.close()
    assert asked.status == "confirmation_required" and asked.kept_bytes and asked.kept_bytes > 0
    assert "kept for rollback first" in asked.message
    sql = DROP_NOTE
    migration = Migration(version="2", name="drop", source="sql", sql=sql, checksum=checksum(sql))
    options = SnapshotOptions(dump_url=db18, bin_dir=embedded_bin_dir(), max_kept_bytes=1)
    conn = await asyncpg.connect(db18)
    try:
        with pytest.raises(NotAllowed, match="over this environment's max_kept_bytes"):
            await prepare(conn, options, migration, split_statements(sql), 1_000)
    finally:
        await conn.close()
    assert await _fetch(db18, "SELECT to_regnamespace('pgshift')") == [(None,)]


async def test_a_column_of_a_table_without_a_key_is_named_as_not_kept(db18: str) -> None:
    await run_sql(db18, "CREATE TABLE loose (v text, w text); INSERT INTO loose VALUES ('a', 'b');")
    db = target(db18)
    try:
        applied = await apply_migration(db, "target", "drop v", sql="ALTER TABLE loose DROP COLUMN v;", version="1")
    finally:
        await db.close()
    assert applied.kept_data == [] and applied.snapshot_id is not None
    assert "Not kept (their table has no primary or NOT NULL unique key)" in applied.message
    assert "loose.v" in applied.message
