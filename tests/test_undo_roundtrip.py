"""Undo round trips over real chains (issue 10, Proof): for every migration k, apply k over rows, fill every table,
roll k back, and the schema equals a raw psql replay up to k-1 by `pg_dump`, the rows from before k are intact, the
three histories say what they said before k, and k applies again. umami and basejump on PostgreSQL 15 (they need
pgcrypto, which the embedded 18 lacks), the first hoppscotch migrations on 18, the three walked side by side."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import asyncpg
import pytest
from conftest import corpus_root
from support_apply import new_database, remove_database, run_sql, target
from support_rows import (
    ChainReport,
    RowSets,
    fill_rows,
    judge_apart_from_histories,
    lost_rows,
    read_rows,
    walk_chain,
    without_histories,
)
from test_deploy import psql_replay

from pgshift.tools.apply import apply_migration
from pgshift.tools.errors import DatabaseError
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.migrations.folder import read_migrations
from pgshift.tools.undo.rollback import rollback

UMAMI = corpus_root() / "prisma" / "umami" / "migrations"
BASEJUMP = corpus_root() / "supabase" / "basejump" / "supabase" / "migrations"
HOPPSCOTCH = corpus_root() / "prisma" / "hoppscotch" / "migrations"
HOPPSCOTCH_PREFIX = 4  # on the embedded 18; the whole chain (21, ~30 s) is bench/undo_roundtrip.py's


# Round trips that do not complete, by design: umami 19 drops a NOT NULL column without a default; the rows the
# filler wrote after it have no value for that column, so the rollback is blocked, naming the table, the column and
# the row count, and changes nothing. (02 and 06 rename NOT NULL columns: renamed back, every row keeps its value.)
# Update this set when tools/undo changes.
KNOWN_FAILURES = {"umami": {"19"}}


def _summary(report: ChainReport) -> str:
    return "; ".join(f"{t.version}: {t.failure}" for t in report.failures) or report.stopped


def _assert_round_trips_held(report: ChainReport, directory: Path) -> None:
    assert report.stopped == "", report.stopped
    assert report.final_difference == "", report.final_difference
    assert {t.version for t in report.failures} == KNOWN_FAILURES.get(report.chain, set()), _summary(report)
    expected = read_migrations(directory).migrations[: report.migrations]
    assert [t.version for t in report.trips] == [m.version for m in expected]
    assert report.skipped_tables == {}, report.skipped_tables  # the filler wrote rows into every table
    assert report.filled_rows >= 2 * len(report.trips)


@pytest.mark.timeout(1200)  # about 130 s on a quiet 2-core machine, 300+ s loaded: keep 3x headroom over that
async def test_every_umami_basejump_and_early_hoppscotch_migration_rolls_back_to_k_minus_1_with_rows_intact(
    pg15: LocalPostgres, pg18: LocalPostgres
) -> None:
    umami, basejump, hoppscotch = await asyncio.gather(  # side by side: the three walks wait on different servers
        walk_chain("umami", UMAMI, pg15, pg15, supabase=False),
        walk_chain("basejump", BASEJUMP, pg15, pg15, supabase=True),
        walk_chain("hoppscotch", HOPPSCOTCH, pg18, pg18, supabase=False, limit=HOPPSCOTCH_PREFIX),
    )
    _assert_round_trips_held(umami, UMAMI)
    _assert_round_trips_held(basejump, BASEJUMP)
    _assert_round_trips_held(hoppscotch, HOPPSCOTCH)
    assert len(hoppscotch.trips) == HOPPSCOTCH_PREFIX


async def test_the_row_filler_fills_every_table_of_a_chain_in_foreign_key_order_and_again_with_new_values(
    pg15: LocalPostgres,
) -> None:
    url = await new_database(pg15, "fill")
    try:
        await psql_replay(pg15.bin_dir, url, [m.path or "" for m in read_migrations(UMAMI).migrations])
        first = await fill_rows(url, seed=1)
        once = await read_rows(url)
        second = await fill_rows(url, seed=2)
        twice = await read_rows(url)
    finally:
        await remove_database(pg15, url)
    assert first.skipped == {} and second.skipped == {}
    assert len(first.rows) == 17 and all(n >= 2 for n in first.rows.values())
    assert lost_rows(once, twice) == []  # the second fill only adds rows
    assert all(sum(twice[k][1].values()) > sum(once[k][1].values()) for k in once)
    assert lost_rows(twice, once) != []


async def test_the_judge_apart_from_histories_sees_a_column_missing_and_ignores_our_ledger(
    pg15: LocalPostgres,
) -> None:
    a, b = await new_database(pg15, "judge"), await new_database(pg15, "judge")
    try:
        table = "CREATE TABLE t (id int PRIMARY KEY, note text)"
        await run_sql(a, table + "; CREATE SCHEMA pgshift; CREATE TABLE pgshift.kept_1 (x int)")
        await run_sql(b, table)
        equal = await judge_apart_from_histories(a, b, pg15.bin_dir)
        await run_sql(b, "ALTER TABLE t DROP COLUMN note")
        differs = await judge_apart_from_histories(a, b, pg15.bin_dir)
    finally:
        await remove_database(pg15, a)
        await remove_database(pg15, b)
    assert equal == ""
    assert "note text" in differs


# Found by the round trips (umami 02, 06, 09, 19): minimal cases, failing until tools/undo handles them.

NOT_NULL_BASE = """
CREATE TABLE board (id int PRIMARY KEY, slug varchar(100) NOT NULL, title text);
INSERT INTO board VALUES (1, 'one', 'a'), (2, 'two', NULL);
"""


async def _rows_after_rollback(
    url: str, shadow: LocalPostgres, base: str, change: str, query: str
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], str]:
    db = target(url)
    try:
        await apply_migration(db, "target", "base", sql=base, version="1")
        before = await fetch(url, query)
        await apply_migration(db, "target", "change", sql=change, version="2")
        # accept_data_loss: the plan drops the new column (the renamed data, kept under the old name by the fix)
        result = await rollback(db, "target", migration="2", shadow=shadow, accept_data_loss=True)
    finally:
        await db.close()
    return before, await fetch(url, query) if result.status == "rolled_back" else [], result.status


async def fetch(url: str, query: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()


async def test_rollback_restores_a_dropped_not_null_column_with_its_values(db18: str, pg18: LocalPostgres) -> None:
    query = "SELECT id, slug FROM board ORDER BY id"
    before, after, status = await _rows_after_rollback(
        db18, pg18, NOT_NULL_BASE, "ALTER TABLE board DROP COLUMN slug;", query
    )
    assert status == "rolled_back"
    assert after == before


async def test_rollback_of_a_column_rename_gives_the_values_back_under_the_old_name(
    db18: str, pg18: LocalPostgres
) -> None:
    query = "SELECT id, title FROM board ORDER BY id"
    before, after, status = await _rows_after_rollback(
        db18, pg18, NOT_NULL_BASE, "ALTER TABLE board RENAME COLUMN title TO heading;", query
    )
    assert status == "rolled_back"
    assert after == before


def test_rows_of_a_table_the_migration_updates_may_change_but_not_go_missing() -> None:
    before: RowSets = {"public.t": (("id", "n"), Counter({("1", "a"): 1, ("2", "b"): 1}))}
    changed: RowSets = {"public.t": (("n", "id"), Counter({("z", "1"): 1, ("b", "2"): 1}))}
    fewer: RowSets = {"public.t": (("id", "n"), Counter({("2", "b"): 1}))}
    assert lost_rows(before, changed) == ["public.t: 1 row(s) lost or changed, e.g. ('1', 'a')"]
    assert lost_rows(before, changed, updated={"public.t"}) == []
    assert lost_rows(before, fewer, updated={"public.t"}) != []
    assert lost_rows(before, {}) == ["table public.t is gone"]


def test_the_history_entries_of_a_dump_are_left_out_and_the_next_entry_keeps_its_header() -> None:
    dump = (
        "--\n-- Name: kept_1; Type: TABLE; Schema: pgshift; Owner: nobody\n--\n\nCREATE TABLE pgshift.k (x int);\n\n"
        "--\n-- Name: t; Type: TABLE; Schema: public; Owner: nobody\n--\n\nCREATE TABLE public.t (id int);\n\n"
        "--\n-- Name: _prisma_migrations; Type: TABLE; Schema: public; Owner: nobody\n--\n\nCREATE TABLE x ();\n"
    )
    kept = without_histories(dump)
    assert "pgshift" not in kept and "_prisma_migrations" not in kept
    assert kept.startswith("--\n-- Name: t; Type: TABLE; Schema: public;") and "CREATE TABLE public.t" in kept


async def test_a_rollback_whose_shadow_lacks_an_extension_says_which_one(
    pg15: LocalPostgres, pg18: LocalPostgres
) -> None:
    url = await new_database(pg15, "ext")
    db = target(url)
    try:  # pgcrypto: on every Supabase database; the embedded 18 (the default shadow) has none
        await apply_migration(
            db, "target", "base", sql="CREATE EXTENSION pgcrypto; CREATE TABLE t (id int)", version="1"
        )
        await apply_migration(db, "target", "more", sql="ALTER TABLE t ADD COLUMN note text", version="2")
        with pytest.raises(DatabaseError) as refused:
            await rollback(db, "target", migration="2", shadow=pg18)
    finally:
        await db.close()
        await remove_database(pg15, url)
    assert "pgcrypto" in str(refused.value)
