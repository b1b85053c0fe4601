"""Rollback of renames (undone by renaming back) and of NOT NULL columns with rows written since (issue 10)."""

from __future__ import annotations

from typing import Any

import asyncpg
from support_apply import run_sql, target

from pgshift.tools.apply import apply_migration
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.undo.renames import Rename, renames_to_undo
from pgshift.tools.undo.rollback import RollbackResult, rollback

BASE = """
CREATE TABLE board (id int PRIMARY KEY, slug varchar(100) NOT NULL, title text);
CREATE INDEX board_slug_idx ON board (slug);
INSERT INTO board VALUES (1, 'one', 'a'), (2, 'two', NULL);
"""


async def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()


async def _migrate_write_and_roll_back(
    url: str, shadow: LocalPostgres, base: str, change: str, written_since: str
) -> RollbackResult:
    db = target(url)
    try:
        await apply_migration(db, "target", "base", sql=base, version="1")
        await apply_migration(db, "target", "change", sql=change, version="2")
        await run_sql(url, written_since)
        return await rollback(db, "target", migration="2", shadow=shadow, accept_data_loss=True)
    finally:
        await db.close()


def test_renames_are_read_from_the_parse_tree_and_undone_newest_first() -> None:
    first = ['ALTER TABLE "event_data" RENAME COLUMN "event_key" TO "data_key"', "CREATE TABLE x (id int)"]
    second = ["ALTER TABLE s.t RENAME TO u", "ALTER INDEX i RENAME TO j", "ALTER TABLE u RENAME CONSTRAINT c TO d"]
    assert renames_to_undo([first, second]) == [
        Rename("constraint", None, "c", "d", "u"),
        Rename("index", None, "i", "j"),
        Rename("table", "s", "t", "u"),
        Rename("column", None, "event_key", "data_key", "event_data"),
    ]
    assert Rename("column", None, "event_key", "data_key", "event_data").back().sql == (
        "ALTER TABLE event_data RENAME COLUMN data_key TO event_key"
    )


async def test_rollback_of_a_renamed_not_null_column_and_table_keeps_every_rows_value_written_since(
    db18: str, pg18: LocalPostgres
) -> None:
    change = """
    ALTER TABLE board RENAME COLUMN slug TO handle;
    ALTER TABLE board RENAME TO panel;
    ALTER INDEX board_slug_idx RENAME TO panel_handle_idx;
    """
    since = "INSERT INTO panel VALUES (3, 'three', 'c'); UPDATE panel SET handle = 'uno' WHERE id = 1"
    result = await _migrate_write_and_roll_back(db18, pg18, BASE, change, since)
    assert result.status == "rolled_back", result.message
    rows = await _rows(db18, "SELECT id, slug, title FROM board ORDER BY id")
    assert rows == [(1, "uno", "a"), (2, "two", None), (3, "three", "c")]
    index = await _rows(db18, "SELECT indexdef FROM pg_indexes WHERE indexname = 'board_slug_idx'")
    assert index == [("CREATE INDEX board_slug_idx ON public.board USING btree (slug)",)]
    statements = [s.sql for s in result.plan.data.statements]
    assert "ALTER TABLE board RENAME COLUMN handle TO slug" in statements
    assert not any("DROP COLUMN" in s or "ADD COLUMN" in s for s in statements)


async def test_a_dropped_not_null_column_with_rows_written_since_blocks_the_rollback_naming_them(
    db18: str, pg18: LocalPostgres
) -> None:
    since = "INSERT INTO board VALUES (3, 'c'), (4, 'd'), (5, NULL)"
    result = await _migrate_write_and_roll_back(db18, pg18, BASE, "ALTER TABLE board DROP COLUMN slug;", since)
    assert result.status == "blocked", result.message
    blockers = result.plan.data.blockers
    assert len(blockers) == 1 and blockers[0].startswith("public.board.slug: 3 row(s) written since the snapshot")
    columns = await _rows(db18, "SELECT column_name FROM information_schema.columns WHERE table_name = 'board'")
    assert sorted(c[0] for c in columns) == ["id", "title"]
    assert await _rows(db18, "SELECT count(*) FROM board") == [(5,)]
    outcomes = await _rows(db18, "SELECT outcome FROM pgshift.migrations WHERE version = '2'")
    assert outcomes == [("applied",)]


async def test_a_dropped_not_null_column_with_a_default_fills_rows_written_since_with_it(
    db18: str, pg18: LocalPostgres
) -> None:
    base = BASE.replace("NOT NULL", "NOT NULL DEFAULT 'none'")
    result = await _migrate_write_and_roll_back(
        db18, pg18, base, "ALTER TABLE board DROP COLUMN slug;", "INSERT INTO board VALUES (3, 'c')"
    )
    assert result.status == "rolled_back", result.message
    assert await _rows(db18, "SELECT id, slug FROM board ORDER BY id") == [(1, "one"), (2, "two"), (3, "none")]
