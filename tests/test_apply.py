"""apply_migration on real PostgreSQL: history in three places, and every fault leaves the database as before."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from support_apply import WAITING_ON_LOCK, history_counts, prisma_folder, run_sql, snapshot, target, wait_until

from pgshift.tools.apply import Timeouts, apply_migration
from pgshift.tools.approval import ApprovalStore
from pgshift.tools.errors import ConfigError, DatabaseError, NotAllowed
from pgshift.tools.migrations.runner import APPLY_LOCK_KEY

BASE = 'CREATE TABLE "User" (id serial PRIMARY KEY, email text NOT NULL);\n'
ADD_NAME = 'ALTER TABLE "User" ADD COLUMN name text;\nCREATE INDEX "User_name_idx" ON "User" (name);\n'


async def _columns(url: str, table: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 ORDER BY attnum", table
        )
        return [r[0] for r in rows]
    finally:
        await conn.close()


async def test_a_prisma_migration_is_applied_and_recorded_in_all_three_histories(fresh_db: str, tmp_path: Path) -> None:
    folder = prisma_folder(tmp_path, {"20240101000000_init": BASE})
    db = target(fresh_db)
    try:
        result = await apply_migration(db, "target", "init", migration=str(folder / "20240101000000_init"))
    finally:
        await db.close()
    assert (result.status, result.version, result.name, result.mode) == (
        "applied",
        "20240101000000",
        "init",
        "single_transaction",
    )
    assert len(result.recorded_in) == 3
    assert await _columns(fresh_db, '"User"') == ["id", "email"]
    assert await history_counts(fresh_db) == (1, 1, 1)
    conn = await asyncpg.connect(fresh_db)
    try:
        prisma = await conn.fetchrow("SELECT migration_name, checksum FROM _prisma_migrations")
        supa = await conn.fetchrow("SELECT version, name, statements FROM supabase_migrations.schema_migrations")
    finally:
        await conn.close()
    assert tuple(prisma) == ("20240101000000_init", result.checksum)
    (statement,) = result.statements
    assert statement.original == BASE.strip().rstrip(";")
    assert statement.sql.startswith('CREATE TABLE IF NOT EXISTS "User"') and statement.rewrites
    assert tuple(supa) == ("20240101000000", "init", [BASE.strip().rstrip(";")])  # as written


async def test_without_rewrite_the_authors_text_runs_and_is_recorded(db18: str) -> None:
    db = target(db18)
    try:
        result = await apply_migration(db, "target", "init", sql=BASE, version="1", rewrite=False)
    finally:
        await db.close()
    (statement,) = result.statements
    assert (statement.sql, statement.original, statement.rewrites) == (BASE.strip().rstrip(";"), None, [])
    conn = await asyncpg.connect(db18)
    try:
        recorded = await conn.fetchval("SELECT statements FROM supabase_migrations.schema_migrations")
    finally:
        await conn.close()
    assert recorded == [BASE.strip().rstrip(";")]


async def test_applying_the_same_migration_twice_changes_nothing(db18: str) -> None:
    db = target(db18)
    try:
        first = await apply_migration(db, "target", "init", sql=BASE, version="1")
        before = await snapshot(db18)
        second = await apply_migration(db, "target", "init", sql=BASE, version="1")
    finally:
        await db.close()
    assert (first.status, second.status) == ("applied", "already_applied")
    assert await snapshot(db18) == before


async def test_a_migration_edited_after_it_was_applied_is_refused(db18: str) -> None:
    db = target(db18)
    try:
        await apply_migration(db, "target", "init", sql=BASE, version="1")
        before = await snapshot(db18)
        with pytest.raises(NotAllowed, match="edited after it was applied"):
            await apply_migration(db, "target", "init", sql=BASE + "-- changed\n", version="1")
    finally:
        await db.close()
    assert await snapshot(db18) == before


async def test_a_statement_failing_halfway_leaves_nothing_of_the_migration(fresh_db: str) -> None:
    db = target(fresh_db)
    try:
        await apply_migration(db, "target", "init", sql=BASE, version="1")
        before = await snapshot(fresh_db)
        script = ADD_NAME + 'INSERT INTO "User" (email) VALUES (NULL);\nCREATE TABLE never (id int);\n'
        with pytest.raises(DatabaseError) as info:
            await apply_migration(db, "target", "add_name", sql=script, version="2")
    finally:
        await db.close()
    message = str(info.value)
    assert info.value.sqlstate == "23502"
    assert "statement 3 of 4 (line 3" in message
    assert "nothing of this migration remains and the history tables are unchanged" in message
    assert await snapshot(fresh_db) == before


@pytest.mark.parametrize(
    "script",
    [
        pytest.param("CREATE TABLE a (id int;\n", id="unbalanced-parenthesis"),
        pytest.param("CREATE TABLE a (id int);\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1;\n", id="open-dollar"),
        pytest.param("CREATE TABLE a (id int);\nCREAT TABLE b (id int);\n", id="typo-in-verb"),
    ],
)
async def test_malformed_sql_is_refused_before_anything_runs(db18: str, script: str) -> None:
    db = target(db18)
    before = await snapshot(db18)
    try:
        with pytest.raises(ConfigError, match="malformed SQL"):
            await apply_migration(db, "target", "bad", sql=script, version="1")
    finally:
        await db.close()
    assert await snapshot(db18) == before


async def test_sql_the_server_rejects_is_rolled_back_with_the_statement_named(db18: str) -> None:
    db = target(db18)
    before = await snapshot(db18)
    try:
        with pytest.raises(DatabaseError) as info:
            await apply_migration(db, "target", "bad", sql="CREATE TABLE a (id int);\nCREATE TABLE b (id nosuchtype);")
    finally:
        await db.close()
    assert info.value.sqlstate == "42704"
    assert "statement 2 of 2 (line 2" in str(info.value)
    assert await snapshot(db18) == before


async def test_a_connection_killed_mid_apply_leaves_the_database_and_history_as_before(fresh_db: str) -> None:
    db = target(fresh_db)
    holder = await asyncpg.connect(fresh_db)
    try:
        await apply_migration(db, "target", "init", sql=BASE, version="1")
        before = await snapshot(fresh_db)
        # The migration's second statement waits on a lock we hold; then we terminate its session.
        await holder.execute('BEGIN; LOCK TABLE "User" IN ACCESS EXCLUSIVE MODE')
        task = asyncio.create_task(
            apply_migration(
                db,
                "target",
                "killed",
                sql='CREATE TABLE side (id int);\nALTER TABLE "User" ADD COLUMN killed int;\n',
                version="2",
                timeouts=Timeouts(lock_ms=60_000),
            )
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
    assert "nothing of this migration remains" in str(info.value)
    assert await snapshot(fresh_db) == before


async def test_a_second_apply_waits_for_the_first_and_then_runs(db18: str) -> None:
    db = target(db18)
    other = await asyncpg.connect(db18)
    try:
        await other.execute("SELECT pg_advisory_lock($1)", APPLY_LOCK_KEY)  # an apply in progress
        task = asyncio.create_task(apply_migration(db, "target", "init", sql=BASE, version="1"))
        await wait_until(other, WAITING_ON_LOCK)
        assert not task.done()
        await other.execute("SELECT pg_advisory_unlock($1)", APPLY_LOCK_KEY)
        result = await asyncio.wait_for(task, timeout=10)
    finally:
        await other.close()
        await db.close()
    assert result.status == "applied"


async def test_a_second_apply_gets_a_clear_busy_error_when_the_wait_runs_out(db18: str) -> None:
    db = target(db18)
    other = await asyncpg.connect(db18)
    before = await snapshot(db18)
    try:
        await other.execute("SELECT pg_advisory_lock($1)", APPLY_LOCK_KEY)
        pid = await other.fetchval("SELECT pg_backend_pid()")
        with pytest.raises(DatabaseError) as info:
            await apply_migration(db, "target", "init", sql=BASE, version="1", timeouts=Timeouts(busy_ms=100))
    finally:
        await other.close()
        await db.close()
    assert "another migration is being applied" in str(info.value)
    assert f"pid {pid}" in str(info.value)
    assert "Nothing was run" in str(info.value)
    assert await snapshot(db18) == before


async def test_an_extension_the_target_lacks_is_refused_before_any_statement_runs(fresh_db: str) -> None:
    db = target(fresh_db)
    before = await snapshot(fresh_db)
    script = "CREATE TABLE first (id int);\nCREATE EXTENSION IF NOT EXISTS http WITH SCHEMA public;\n"
    try:
        with pytest.raises(NotAllowed) as info:
            await apply_migration(db, "target", "needs_http", sql=script, version="1")
    finally:
        await db.close()
    assert "extension(s) http" in str(info.value)
    assert "Nothing was run" in str(info.value)
    assert await snapshot(fresh_db) == before


async def test_create_index_concurrently_runs_outside_a_transaction_and_is_recorded(fresh_db: str) -> None:
    db = target(fresh_db)
    script = BASE + 'CREATE INDEX CONCURRENTLY "User_email_idx" ON "User" (email);\nCREATE TABLE after (id int);\n'
    try:
        result = await apply_migration(db, "target", "cic", sql=script, version="1")
    finally:
        await db.close()
    assert (result.status, result.mode) == ("applied", "stepwise")
    assert [s.transactional for s in result.statements] == [True, False, True]
    assert await history_counts(fresh_db) == (1, 1, 0)
    conn = await asyncpg.connect(fresh_db)
    try:
        assert await conn.fetchval("SELECT indisvalid FROM pg_index WHERE indexrelid = '\"User_email_idx\"'::regclass")
    finally:
        await conn.close()


async def test_a_failure_after_a_concurrent_index_says_exactly_which_statements_ran(db18: str, tmp_path: Path) -> None:
    script = BASE + 'CREATE INDEX CONCURRENTLY "User_email_idx" ON "User" (email);\nSELECT 1 / 0;\n'
    folder = prisma_folder(tmp_path, {"20240101000000_cic": script})
    db = target(db18)
    try:
        with pytest.raises(DatabaseError) as info:
            await apply_migration(db, "target", "cic", migration=str(folder / "20240101000000_cic"))
    finally:
        await db.close()
    message = str(info.value)
    assert "statement 3 of 3" in message
    assert "Statements 1, 2 of 3 ran and stay committed" in message
    assert "recorded as failed" in message
    conn = await asyncpg.connect(db18)
    try:
        ledger_rows = await conn.fetch("SELECT outcome, cardinality(statements) FROM pgshift.migrations")
        prisma_rows = await conn.fetch("SELECT finished_at, logs FROM _prisma_migrations")
        supabase_rows = await conn.fetchval("SELECT count(*) FROM supabase_migrations.schema_migrations")
    finally:
        await conn.close()
    assert [tuple(r) for r in ledger_rows] == [("failed", 2)]
    assert prisma_rows[0]["finished_at"] is None and "statement 3 of 3" in prisma_rows[0]["logs"]
    assert supabase_rows == 0


async def test_the_scripts_own_begin_and_commit_are_honoured_as_psql_and_prisma_run_them(db18: str) -> None:
    # issue 17: each COMMIT ends a transaction (tests/test_runner_own_transaction.py has the details).
    db = target(db18)
    before = await snapshot(db18)
    script = "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\nBEGIN;\nCREATE TABLE b (id nosuchtype);\nCOMMIT;\n"
    try:
        with pytest.raises(DatabaseError, match="NOT recorded as applied"):
            await apply_migration(db, "target", "tx", sql=script, version="1")
        fixed = script.replace("nosuchtype", "int").replace("TABLE a", "TABLE IF NOT EXISTS a")
        result = await apply_migration(db, "target", "tx", sql=fixed, version="1")
    finally:
        await db.close()
    assert (result.status, result.mode, len(result.statements)) == ("applied", "stepwise", 2)
    assert before != await snapshot(db18)


async def test_a_read_only_environment_refuses_to_apply(db18: str) -> None:
    db = target(db18, read_only=True)
    try:
        with pytest.raises(NotAllowed, match="read_only"):
            await apply_migration(db, "target", "init", sql=BASE)
    finally:
        await db.close()


async def test_a_protected_environment_applies_only_what_a_person_approved_for_these_statements(
    db18: str, tmp_path: Path
) -> None:
    db = target(db18, protected=True)
    approvals = ApprovalStore(tmp_path)
    before = await snapshot(db18)
    try:
        plan = await apply_migration(db, "target", "init", sql=BASE, version="1", approvals=approvals)
        assert plan.status == "confirmation_required" and plan.approval_id
        assert plan.target_fingerprint and [s.original for s in plan.statements] == [BASE.strip().rstrip(";")]
        with pytest.raises(NotAllowed, match="not approved yet"):
            await apply_migration(
                db, "target", "init", sql=BASE, version="1", approval_id=plan.approval_id, approvals=approvals
            )
        assert await snapshot(db18) == before
        approvals.approve(plan.approval_id)
        with pytest.raises(NotAllowed, match="does not match"):
            await apply_migration(
                db,
                "target",
                "init",
                sql=BASE.replace("email", "mail"),
                version="1",
                approval_id=plan.approval_id,
                approvals=approvals,
            )
        assert await snapshot(db18) == before
        with pytest.raises(NotAllowed, match="does not exist"):  # the mismatched call used the approval up
            await apply_migration(
                db, "target", "init", sql=BASE, version="1", approval_id=plan.approval_id, approvals=approvals
            )
        again = await apply_migration(db, "target", "init", sql=BASE, version="1", approvals=approvals)
        assert again.approval_id is not None
        approvals.approve(again.approval_id)
        done = await apply_migration(
            db, "target", "init", sql=BASE, version="1", approval_id=again.approval_id, approvals=approvals
        )
    finally:
        await db.close()
    assert done.status == "applied"
    assert await history_counts(db18) == (1, 1, 0)


async def test_an_approval_is_refused_when_the_target_changed_after_the_person_approved(
    db18: str, tmp_path: Path
) -> None:
    db = target(db18, protected=True)
    approvals = ApprovalStore(tmp_path)
    try:
        plan = await apply_migration(db, "target", "init", sql=BASE, version="1", approvals=approvals)
        assert plan.approval_id is not None
        approvals.approve(plan.approval_id)
        await run_sql(db18, "CREATE TABLE drifted (id int)")
        before = await snapshot(db18)
        with pytest.raises(NotAllowed, match="target changed"):
            await apply_migration(
                db,
                "target",
                "init",
                sql=BASE,
                version="1",
                approval_id=plan.approval_id,
                approvals=approvals,
            )
    finally:
        await db.close()
    assert await snapshot(db18) == before


async def test_a_dry_run_reports_the_change_and_leaves_nothing(db18: str) -> None:
    db = target(db18)
    try:
        await apply_migration(db, "target", "init", sql=BASE, version="1")
        before = await snapshot(db18)
        result = await apply_migration(db, "target", "add", sql=ADD_NAME, version="2", dry_run=True)
    finally:
        await db.close()
    assert result.status == "dry_run"
    assert any(h.object == "public.User" for h in result.hazards)  # CREATE INDEX without CONCURRENTLY on a table
    assert result.changes.data and any(c.startswith("+ ") and "User_name_idx" in c for c in result.changes.data)
    assert any(c.startswith("+ column") and "User" in c and c.endswith(".name") for c in result.changes.data)
    assert await snapshot(db18) == before


async def test_inline_sql_needs_exactly_one_source(db18: str) -> None:
    db = target(db18)
    try:
        with pytest.raises(ConfigError, match="exactly one"):
            await apply_migration(db, "target", "x")
        with pytest.raises(ConfigError, match="exactly one"):
            await apply_migration(db, "target", "x", sql=BASE, migration="somewhere")
    finally:
        await db.close()


async def test_a_script_mixing_its_own_transactions_and_a_concurrent_index_runs_each_part_its_way(
    db18: str,
) -> None:
    script = (
        "BEGIN;\nCREATE TABLE a (id int);\nCREATE TABLE b (id int);\nCOMMIT;\n"
        "CREATE INDEX CONCURRENTLY a_idx ON a (id);\n"
        "BEGIN;\nINSERT INTO a VALUES (1);\nCOMMIT;\n"
    )
    db = target(db18)
    try:
        result = await apply_migration(db, "target", "mixed", sql=script, version="1")
    finally:
        await db.close()
    assert (result.status, result.mode) == ("applied", "stepwise")
    assert [s.original or s.sql for s in result.statements] == [
        "CREATE TABLE a (id int)",
        "CREATE TABLE b (id int)",
        "CREATE INDEX CONCURRENTLY a_idx ON a (id)",
        "INSERT INTO a VALUES (1)",
    ]
    conn = await asyncpg.connect(db18)
    try:
        assert await conn.fetchval("SELECT count(*) FROM a") == 1
        # Supabase's row holds the script as written, its BEGIN/COMMIT included (what `supabase migration fetch` reads)
        assert await conn.fetchval("SELECT cardinality(statements) FROM supabase_migrations.schema_migrations") == 8
    finally:
        await conn.close()


async def test_a_concurrent_index_inside_the_scripts_own_transaction_is_refused_before_running(db18: str) -> None:
    db = target(db18)
    before = await snapshot(db18)
    script = "BEGIN;\nCREATE TABLE a (id int);\nCREATE INDEX CONCURRENTLY a_idx ON a (id);\nCOMMIT;\n"
    try:
        with pytest.raises(ConfigError, match="line 3"):
            await apply_migration(db, "target", "bad", sql=script, version="1")
    finally:
        await db.close()
    assert await snapshot(db18) == before


async def test_a_migration_is_found_by_its_version_in_the_projects_folder(
    db18: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prisma_folder(tmp_path, {"20240101000000_init": BASE})
    monkeypatch.chdir(tmp_path)
    db = target(db18)
    try:
        result = await apply_migration(db, "target", "init", migration="20240101000000")
    finally:
        await db.close()
    assert (result.status, result.source, result.name) == ("applied", "prisma", "init")
    assert await history_counts(db18) == (1, 1, 1)


async def test_migrations_are_refused_through_the_transaction_pooler_before_connecting() -> None:
    db = target("postgresql://postgres:secret@db.example.pooler.supabase.com:6543/postgres")
    try:
        with pytest.raises(ConfigError, match="transaction pooler"):
            await apply_migration(db, "target", "init", sql=BASE, version="1")
    finally:
        await db.close()


async def test_two_real_applies_at_once_run_one_after_the_other(db18: str) -> None:
    db = target(db18)
    holder = await asyncpg.connect(db18)
    try:
        await apply_migration(db, "target", "init", sql=BASE, version="1")
        await holder.execute('BEGIN; LOCK TABLE "User" IN ACCESS EXCLUSIVE MODE')
        first = asyncio.create_task(
            apply_migration(db, "target", "add", sql=ADD_NAME, version="2", timeouts=Timeouts(lock_ms=60_000))
        )
        await wait_until(holder, WAITING_ON_LOCK)  # the first holds the apply lock and waits on "User"
        second = asyncio.create_task(
            apply_migration(db, "target", "other", sql="CREATE TABLE o (id int);", version="3")
        )
        await wait_until(
            holder,
            "SELECT count(*) = 2 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )  # the second waits on the apply lock
        await holder.execute("ROLLBACK")
        results = await asyncio.wait_for(asyncio.gather(first, second), timeout=10)
        versions = [r[0] for r in await holder.fetch("SELECT version FROM pgshift.migrations ORDER BY id")]
    finally:
        await holder.close()
        await db.close()
    assert [r.status for r in results] == ["applied", "applied"]
    assert versions == ["1", "2", "3"]


async def test_inline_sql_takes_the_version_of_the_local_file_holding_it(
    db18: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prisma_folder(tmp_path, {"20240101000000_init": BASE})
    monkeypatch.chdir(tmp_path)
    db = target(db18)
    try:
        result = await apply_migration(db, "target", "whatever", sql=BASE)
    finally:
        await db.close()
    assert (result.version, result.name, result.source) == ("20240101000000", "init", "prisma")
    assert await history_counts(db18) == (1, 1, 1)


async def test_inline_sql_without_version_or_file_is_approved_and_applied_under_a_generated_version(
    db18: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no migrations folder here
    db = target(db18, protected=True)
    approvals = ApprovalStore(tmp_path / "state")
    try:
        plan = await apply_migration(db, "target", "adhoc", sql=BASE, approvals=approvals)
        assert plan.approval_id is not None
        approvals.approve(plan.approval_id)
        done = await apply_migration(db, "target", "adhoc", sql=BASE, approval_id=plan.approval_id, approvals=approvals)
    finally:
        await db.close()
    assert done.status == "applied" and len(done.version) == 14 and done.version.isdigit()
    assert f"supabase/migrations/{done.version}_adhoc.sql" in done.message
