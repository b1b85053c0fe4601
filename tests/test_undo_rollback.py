"""rollback on real PostgreSQL: kept data comes back, histories agree, and re-applying works."""

from __future__ import annotations

from typing import Any

import asyncpg
from support_apply import run_sql, target

from pgshift.tools.apply import apply_migration
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.undo.rollback import rollback
from pgshift.tools.undo.snapshots import snapshot_schema

BASE = """
CREATE TYPE mood AS ENUM ('happy', 'sad', 'meh');
CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL, note text, age bigint, feeling mood);
CREATE TABLE pet (id int PRIMARY KEY, owner int REFERENCES person (id), name text);
INSERT INTO person (name, note, age, feeling) VALUES ('ann', 'likes tea', 30, 'happy'), ('bob', NULL, 70000, 'meh'),
    ('cy', 'n/a', 5, 'sad');
INSERT INTO pet VALUES (1, 1, 'rex'), (2, 3, 'tom');
"""

LOSSY = """
ALTER TABLE person DROP COLUMN note;
DROP TABLE pet;
ALTER TABLE person ALTER COLUMN age TYPE smallint USING least(age, 32767)::smallint;
"""


async def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()


async def _histories(url: str, version: str) -> tuple[list[str], int]:
    outcomes = await _rows(url, f"SELECT outcome FROM pgshift.migrations WHERE version = '{version}' ORDER BY id")
    supabase = await _rows(url, f"SELECT 1 FROM supabase_migrations.schema_migrations WHERE version = '{version}'")
    return [o[0] for o in outcomes], len(supabase)


async def test_rollback_restores_a_dropped_column_a_dropped_table_and_a_narrowed_type(
    db18: str, pg18: LocalPostgres
) -> None:
    db = target(db18)
    try:
        await apply_migration(db, "target", "base", sql=BASE, version="1")
        before = await _rows(db18, "SELECT id, name, note, age FROM person ORDER BY id")
        pets = await _rows(db18, "SELECT * FROM pet ORDER BY id")
        applied = await apply_migration(
            db,
            "target",
            "lossy",
            sql=LOSSY,
            version="2",
        )
        assert applied.snapshot_id is not None
        assert [(k.kind, k.rows) for k in applied.kept_data] == [
            ("drop_column", 3),
            ("drop_table", 2),
            ("change_type", 3),
        ]
        result = await rollback(db, "target", migration="2", shadow=pg18)
        assert result.status == "rolled_back", result
        assert await _rows(db18, "SELECT id, name, note, age FROM person ORDER BY id") == before
        assert await _rows(db18, "SELECT * FROM pet ORDER BY id") == pets
        assert await _histories(db18, "2") == (["applied", "rolled_back"], 0)
        again = await apply_migration(
            db,
            "target",
            "lossy",
            sql=LOSSY,
            version="2",
        )
        assert again.status == "applied"
    finally:
        await db.close()


ENUM_REMOVAL = """
ALTER TYPE mood RENAME TO mood_old;
CREATE TYPE mood AS ENUM ('happy', 'sad');
ALTER TABLE person ALTER COLUMN feeling TYPE mood
    USING (CASE WHEN feeling::text = 'meh' THEN NULL ELSE feeling::text END)::mood;
DROP TYPE mood_old;
"""


# The ledger as pgshift created it before rollbacks were recorded (its outcome check knows two values).
OLD_LEDGER = """
CREATE SCHEMA pgshift;
CREATE TABLE pgshift.migrations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, version text NOT NULL, name text NOT NULL,
    source text NOT NULL, checksum text NOT NULL, statements text[] NOT NULL,
    applied_by text NOT NULL DEFAULT current_user, client text NOT NULL, started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT clock_timestamp(), duration_ms integer NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('applied', 'failed')), error text
);
"""


async def test_rollback_gives_back_rows_their_enum_value_a_migration_removed(db18: str, pg18: LocalPostgres) -> None:
    await run_sql(db18, OLD_LEDGER)
    db = target(db18)
    try:
        await apply_migration(db, "target", "base", sql=BASE, version="1")
        before = await _rows(db18, "SELECT id, feeling::text FROM person ORDER BY id")
        applied = await apply_migration(db, "target", "no meh", sql=ENUM_REMOVAL, version="2")
        assert [(k.kind, k.column_name) for k in applied.kept_data] == [("change_type", "feeling")]
        assert ("2", None) in await _rows(db18, "SELECT id::text, feeling::text FROM person")
        result = await rollback(db, "target", migration="2", shadow=pg18)
        assert result.status == "rolled_back", result
        assert await _rows(db18, "SELECT id, feeling::text FROM person ORDER BY id") == before
        labels = await _rows(db18, "SELECT enumlabel FROM pg_enum WHERE enumtypid = 'mood'::regtype ORDER BY 1")
        assert labels == [("happy",), ("meh",), ("sad",)]
        assert await _histories(db18, "2") == (["applied", "rolled_back"], 0)  # an older ledger learns the outcome
    finally:
        await db.close()


async def test_a_change_made_by_hand_is_rolled_back_to_a_snapshot_taken_on_request(
    db18: str, pg18: LocalPostgres
) -> None:
    await run_sql(db18, BASE)
    db = target(db18)
    try:
        taken = await snapshot_schema(db, "target", "before the hotfix")
        await run_sql(
            db18, "ALTER TABLE pet ADD COLUMN chip text; UPDATE pet SET chip = 'x'; CREATE INDEX ON pet (name);"
        )
        blocked = await rollback(db, "target", snapshot=taken.snapshot.data.id, shadow=pg18)
        done = await rollback(db, "target", snapshot=taken.snapshot.data.id, accept_data_loss=True, shadow=pg18)
    finally:
        await db.close()
    assert blocked.status == "blocked" and done.status == "rolled_back"
    assert done.reverted == []
    assert await _rows(db18, "SELECT count(*) FROM pg_indexes WHERE tablename = 'pet'") == [(1,)]
    assert await _rows(
        db18, "SELECT attname FROM pg_attribute WHERE attrelid = 'pet'::regclass AND attnum > 0 AND NOT attisdropped"
    ) == [
        ("id",),
        ("owner",),
        ("name",),
    ]
    recorded = await _rows(db18, "SELECT version, outcome, error FROM pgshift.migrations")
    assert recorded == [
        (f"snapshot-{taken.snapshot.data.id}", "rolled_back", f"rollback to snapshot {taken.snapshot.data.id}")
    ]
