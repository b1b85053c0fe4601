"""Integrity the database cannot forge: snapshots and kept-data records carry a keyed MAC whose key lives in pgshift's
state directory (0600), never in the database.

Whoever may write the target (its superuser here) rewrites a snapshot's DDL and every digest stored beside it, or a
kept-data record: verify_snapshot and rollback refuse it, nothing is loaded and the target is unchanged. A snapshot
signed with another machine's key, or taken by an older pgshift without a MAC, is refused the same way. Judged on
the database and the file system.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zlib
from pathlib import Path

import asyncpg
import pytest
from support_apply import run_sql, snapshot, target

from pgshift.tools import integrity
from pgshift.tools.apply import apply_migration
from pgshift.tools.errors import ConfigError, DatabaseError
from pgshift.tools.localpg import LocalPostgres, embedded_bin_dir
from pgshift.tools.undo.rollback import rollback
from pgshift.tools.undo.snapshots import list_snapshots, verify_snapshot

BASE = """
CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL, note text);
INSERT INTO person (name, note) VALUES ('ann', 'tea'), ('bob', NULL);
"""
DROP_NOTE = "ALTER TABLE person DROP COLUMN note;\n"
PLANTED = "\nCREATE TABLE planted (id int);\n"


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "state"
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(folder))
    return folder


def _not_started() -> LocalPostgres:
    """A scratch server that was never started: any attempt to load a snapshot on it fails with another error."""
    return LocalPostgres(embedded_bin_dir())


async def _lossy(url: str) -> None:
    db = target(url)
    try:
        await apply_migration(db, "target", "base", sql=BASE, version="1")
        await apply_migration(db, "target", "drop note", sql=DROP_NOTE, version="2")
    finally:
        await db.close()


async def _rewrite_ddl_consistently(url: str, snapshot_id: int) -> None:
    """What a superuser of the target can do: rewrite the DDL and every digest, size and chunk list beside it."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow("SELECT chunks FROM pgshift.snapshots WHERE id = $1", snapshot_id)
        parts = []
        for digest in row["chunks"]:
            data = await conn.fetchval("SELECT data FROM pgshift.snapshot_chunks WHERE sha256 = $1", digest)
            parts.append(zlib.decompress(data))
        ddl = b"".join(parts) + PLANTED.encode()
        digest = hashlib.sha256(ddl).digest()
        await conn.execute(
            "INSERT INTO pgshift.snapshot_chunks (sha256, bytes, data) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            digest,
            len(ddl),
            zlib.compress(ddl),
        )
        await conn.execute(
            "UPDATE pgshift.snapshots SET chunks = ARRAY[$2::bytea], ddl_bytes = $3, ddl_sha256 = $4 WHERE id = $1",
            snapshot_id,
            digest,
            len(ddl),
            hashlib.sha256(ddl).hexdigest(),
        )
    finally:
        await conn.close()


async def _first_snapshot_of(url: str, version: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT max(id) FROM pgshift.snapshots WHERE precedes_version = $1", version))
    finally:
        await conn.close()


async def test_a_snapshot_rewritten_with_its_digests_by_the_superuser_is_refused_and_never_loaded(
    fresh_db: str,
) -> None:
    await _lossy(fresh_db)
    snapshot_id = await _first_snapshot_of(fresh_db, "2")
    await _rewrite_ddl_consistently(fresh_db, snapshot_id)
    before = await snapshot(fresh_db)
    db = target(fresh_db)
    try:
        with pytest.raises(DatabaseError) as verified:
            await verify_snapshot(db, "target", snapshot_id, shadow=_not_started())
        with pytest.raises(DatabaseError) as rolled:
            await rollback(db, "target", migration="2", shadow=_not_started())
        listed = (await list_snapshots(db, "target")).snapshots.data
    finally:
        await db.close()
    for refused in (verified, rolled):
        assert f"snapshot {snapshot_id} fails its integrity check" in str(refused.value)
        assert "it will not be loaded" in str(refused.value)
    assert [s.integrity for s in listed if s.id == snapshot_id] == ["failed"]
    assert await snapshot(fresh_db) == before  # nothing was rolled back, nothing planted
    conn = await asyncpg.connect(fresh_db)
    try:
        assert await conn.fetchval("SELECT to_regclass('public.planted')") is None
    finally:
        await conn.close()


async def test_a_snapshot_signed_with_another_machines_key_is_refused(
    fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _lossy(fresh_db)
    snapshot_id = await _first_snapshot_of(fresh_db, "2")
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "other-machine"))
    db = target(fresh_db)
    try:
        with pytest.raises(DatabaseError, match="written with another machine's key; it will not be loaded"):
            await verify_snapshot(db, "target", snapshot_id, shadow=_not_started())
        listed = await list_snapshots(db, "target")
    finally:
        await db.close()
    assert listed.unverified == listed.total > 0


