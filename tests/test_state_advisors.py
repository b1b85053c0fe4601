"""pgshift's own tables make no advisor findings (splinter's lints, `get_advisors`): kept-data tables exist only when
something is kept and have a primary key, the foreign key on kept_data leads an index, and the ledger has no unused
index. Installs of older versions are upgraded on pgshift's next write. On PostgreSQL 15 and 18."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from support_apply import run_sql, target

from pgshift.tools.apply import apply_migration
from pgshift.tools.watch.advisors import get_advisors

# What older versions created: the ledger with its version index, kept_data before anything was kept, a kept table
# without a primary key.
OLD_LAYOUT = """
CREATE SCHEMA pgshift;
CREATE TABLE pgshift.migrations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, version text NOT NULL, name text NOT NULL, source text NOT NULL,
    checksum text NOT NULL, statements text[] NOT NULL, applied_by text NOT NULL DEFAULT current_user,
    client text NOT NULL, started_at timestamptz NOT NULL, finished_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    duration_ms integer NOT NULL, outcome text NOT NULL CONSTRAINT migrations_outcome_check
    CHECK (outcome IN ('applied', 'failed', 'rolled_back')), error text);
CREATE INDEX migrations_version ON pgshift.migrations (version);
CREATE TABLE pgshift.snapshots (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, label text, fingerprint text NOT NULL, ddl text NOT NULL,
    ddl_sha256 text NOT NULL, server_version text NOT NULL, precedes_version text, precedes_name text,
    taken_by text NOT NULL DEFAULT current_user, taken_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE pgshift.kept_data (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    snapshot_id bigint NOT NULL REFERENCES pgshift.snapshots (id) ON DELETE CASCADE, statement integer NOT NULL,
    kind text NOT NULL, table_schema text NOT NULL, table_name text NOT NULL, column_name text,
    kept_table text NOT NULL, key_columns text[] NOT NULL, columns text[] NOT NULL, rows bigint NOT NULL,
    bytes bigint NOT NULL, kept_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE pgshift.kept_1_1_1 (id text, note text);
"""
LOSSY = """
CREATE TABLE person (id int PRIMARY KEY, name text, email text);
CREATE TABLE old_log (line text);
INSERT INTO person VALUES (1, 'ann', 'ann@example.com');
INSERT INTO old_log VALUES ('x');
"""


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))


async def _pgshift_findings(url: str) -> list[str]:
    db = target(url)
    try:
        report = await get_advisors(db, "target", "all", limit=10_000)
    finally:
        await db.close()
    return [
        f"{a.name}: {a.detail}"
        for a in report.lints.data
        if a.metadata.get("schema") == "pgshift" or "pgshift" in a.detail or "pgshift" in a.cache_key
    ]


async def _apply_lossy(url: str) -> None:
    db = target(url)
    try:
        await apply_migration(db, "target", "base", sql=LOSSY, version="1")
        await apply_migration(
            db, "target", "lossy", sql="ALTER TABLE person DROP COLUMN email; DROP TABLE old_log;", version="2"
        )
        await apply_migration(db, "target", "more", sql="CREATE TABLE later (id int PRIMARY KEY);", version="3")
    finally:
        await db.close()


async def test_after_an_apply_that_kept_data_no_advisor_finding_names_a_pgshift_object(fresh_db: str) -> None:
    db = target(fresh_db)
    try:
        await apply_migration(db, "target", "base", sql=LOSSY, version="1")
    finally:
        await db.close()
    conn = await asyncpg.connect(fresh_db)
    try:
        nothing_kept_yet = await conn.fetchval("SELECT to_regclass('pgshift.kept_data') IS NULL")
    finally:
        await conn.close()
    db = target(fresh_db)
    try:
        await apply_migration(
            db, "target", "lossy", sql="ALTER TABLE person DROP COLUMN email; DROP TABLE old_log;", version="2"
        )
    finally:
        await db.close()
    assert nothing_kept_yet
    assert await _pgshift_findings(fresh_db) == []


async def test_an_install_of_an_older_version_is_upgraded_to_make_no_findings(fresh_db: str) -> None:
    await run_sql(fresh_db, OLD_LAYOUT)
    before = await _pgshift_findings(fresh_db)
    await _apply_lossy(fresh_db)
    assert {f.split(":")[0] for f in before} >= {"no_primary_key", "unused_index"}  # the lints see pgshift's tables
    assert await _pgshift_findings(fresh_db) == []
    conn = await asyncpg.connect(fresh_db)
    try:
        assert await conn.fetchval("SELECT to_regclass('pgshift.migrations_version')") is None
    finally:
        await conn.close()
