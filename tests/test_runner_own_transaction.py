"""issue 17: migrations that manage their own transaction run as written.

A file may open its own transaction with characteristics (`BEGIN; SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;
SET LOCAL statement_timeout = 0; ...`, as langfuse's last Prisma migration does), set session defaults, or COMMIT
partway. Each case is judged on our own connection: what the file's statements saw (recorded by the file itself
into a table: `current_setting('transaction_isolation')`, the transaction id), and which transaction wrote the
history rows (their `xmin`).
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from support_apply import prisma_folder, target

from pgshift.tools.apply import apply_migration
from pgshift.tools.deploy import deploy
from pgshift.tools.errors import ConfigError
from pgshift.tools.ledger import LEDGER, SUPABASE, prisma_table
from pgshift.tools.migrations.check import check_migration
from pgshift.tools.migrations.steps import plan_steps, split_statements

INIT = """CREATE TABLE "traces" (id text PRIMARY KEY, name text);
INSERT INTO "traces" VALUES ('t1', 'one'), ('t2', 'two');
CREATE TABLE seen (step text, isolation text, read_only text, timeout text, search_path text, xid bigint);
"""
SEEN = (
    "INSERT INTO seen SELECT '{step}', current_setting('transaction_isolation'), "
    "current_setting('transaction_read_only'), current_setting('statement_timeout'), current_setting('search_path'), "
    "txid_current() % 4294967296;\n"
)

# The shape of langfuse's last migration (its chain is not vendored here): its own BEGIN, the isolation level and a
# local setting first, then schema changes and a backfill.
LANGFUSE_STYLE = (
    "-- Backfill environments\nBEGIN;\nSET TRANSACTION ISOLATION LEVEL REPEATABLE READ;\n"
    "SET LOCAL statement_timeout = 0;\n"
    'ALTER TABLE "traces" ADD COLUMN "environment" TEXT NOT NULL DEFAULT \'default\';\n'
    'CREATE INDEX "traces_environment_idx" ON "traces" ("environment");\n'
    "UPDATE \"traces\" SET \"environment\" = 'production' WHERE name = 'one';\n"
    + SEEN.format(step="langfuse")
    + "COMMIT;\n"
)


async def _seen(conn: asyncpg.Connection) -> dict[str, asyncpg.Record]:
    return {r["step"]: r for r in await conn.fetch("SELECT * FROM seen")}


async def _history_xmins(conn: asyncpg.Connection, version: str) -> list[set[int]]:
    """The transaction ids that wrote `version`'s applied rows in our ledger, Supabase's table and Prisma's."""
    queries = (
        f"SELECT xmin::text::bigint FROM {LEDGER} WHERE version = $1 AND outcome = 'applied'",
        f"SELECT xmin::text::bigint FROM {SUPABASE} WHERE version = $1",
        f"SELECT xmin::text::bigint FROM {prisma_table()} "
        "WHERE migration_name LIKE $1 || '\\_%' AND finished_at IS NOT NULL",
    )
    return [{int(r[0]) for r in await conn.fetch(q, version)} for q in queries]


async def test_a_langfuse_style_migration_runs_with_its_isolation_and_is_recorded_in_its_own_transaction(
    fresh_db: str, tmp_path: Path
) -> None:
    folder = prisma_folder(tmp_path, {"20240101000000_init": INIT, "20240102000000_environments": LANGFUSE_STYLE})
    db = target(fresh_db)
    try:
        result = await deploy(db, "target", str(folder))
    finally:
        await db.close()
    assert result.status == "deployed", result.message
    conn = await asyncpg.connect(fresh_db)
    try:
        seen = (await _seen(conn))["langfuse"]
        assert (seen["isolation"], seen["timeout"]) == ("repeatable read", "0")
        # The history rows of all three tables were written by the file's own transaction.
        assert await _history_xmins(conn, "20240102000000") == [{seen["xid"]}] * 3
        assert await conn.fetchval("SELECT environment FROM traces WHERE id = 't1'") == "production"
    finally:
        await conn.close()