async def test_a_snapshot_from_an_older_pgshift_without_a_mac_is_refused_with_the_fix(fresh_db: str) -> None:
    await _lossy(fresh_db)
    ddl = "CREATE TABLE person (id int PRIMARY KEY);"
    conn = await asyncpg.connect(fresh_db)
    try:
        old = await conn.fetchval(
            """INSERT INTO pgshift.snapshots (fingerprint, ddl, ddl_sha256, server_version)
               VALUES ('f', $1, $2, '18') RETURNING id""",
            ddl,
            hashlib.sha256(ddl.encode()).hexdigest(),
        )
    finally:
        await conn.close()
    db = target(fresh_db)
    try:
        with pytest.raises(DatabaseError) as refused:
            await verify_snapshot(db, "target", int(old), shadow=_not_started())
    finally:
        await db.close()
    assert "without an integrity MAC" in str(refused.value)
    assert "take a new snapshot" in str(refused.value)


async def test_a_kept_data_record_rewritten_by_the_superuser_is_refused_and_nothing_is_restored(
    db18: str, pg18: LocalPostgres
) -> None:
    await _lossy(db18)
    await run_sql(db18, "UPDATE pgshift.kept_data SET table_name = 'victim'")
    before = await snapshot(db18)
    db = target(db18)
    try:
        with pytest.raises(DatabaseError, match="fails its integrity check: it was changed outside pgshift") as info:
            await rollback(db, "target", migration="2", shadow=pg18)
    finally:
        await db.close()
    assert "it will not be restored" in str(info.value)
    assert await snapshot(db18) == before


async def test_the_key_is_created_once_exclusively_0600_in_a_0700_folder(state_dir: Path) -> None:
    key = integrity.load_key()
    path = state_dir / "key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(state_dir).st_mode) == 0o700
    assert integrity.load_key() == key and len(key) == 32


async def test_a_key_others_can_read_or_a_linked_key_is_refused(state_dir: Path, tmp_path: Path) -> None:
    integrity.load_key()
    path = state_dir / "key"
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="mode 0600"):
        integrity.load_key()
    os.chmod(path, 0o600)
    elsewhere = tmp_path / "elsewhere"
    path.rename(elsewhere)
    path.symlink_to(elsewhere)
    with pytest.raises(ConfigError, match="cannot be opened"):
        integrity.load_key()


def test_drift_since_the_last_apply_does_not_trust_a_snapshot_that_fails_its_check() -> None:
    from datetime import UTC, datetime

    from pgshift.tools.undo.store import SnapshotRow
    from pgshift.tools.watch.drift import since_cheap

    forged = SnapshotRow(
        id=7,
        fingerprint="live",
        server_version="18",
        taken_by="postgres",
        taken_at=datetime.now(UTC),
        ddl_bytes=1,
        integrity="failed",
    )
    verdict = since_cheap(forged, "live")
    assert verdict.state == "unknown" and "snapshot 7 fails its integrity check" in verdict.compared
