"""Kept data has a retention: 30 days by default, `kept_retention_days` per environment. Data past it is discarded by
the next write pgshift makes to the environment, never by a read; what is kept, its size and until when is one summary
(list_snapshots carries it). Judged on the database, on a connection of our own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from pgshift.server.config import load_environments
from pgshift.tools.apply import apply_migration
from pgshift.tools.databases import Databases, Environment
from pgshift.tools.errors import ConfigError
from pgshift.tools.undo.retention import KeptSummary, human_bytes
from pgshift.tools.undo.snapshots import discard_kept_data, kept_data_summary, list_snapshots

BASE = """
CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL, email text);
INSERT INTO person (name, email) VALUES ('ann', 'ann@example.com'), ('bob', 'bob@example.com');
"""
DROP_EMAIL = "ALTER TABLE person DROP COLUMN email;\n"


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))


def _db(url: str, **retention: int) -> Databases:
    return Databases([Environment(name="target", url=url, **retention)])  # type: ignore[arg-type]


async def _kept_state(url: str) -> tuple[list[str], list[str]]:
    """(kept tables in the pgshift schema, kept_data records' tables), read on our own connection."""
    conn = await asyncpg.connect(url)
    try:
        tables = [
            r[0]
            for r in await conn.fetch(
                "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'pgshift' AND relname ~ '^kept_[0-9]' AND relkind = 'r' ORDER BY 1"
            )
        ]
        records = (
            [r[0] for r in await conn.fetch("SELECT kept_table FROM pgshift.kept_data ORDER BY 1")]
            if await conn.fetchval("SELECT to_regclass('pgshift.kept_data') IS NOT NULL")
            else []
        )
        return tables, records
    finally:
        await conn.close()


async def test_dropped_personal_data_is_kept_until_a_date_the_listing_states(fresh_db: str) -> None:
    db = _db(fresh_db)
    try:
        await apply_migration(db, "target", "base", sql=BASE, version="1")
        await apply_migration(db, "target", "drop email", sql=DROP_EMAIL, version="2")
        listed = await list_snapshots(db, "target")
        summary = await kept_data_summary(db, "target")
    finally:
        await db.close()
    tables, records = await _kept_state(fresh_db)
    assert len(tables) == len(records) == 1
    kept = listed.kept.data
    assert kept == summary and kept.tables == 1 and kept.rows == 2 and kept.bytes > 0
    assert kept.until is not None and kept.oldest is not None
    assert timedelta(days=29) < kept.until - datetime.now(UTC) <= timedelta(days=30)
    assert listed.kept_text == f"kept: 1 table, {human_bytes(kept.bytes)}, until {kept.until:%Y-%m-%d}"
    assert [e.object for e in kept.entries] == ["public.person.email"]


async def test_expired_kept_data_goes_with_the_next_write_never_with_a_read(fresh_db: str) -> None:
    db = _db(fresh_db, kept_retention_days=0)
    try:
        await apply_migration(db, "target", "base", sql=BASE, version="1")
        await apply_migration(db, "target", "drop email", sql=DROP_EMAIL, version="2")
        kept_after_apply = await _kept_state(fresh_db)
        await list_snapshots(db, "target")  # reads
        await kept_data_summary(db, "target")
        kept_after_reads = await _kept_state(fresh_db)
        await apply_migration(db, "target", "more", sql="CREATE TABLE other (id int PRIMARY KEY);", version="3")
        kept_after_write = await _kept_state(fresh_db)
        summary = await kept_data_summary(db, "target")
    finally:
        await db.close()
    assert len(kept_after_apply[0]) == 1
    assert kept_after_reads == kept_after_apply
    assert kept_after_write == ([], [])
    assert summary == KeptSummary() and summary.text == "kept: nothing"


async def test_kept_data_within_its_retention_stays_through_writes_and_discard_frees_it(fresh_db: str) -> None:
    db = _db(fresh_db, kept_retention_days=7)
    try:
        await apply_migration(db, "target", "base", sql=BASE, version="1")
        await apply_migration(db, "target", "drop email", sql=DROP_EMAIL, version="2")
        await apply_migration(db, "target", "more", sql="CREATE TABLE other (id int PRIMARY KEY);", version="3")
        kept = await _kept_state(fresh_db)
        until = (await kept_data_summary(db, "target")).until
        discarded = await discard_kept_data(db, "target")
    finally:
        await db.close()
    assert len(kept[0]) == 1
    assert until is not None and timedelta(days=6) < until - datetime.now(UTC) <= timedelta(days=7)
    assert discarded.discarded == 1
    assert await _kept_state(fresh_db) == ([], [])


def test_the_retention_is_configured_per_environment(tmp_path: Path) -> None:
    config = tmp_path / "pgshift.toml"
    config.write_text(
        '[environments.local]\nurl = "postgresql://u@h/db"\nkept_retention_days = 7\nkeep_snapshots = 5\n'
        '[environments.production]\nurl = "postgresql://u@h/db2"\n'
    )
    envs = {e.name: e for e in load_environments(tmp_path, environ={})}
    assert (envs["local"].kept_retention_days, envs["local"].keep_snapshots) == (7, 5)
    assert (envs["production"].kept_retention_days, envs["production"].keep_snapshots) == (30, 20)
    config.write_text('[environments.local]\nurl = "postgresql://u@h/db"\nkeep_snapshots = 0\n')
    with pytest.raises(ConfigError, match="keep_snapshots must be a whole number"):
        load_environments(tmp_path, environ={})


async def test_the_approval_prompt_says_how_much_is_kept_and_until_when(fresh_db: str, tmp_path: Path) -> None:
    from support_apply import run_sql

    from pgshift.tools.approval import ApprovalStore

    await run_sql(fresh_db, BASE)
    db = Databases([Environment(name="target", url=fresh_db, protected=True, kept_retention_days=10)])
    store = ApprovalStore(tmp_path / "approvals")
    try:
        asked = await apply_migration(db, "target", "drop email", sql=DROP_EMAIL, approvals=store)
    finally:
        await db.close()
    assert asked.status == "confirmation_required" and asked.approval_id is not None
    until = f"{datetime.now(UTC) + timedelta(days=10):%Y-%m-%d}"
    request = store.load(asked.approval_id)
    assert any("kept for undo" in h and f"until {until}" in h for h in request.hazards)
    assert f"until {until}" in asked.message


async def test_a_rollback_restores_kept_data_then_applies_the_retention_as_a_write(db18: str, pg18: object) -> None:
    from pgshift.tools.undo.rollback import rollback

    db = _db(db18)
    try:
        await apply_migration(db, "target", "base", sql=BASE, version="1")
        await apply_migration(db, "target", "drop email", sql=DROP_EMAIL, version="2")
    finally:
        await db.close()
    kept_before = await _kept_state(db18)
    db = _db(db18, kept_retention_days=0)  # reconfigured: nothing is kept past the next write
    try:
        await rollback(db, "target", migration="2", shadow=pg18)  # type: ignore[arg-type]
    finally:
        await db.close()
    conn = await asyncpg.connect(db18)
    try:
        emails = [r[0] for r in await conn.fetch("SELECT email FROM person ORDER BY id")]
    finally:
        await conn.close()
    assert len(kept_before[0]) == 1
    assert emails == ["ann@example.com", "bob@example.com"]  # restored first
    assert await _kept_state(db18) == ([], [])  # then expired by the rollback's write