async def test_the_checks_dry_run_accepts_a_file_that_sets_its_transaction(db18: str) -> None:
    db = target(db18)
    try:
        await apply_migration(db, "target", "init", sql=INIT, version="1")
        check = await check_migration(db, "target", sql=LANGFUSE_STYLE)
    finally:
        await db.close()
    assert check.dry_run is not None and check.dry_run.failure is None, check.summary
    assert not check.blockers


async def test_a_file_committing_partway_runs_each_transaction_as_written_and_records_with_the_last(
    fresh_db: str, tmp_path: Path
) -> None:
    partway = (
        "BEGIN;\nCREATE TABLE a (id int);\n"
        + SEEN.format(step="first")
        + "COMMIT;\nBEGIN ISOLATION LEVEL SERIALIZABLE;\nCREATE TABLE b (id int);\n"
        + SEEN.format(step="second")
        + "COMMIT;\n"
    )
    folder = prisma_folder(tmp_path, {"20240101000000_init": INIT, "20240102000000_partway": partway})
    db = target(fresh_db)
    try:
        result = await deploy(db, "target", str(folder))
    finally:
        await db.close()
    assert result.status == "deployed", result.message
    assert result.applied[1].mode == "stepwise"
    conn = await asyncpg.connect(fresh_db)
    try:
        seen = await _seen(conn)
        assert seen["first"]["isolation"] == "read committed"
        assert seen["second"]["isolation"] == "serializable"
        assert seen["first"]["xid"] != seen["second"]["xid"]
        assert await _history_xmins(conn, "20240102000000") == [{seen["second"]["xid"]}] * 3
    finally:
        await conn.close()


async def test_a_failure_in_the_second_transaction_leaves_the_first_committed_and_nothing_recorded(
    fresh_db: str, tmp_path: Path
) -> None:
    partway = (
        "BEGIN;\nCREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\nCOMMIT;\n"
        "BEGIN;\nCREATE TABLE b (id nosuchtype);\nCOMMIT;\n"
    )
    folder = prisma_folder(tmp_path, {"20240101000000_init": INIT, "20240102000000_partway": partway})
    db = target(fresh_db)
    try:
        result = await deploy(db, "target", str(folder))
    finally:
        await db.close()
    assert result.status == "failed" and result.failed == "20240102000000_partway"
    error = result.error or ""
    assert "the transaction of lines 2-3 (statements 1, 2) committed" in error
    assert "the transaction of line 6 (statement 3) was rolled back" in error
    assert "NOT recorded as applied" in error
    conn = await asyncpg.connect(fresh_db)
    try:
        assert await conn.fetchval("SELECT count(*) FROM a") == 1
        assert await conn.fetchval("SELECT to_regclass('b')") is None
        assert (
            await conn.fetchval(
                f"SELECT count(*) FROM {LEDGER} WHERE version = '20240102000000' AND outcome = 'applied'"
            )
            == 0
        )
        assert await conn.fetchval(f"SELECT count(*) FROM {SUPABASE} WHERE version = '20240102000000'") == 0
        # Prisma's own failed state: a row neither finished nor rolled back (`prisma migrate status` shows it failed).
        rows = await conn.fetch(
            f"SELECT finished_at, rolled_back_at FROM {prisma_table()} WHERE migration_name = '20240102000000_partway'"
        )
        assert [(r[0], r[1]) for r in rows] == [(None, None)]
    finally:
        await conn.close()


async def test_session_characteristics_and_settings_last_for_their_migration_only(
    fresh_db: str, tmp_path: Path
) -> None:
    first = (
        "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE;\n"
        "SET search_path TO elsewhere, public;\n"
        "SET statement_timeout = 0;\nCREATE SCHEMA elsewhere;\n" + SEEN.format(step="first")
    )
    second = "CREATE TABLE lands_in_public (id int);\n" + SEEN.format(step="second")
    folder = prisma_folder(
        tmp_path, {"20240101000000_init": INIT, "20240102000000_session": first, "20240103000000_next": second}
    )
    db = target(fresh_db)
    try:
        result = await deploy(db, "target", str(folder))
    finally:
        await db.close()
    assert result.status == "deployed", result.message
    conn = await asyncpg.connect(fresh_db)
    try:
        seen = await _seen(conn)
        assert seen["first"]["isolation"] == "serializable"
        assert seen["first"]["timeout"] == "0"
        assert seen["second"]["isolation"] == "read committed"
        assert seen["second"]["timeout"] != "0"  # pgshift's statement_timeout is back
        assert seen["second"]["search_path"] == '"$user", public'
        assert await conn.fetchval("SELECT to_regclass('public.lands_in_public')") is not None
    finally:
        await conn.close()


