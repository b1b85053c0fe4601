"""check_migration on real PostgreSQL: what it reports, and that its dry run never leaves anything behind."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from support_prepare import CORPUS, execute, make_supabase_shaped

from tools.databases import Databases, Environment
from tools.errors import ConfigError
from tools.localpg import LocalPostgres
from tools.migrations.check import check_migration, render_text
from tools.migrations.lint import LintRule
from tools.migrations.rewrite import RewriteKind

SEED = """
CREATE TABLE account (id int PRIMARY KEY, email text);
INSERT INTO account VALUES (1, 'a@example.com'), (2, 'b@example.com');
"""


async def _snapshot(url: str) -> list[tuple[str, str, str]]:
    """Every column of every user table, plus indexes and constraints: enough to see any leftover."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            """
            SELECT 'column' AS kind, table_name::text AS parent, column_name::text AS name
            FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
            UNION ALL SELECT 'index', tablename::text, indexname::text FROM pg_indexes
            WHERE schemaname NOT IN ('pg_catalog')
            UNION ALL SELECT 'constraint', conrelid::regclass::text, conname::text FROM pg_constraint
            WHERE connamespace <> 'pg_catalog'::regnamespace
            UNION ALL SELECT 'extension', '', extname::text FROM pg_extension
            ORDER BY 1, 2, 3
            """
        )
        return [(r["kind"], r["parent"], r["name"]) for r in rows]
    finally:
        await conn.close()


@pytest.fixture
async def seeded(fresh_db: str) -> AsyncIterator[tuple[Databases, str]]:
    await execute(fresh_db, SEED)
    db = Databases.from_urls({"production": fresh_db}, protected=frozenset({"production"}))
    try:
        yield db, fresh_db
    finally:
        await db.close()


async def test_a_check_reports_statements_rewrites_lint_and_the_change_its_dry_run_would_make(
    seeded: tuple[Databases, str],
) -> None:
    db, url = seeded
    before = await _snapshot(url)
    script = (
        "-- AlterTable\n"
        'ALTER TABLE account ADD COLUMN "createdAt" timestamptz NOT NULL DEFAULT now();\n\n'
        "-- CreateIndex\n"
        "CREATE INDEX account_email_idx ON account (email);\n"
        "CREATE TABLE note (id int PRIMARY KEY, account_id int REFERENCES account (id));\n"
    )
    result = await check_migration(db, "production", sql=script)
    assert [s.kind.value for s in result.statements] == ["alter_table", "create_index", "create_table"]
    assert [s.line for s in result.statements] == [2, 5, 6]
    assert all(s.transactional for s in result.statements)
    kinds = {(r.line, r.kind) for r in result.rewrites}
    assert (2, RewriteKind.IF_NOT_EXISTS) in kinds and (5, RewriteKind.PRISMA_COMMENT_DROPPED) in kinds
    assert "-- CreateIndex" not in result.script and "CREATE INDEX IF NOT EXISTS account_email_idx" in result.script
    assert {f.rule for f in result.lint} >= {
        LintRule.REQUIRE_CONCURRENT_INDEX_CREATION,
        LintRule.REQUIRE_LOCK_TIMEOUT,
    }
    assert result.dry_run is not None and result.dry_run.mode == "transaction" and result.dry_run.succeeded
    changes = {(c.kind, c.key, c.change) for c in result.dry_run.changes.data}
    assert ("column", 'public.account."createdAt"', "added") in changes
    assert ("index", "public.account_email_idx", "added") in changes
    assert ("table", "public.note", "added") in changes
    assert result.ok and result.blockers == ()
    assert await _snapshot(url) == before


async def test_a_failing_dry_run_names_the_statement_and_leaves_the_target_as_it_was(
    seeded: tuple[Databases, str],
) -> None:
    db, url = seeded
    before = await _snapshot(url)
    script = "ALTER TABLE account ADD COLUMN score int;\n\nALTER TABLE account ADD COLUMN name text NOT NULL;\n"
    result = await check_migration(db, "production", sql=script)
    assert result.dry_run is not None and not result.dry_run.succeeded
    assert result.dry_run.failure is not None
    assert (result.dry_run.failure.statement, result.dry_run.failure.line) == (2, 3)
    assert result.dry_run.failure.sqlstate == "23502"  # not_null_violation: the table has rows
    assert result.dry_run.statements_run == 1
    assert not result.ok and "statement 2" in result.blockers[-1]
    assert LintRule.ADDING_REQUIRED_FIELD in {f.rule for f in result.lint}
    assert await _snapshot(url) == before


async def test_an_extension_the_target_lacks_is_reported_and_nothing_runs(seeded: tuple[Databases, str]) -> None:
    db, url = seeded
    before = await _snapshot(url)
    script = "CREATE TABLE t (id int);\ncreate extension http with schema public;\n"
    result = await check_migration(db, "production", sql=script)
    assert [(m.name, m.statement, m.line) for m in result.missing_extensions] == [("http", 2, 2)]
    assert result.dry_run is not None and result.dry_run.mode == "not_run"
    assert any("extension 'http'" in b for b in result.blockers)
    assert await _snapshot(url) == before


async def test_a_role_the_target_lacks_is_reported_unless_the_script_creates_it(
    seeded: tuple[Databases, str],
) -> None:
    db, _ = seeded
    script = (
        "GRANT SELECT ON account TO ghost_reader, PUBLIC;\n"
        "CREATE ROLE made_here NOLOGIN;\n"
        "GRANT SELECT ON account TO made_here;\n"
        "CREATE POLICY p ON account FOR SELECT TO another_ghost USING (true);\n"
    )
    result = await check_migration(db, "production", sql=script, dry_run=False)
    assert [(m.name, m.statement) for m in result.missing_roles] == [("ghost_reader", 1), ("another_ghost", 4)]
    assert result.dry_run is None


async def test_another_session_holding_a_lock_makes_the_dry_run_fail_cleanly_on_lock_timeout(
    seeded: tuple[Databases, str],
) -> None:
    db, url = seeded
    holder = await asyncpg.connect(url)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("LOCK TABLE account IN ACCESS EXCLUSIVE MODE")
        result = await check_migration(
            db, "production", sql="ALTER TABLE account ADD COLUMN x int;", lock_timeout_ms=300
        )
        await tx.rollback()
    finally:
        await holder.close()
    assert result.dry_run is not None and result.dry_run.failure is not None
    assert result.dry_run.failure.sqlstate == "55P03"  # lock_not_available
    assert result.dry_run.duration_ms < 10_000


async def test_a_script_that_cannot_run_in_a_transaction_is_dry_run_on_a_shadow_copy(
    seeded: tuple[Databases, str], pg18: LocalPostgres
) -> None:
    db, url = seeded
    before = await _snapshot(url)
    script = "CREATE INDEX CONCURRENTLY account_email_idx ON account (email);\nALTER TABLE account ADD COLUMN y int;\n"
    result = await check_migration(db, "production", sql=script, shadow=pg18)
    assert result.non_transactional == (1,)
    assert result.dry_run is not None and result.dry_run.mode == "shadow" and result.dry_run.succeeded
    changes = {(c.kind, c.key, c.change) for c in result.dry_run.changes.data}
    assert changes == {("index", "public.account_email_idx", "added"), ("column", "public.account.y", "added")}
    assert "cannot run inside a transaction" in result.dry_run.notes[0]
    assert await _snapshot(url) == before


async def test_a_read_only_environment_is_only_read_even_by_a_dry_run(fresh_db: str, pg18: LocalPostgres) -> None:
    await execute(fresh_db, SEED)
    db = Databases([Environment(name="replica", url=fresh_db, read_only=True)])
    try:
        result = await check_migration(db, "replica", sql="ALTER TABLE account ADD COLUMN z int;", shadow=pg18)
    finally:
        await db.close()
    assert result.dry_run is not None and result.dry_run.mode == "shadow" and result.dry_run.succeeded
    assert [(c.kind, c.key) for c in result.dry_run.changes.data] == [("column", "public.account.z")]


async def test_malformed_sql_and_a_bad_source_are_config_errors(seeded: tuple[Databases, str]) -> None:
    db, _ = seeded
    with pytest.raises(ConfigError, match="line 2"):
        await check_migration(db, "production", sql="SELECT 1;\nSELECT 'open;\n")
    with pytest.raises(ConfigError, match="exactly one"):
        await check_migration(db, "production")
    with pytest.raises(ConfigError, match="not found"):
        await check_migration(db, "production", migration="/nonexistent/migration")


async def test_a_prisma_migration_folder_is_checked_against_an_empty_database(fresh_db: str) -> None:
    folder = CORPUS / "prisma" / "hoppscotch" / "migrations" / "20230406064219_init"
    db = Databases.from_urls({"local": fresh_db})
    try:
        result = await check_migration(db, "local", migration=str(folder))
    finally:
        await db.close()
    assert result.source.endswith("migration.sql") and not result.supabase_target
    assert result.dry_run is not None and result.dry_run.succeeded
    tables = {c.key for c in result.dry_run.changes.data if c.kind == "table" and c.change == "added"}
    assert {'public."Team"', 'public."User"', 'public."UserCollection"'} <= tables
    # Everything is new: no lint finding about locking existing tables.
    assert result.lint == ()


async def test_on_a_supabase_database_extensions_go_to_the_extensions_schema_and_http_is_refused(db18: str) -> None:
    await make_supabase_shaped(db18)
    db = Databases.from_urls({"production": db18})
    try:
        trgm = await check_migration(db, "production", sql="CREATE EXTENSION pg_trgm;")
        setup = CORPUS / "supabase" / "chatbot-ui" / "supabase" / "migrations" / "20240108234540_setup.sql"
        chatbot = await check_migration(db, "production", migration=str(setup))
    finally:
        await db.close()
    assert trgm.supabase_target
    assert trgm.statements[0].sql == "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA extensions"
    assert trgm.dry_run is not None and trgm.dry_run.succeeded
    assert [(c.kind, c.key, c.change) for c in trgm.dry_run.changes.data if c.kind == "extension"] == [
        ("extension", "pg_trgm", "added")
    ]
    assert [m.name for m in chatbot.missing_extensions] == ["http"]
    assert chatbot.dry_run is not None and chatbot.dry_run.mode == "not_run"
    assert any("'http'" in b for b in chatbot.blockers)


async def test_the_scripts_own_begin_and_commit_run_inside_the_rolled_back_dry_run(
    seeded: tuple[Databases, str],
) -> None:
    db, url = seeded
    before = await _snapshot(url)
    result = await check_migration(db, "production", sql="BEGIN;\nALTER TABLE account ADD COLUMN q int;\nCOMMIT;\n")
    assert [s.kind.value for s in result.statements] == ["begin", "alter_table", "commit"]
    assert result.non_transactional == ()
    assert result.dry_run is not None and result.dry_run.mode == "transaction" and result.dry_run.succeeded
    assert [(c.kind, c.key) for c in result.dry_run.changes.data] == [("column", "public.account.q")]
    assert await _snapshot(url) == before


async def test_without_a_shadow_server_one_is_started_and_a_failing_statement_is_reported(
    seeded: tuple[Databases, str],
) -> None:
    db, url = seeded
    before = await _snapshot(url)
    script = "CREATE INDEX CONCURRENTLY bad_idx ON account (no_such_column);\n"
    result = await check_migration(db, "production", sql=script)
    assert result.dry_run is not None and result.dry_run.mode == "shadow" and not result.dry_run.succeeded
    assert result.dry_run.failure is not None and result.dry_run.failure.sqlstate == "42703"  # undefined_column
    assert any("statement 1" in b for b in result.blockers)
    assert "FAILED" in render_text(result) and "cannot run in a transaction" in render_text(result)
    assert await _snapshot(url) == before


async def test_a_dry_run_that_inserts_says_sequences_stay_advanced(seeded: tuple[Databases, str]) -> None:
    db, _ = seeded
    script = "CREATE TABLE log (id serial PRIMARY KEY, at timestamptz);\nINSERT INTO log (at) VALUES (now());\n"
    result = await check_migration(db, "production", sql=script)
    assert result.dry_run is not None and result.dry_run.succeeded
    assert any("nextval" in n and "line(s) 2" in n for n in result.dry_run.notes)


async def test_a_new_enum_label_used_in_the_same_script_is_flagged_and_its_dry_run_fails_as_apply_would(
    seeded: tuple[Databases, str],
) -> None:
    db, url = seeded
    await execute(url, "CREATE TYPE mood AS ENUM ('sad'); ALTER TABLE account ADD COLUMN mood mood;")
    script = "ALTER TYPE mood ADD VALUE 'meh';\nUPDATE account SET mood = 'meh' WHERE id = 1;\n"
    result = await check_migration(db, "production", sql=script)
    assert LintRule.NEW_ENUM_VALUE_USED_IN_TRANSACTION in {f.rule for f in result.lint}
    assert result.dry_run is not None and result.dry_run.failure is not None
    assert result.dry_run.failure.sqlstate == "55P04"  # unsafe_new_enum_value_usage