async def test_a_read_only_transaction_runs_read_only_and_is_still_recorded(db18: str) -> None:
    script = "BEGIN;\nSET TRANSACTION READ ONLY;\nSELECT count(*) FROM pg_class;\nCOMMIT;\n"
    db = target(db18)
    try:
        result = await apply_migration(db, "target", "read_only", sql=script, version="1")
    finally:
        await db.close()
    assert result.status == "applied", result.message
    assert "READ ONLY" in result.message
    conn = await asyncpg.connect(db18)
    try:
        assert await conn.fetchval(f"SELECT count(*) FROM {SUPABASE} WHERE version = '1'") == 1
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("START TRANSACTION ISOLATION LEVEL REPEATABLE READ;\nCREATE TABLE t (id int);\nCOMMIT;", ["repeatable_read"]),
        ("BEGIN ISOLATION LEVEL SERIALIZABLE;\nCREATE TABLE t (id int);\nCOMMIT;", ["serializable"]),
        ("BEGIN;\nCREATE TABLE t (id int);\nSET TRANSACTION ISOLATION LEVEL SERIALIZABLE;\nCOMMIT;", ["serializable"]),
        ("SET transaction_isolation = 'repeatable read';\nCREATE TABLE t (id int);", ["repeatable_read"]),
        ("CREATE TABLE t (id int);\nCREATE TABLE u (id int);", [None]),
        (
            "BEGIN;\nSET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE;\n"
            "CREATE TABLE t (id int);\n"
            "COMMIT;\nCREATE TABLE u (id int);",
            [None, "serializable"],
        ),
        (
            "CREATE TABLE t (id int);\nSET default_transaction_isolation = 'serializable';\nCREATE TABLE u (id int);",
            [None, "serializable"],
        ),
        (
            "BEGIN ISOLATION LEVEL REPEATABLE READ;\nCREATE TABLE t (id int);\nCOMMIT AND CHAIN;\n"
            "CREATE TABLE u (id int);\n"
            "COMMIT;",
            ["repeatable_read", "repeatable_read"],
        ),
    ],
)
def test_each_transaction_takes_the_characteristics_its_script_gives_it(
    script: str, expected: list[str | None]
) -> None:
    steps = plan_steps(split_statements(script))
    assert [s.characteristics.isolation for s in steps] == expected
    assert all(s.tx_control is None for step in steps for s in step.statements)  # none of them is sent


def test_a_migration_importing_a_snapshot_or_rolling_back_is_refused_before_running() -> None:
    with pytest.raises(ConfigError, match="SET TRANSACTION SNAPSHOT"):
        plan_steps(
            split_statements("BEGIN ISOLATION LEVEL REPEATABLE READ;\nSET TRANSACTION SNAPSHOT '00000003-1';\nCOMMIT;")
        )
    with pytest.raises(ConfigError, match="rolls back"):
        plan_steps(split_statements("BEGIN;\nCREATE TABLE t (id int);\nROLLBACK;"))


async def test_a_deploy_whose_later_migration_rolls_back_runs_nothing(db18: str, tmp_path: Path) -> None:
    rolls_back = "BEGIN;\nCREATE TABLE discarded (id int);\nROLLBACK;\n"
    folder = prisma_folder(tmp_path, {"20240101000000_init": INIT, "20240102000000_rolls_back": rolls_back})
    db = target(db18)
    try:
        with pytest.raises(ConfigError, match="20240102000000_rolls_back: line 3"):
            await deploy(db, "target", str(folder))
    finally:
        await db.close()
    conn = await asyncpg.connect(db18)
    try:
        assert await conn.fetchval("SELECT to_regclass('traces')") is None
    finally:
        await conn.close()
