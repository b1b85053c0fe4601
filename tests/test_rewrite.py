"""Rewriting for the target: each guard with its reason, the author's text kept, equivalence on real PostgreSQL."""

from __future__ import annotations

import asyncpg
import pytest
from conftest import create_database, drop_database
from support_prepare import CORPUS, execute

from pgshift.tools.judge import dump_schema, normalise_dump
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.migrations.parse import split_statements
from pgshift.tools.migrations.rewrite import RewriteKind, rewrite_for_target


def _one(sql: str, *, supabase: bool = False) -> tuple[str, list[RewriteKind]]:
    result = rewrite_for_target(split_statements(sql), supabase=supabase)
    (statement,) = result.statements
    return statement.sql, [r.kind for r in statement.rewrites]


@pytest.mark.parametrize(
    ("sql", "expected", "kind"),
    [
        ('CREATE TABLE "T" (id int)', 'CREATE TABLE IF NOT EXISTS "T" (id int)', RewriteKind.IF_NOT_EXISTS),
        ("CREATE UNIQUE INDEX i ON t (a)", "CREATE UNIQUE INDEX IF NOT EXISTS i ON t (a)", RewriteKind.IF_NOT_EXISTS),
        (
            "CREATE INDEX CONCURRENTLY i ON t (a)",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)",
            RewriteKind.IF_NOT_EXISTS,
        ),
        ("CREATE SEQUENCE s", "CREATE SEQUENCE IF NOT EXISTS s", RewriteKind.IF_NOT_EXISTS),
        ("CREATE SCHEMA app", "CREATE SCHEMA IF NOT EXISTS app", RewriteKind.IF_NOT_EXISTS),
        ("CREATE EXTENSION pg_trgm", "CREATE EXTENSION IF NOT EXISTS pg_trgm", RewriteKind.IF_NOT_EXISTS),
        (
            "ALTER TABLE t ADD COLUMN a int, ADD b text",
            "ALTER TABLE t ADD COLUMN IF NOT EXISTS a int, ADD IF NOT EXISTS b text",
            RewriteKind.IF_NOT_EXISTS,
        ),
        (
            "ALTER TABLE t DROP COLUMN a, DROP CONSTRAINT c",
            "ALTER TABLE t DROP COLUMN IF EXISTS a, DROP CONSTRAINT IF EXISTS c",
            RewriteKind.IF_EXISTS,
        ),
        ("DROP TABLE t", "DROP TABLE IF EXISTS t", RewriteKind.IF_EXISTS),
        ("DROP INDEX CONCURRENTLY i", "DROP INDEX CONCURRENTLY IF EXISTS i", RewriteKind.IF_EXISTS),
        ("DROP TYPE mood", "DROP TYPE IF EXISTS mood", RewriteKind.IF_EXISTS),
        ("DROP MATERIALIZED VIEW v", "DROP MATERIALIZED VIEW IF EXISTS v", RewriteKind.IF_EXISTS),
        (
            "ALTER TYPE mood ADD VALUE 'meh' BEFORE 'sad'",
            "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh' BEFORE 'sad'",
            RewriteKind.IF_NOT_EXISTS,
        ),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'",
            "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'",
            RewriteKind.OR_REPLACE,
        ),
    ],
)
def test_each_guard_is_inserted_into_the_authors_text(sql: str, expected: str, kind: RewriteKind) -> None:
    rewritten, kinds = _one(sql)
    assert rewritten == expected
    assert kind in kinds


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE IF NOT EXISTS t (id int)",
        "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'",
        "ALTER TABLE t ALTER COLUMN a SET DEFAULT 1",
        "ALTER TABLE t ENABLE ROW LEVEL SECURITY",
        "UPDATE t SET a = 1",
        "INSERT INTO t (id) VALUES (1)",
        "INSERT INTO t (id) VALUES (1) RETURNING id",
        "DELETE FROM t WHERE id = 1",
        "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 2",
        "COMMENT ON TABLE t IS 'x'",
        "GRANT SELECT ON t TO PUBLIC",
        "DROP TABLE IF EXISTS t",
    ],
)
def test_a_statement_that_needs_no_change_keeps_the_authors_exact_text(sql: str) -> None:
    rewritten, kinds = _one(sql)
    assert rewritten == sql
    assert kinds == []


def test_create_type_goes_inside_a_do_block_that_ignores_duplicate_object() -> None:
    rewritten, kinds = _one("CREATE TYPE \"Mood\" AS ENUM ('a', 'b')")
    assert kinds == [RewriteKind.DUPLICATE_OBJECT_GUARD]
    assert rewritten.startswith("DO $pgshift$")
    assert "CREATE TYPE \"Mood\" AS ENUM ('a', 'b');" in rewritten
    assert "EXCEPTION WHEN duplicate_object THEN NULL;" in rewritten


def test_the_guard_picks_a_dollar_tag_the_body_does_not_use() -> None:
    rewritten, _ = _one("CREATE TYPE t AS ENUM ('$pgshift$')")
    assert rewritten.startswith("DO $pgshift1$")


def test_add_constraint_is_guarded_by_the_catalog_and_unnamed_ones_are_flagged() -> None:
    rewritten, kinds = _one('ALTER TABLE "S" ADD CONSTRAINT "S_fkey" FOREIGN KEY ("u") REFERENCES "U"("id")')
    assert kinds == [RewriteKind.CATALOG_GUARD]
    assert "conrelid = to_regclass('\"S\"') AND conname IN ('S_fkey')" in rewritten
    result = rewrite_for_target(split_statements("ALTER TABLE t ADD PRIMARY KEY (id)"), supabase=False)
    assert result.statements[0].sql == "ALTER TABLE t ADD PRIMARY KEY (id)"
    assert result.statements[0].rerun_note is not None


def test_no_rewrite_changes_what_a_statement_does_to_data_an_insert_runs_as_written() -> None:
    result = rewrite_for_target(
        split_statements("INSERT INTO t (id) VALUES (1);\nUPDATE t SET id = 2;"), supabase=False
    )
    assert [s.sql for s in result.statements] == [s.original for s in result.statements]
    assert result.rewrites == ()
    assert all(s.rerun_note for s in result.statements)


def test_an_alter_table_dropping_and_adding_a_key_in_one_statement_is_left_as_written() -> None:
    sql = 'ALTER TABLE "T" DROP CONSTRAINT "T_pkey",\nADD CONSTRAINT "T_pkey" PRIMARY KEY ("a", "b")'
    result = rewrite_for_target(split_statements(sql), supabase=False)
    (statement,) = result.statements
    assert statement.sql == sql and statement.rewrites == ()
    assert statement.rerun_note is not None and "left as written" in statement.rerun_note


def test_an_alter_table_adding_a_column_and_a_constraint_is_left_as_written() -> None:
    sql = 'ALTER TABLE "T" ADD COLUMN "c" int, ADD CONSTRAINT "T_c_key" UNIQUE ("c")'
    assert _one(sql) == (sql, [])


def test_an_alter_table_adding_only_named_constraints_is_guarded_by_the_catalog() -> None:
    rewritten, kinds = _one('ALTER TABLE "T" ADD CONSTRAINT "a_key" UNIQUE (a), ADD CONSTRAINT "b_key" UNIQUE (b)')
    assert kinds == [RewriteKind.CATALOG_GUARD]
    assert "conname IN ('a_key', 'b_key')" in rewritten


def test_without_guards_only_the_target_adaptations_remain() -> None:
    script = "-- CreateTable\nCREATE TABLE t (id int);\nCREATE EXTENSION pg_trgm;\n"
    plain = rewrite_for_target(split_statements(script), supabase=True, guards=False)
    assert [s.sql for s in plain.statements] == [
        "CREATE TABLE t (id int)",
        "CREATE EXTENSION pg_trgm WITH SCHEMA extensions",
    ]
    assert [r.kind for r in plain.rewrites] == [RewriteKind.PRISMA_COMMENT_DROPPED, RewriteKind.EXTENSION_SCHEMA]


def test_on_a_supabase_target_an_extension_without_schema_goes_to_extensions() -> None:
    assert _one("CREATE EXTENSION pg_trgm", supabase=True)[0] == (
        "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA extensions"
    )
    assert _one("CREATE EXTENSION vector WITH VERSION '0.8.0'", supabase=True)[0] == (
        "CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA extensions VERSION '0.8.0'"
    )
    assert _one("create extension http with schema extensions", supabase=True)[0] == (
        "create extension IF NOT EXISTS http with schema extensions"
    )
    assert _one("CREATE EXTENSION pg_trgm", supabase=False)[0] == "CREATE EXTENSION IF NOT EXISTS pg_trgm"


def test_prisma_step_comments_are_dropped_and_the_authors_comments_kept() -> None:
    script = (
        "/*\n  Warnings:\n\n  - You are about to drop the column `x`.\n\n*/\n"
        "-- AlterTable\nALTER TABLE t ALTER COLUMN a SET DEFAULT 1;\n\n"
        "-- Keep the latest one (written by a person)\nUPDATE t SET a = 2;\n"
    )
    result = rewrite_for_target(split_statements(script), supabase=False)
    assert "-- AlterTable" not in result.script and "Warnings:" not in result.script
    assert "-- Keep the latest one (written by a person)\nUPDATE t SET a = 2;" in result.script
    assert [r.kind for r in result.rewrites] == [RewriteKind.PRISMA_COMMENT_DROPPED]
    assert result.statements[0].sql == "ALTER TABLE t ALTER COLUMN a SET DEFAULT 1"


# Every guard on real PostgreSQL, as a chain of two migrations (renames follow creations in a later migration,
# as in real chains): each original once and each rewrite once build the same schema; each rewrite then runs a
# second time without error and without change.
CREATES = """
CREATE SCHEMA app;
CREATE EXTENSION pg_trgm;
CREATE TYPE app.mood AS ENUM ('sad', 'ok');
CREATE TYPE app.old_kind AS ENUM ('x');
CREATE DOMAIN app.email AS text CHECK (VALUE LIKE '%@%');
CREATE SEQUENCE app.counter;
CREATE TABLE app."User" (id int PRIMARY KEY, name text, mood app.mood);
CREATE TABLE app.post (id int PRIMARY KEY, author int, title text, legacy text);
CREATE INDEX post_headline_idx ON app.post USING gin (title gin_trgm_ops);
CREATE TABLE app.tmp (id int);
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER post_touch BEFORE UPDATE ON app.post FOR EACH ROW EXECUTE FUNCTION app.touch();
CREATE VIEW app.titles AS SELECT title FROM app.post;
CREATE MATERIALIZED VIEW app.post_count AS SELECT count(*) AS n FROM app.post;
"""
CHANGES = """
ALTER TYPE app.mood ADD VALUE 'happy';
ALTER TYPE app.mood RENAME VALUE 'ok' TO 'fine';
ALTER TYPE app.old_kind RENAME TO kind;
DROP VIEW app.titles;
ALTER TABLE app.post ADD COLUMN body text, ADD COLUMN score int DEFAULT 0;
ALTER TABLE app.post DROP COLUMN legacy;
ALTER TABLE app.post RENAME COLUMN title TO headline;
ALTER TABLE app.post ADD CONSTRAINT post_author_fkey FOREIGN KEY (author) REFERENCES app."User"(id);
ALTER TABLE app.post ADD CONSTRAINT post_score_check CHECK (score >= 0);
ALTER TABLE app.post ADD CONSTRAINT post_body_check CHECK (body <> '');
ALTER TABLE app.post DROP CONSTRAINT post_score_check;
ALTER INDEX app.post_headline_idx RENAME TO post_headline_trgm;
ALTER TABLE app.tmp RENAME TO scratch;
DROP TABLE app.scratch;
ALTER TABLE app.post ENABLE ROW LEVEL SECURITY;
CREATE POLICY "own posts" ON app.post FOR SELECT USING (author = 1);
CREATE INDEX CONCURRENTLY post_body_idx ON app.post (body);
"""


async def _run_each(url: str, script: str) -> None:
    """Run statement by statement outside a transaction (the script holds CREATE INDEX CONCURRENTLY)."""
    conn = await asyncpg.connect(url)
    try:
        for s in split_statements(script):
            await conn.execute(s.text)
    finally:
        await conn.close()


async def test_every_guard_builds_the_same_schema_and_a_second_run_changes_nothing(
    pg: LocalPostgres, pg18: LocalPostgres
) -> None:
    original_url = await create_database(pg, "orig")
    rewritten_url = await create_database(pg, "rewr")
    try:
        for script in (CREATES, CHANGES):
            rewritten = rewrite_for_target(split_statements(script), supabase=False)
            unchanged = [s.original for s in rewritten.statements if not s.changed]
            assert unchanged in ([], ["ALTER TABLE app.post ENABLE ROW LEVEL SECURITY"])
            assert all(s.rerun_note is None for s in rewritten.statements)
            await _run_each(original_url, script)
            await _run_each(rewritten_url, rewritten.script)
            once = normalise_dump(await dump_schema(rewritten_url, pg18.bin_dir))
            assert once == normalise_dump(await dump_schema(original_url, pg18.bin_dir))
            await _run_each(rewritten_url, rewritten.script)
            assert normalise_dump(await dump_schema(rewritten_url, pg18.bin_dir)) == once
        with pytest.raises(asyncpg.PostgresError):
            await _run_each(original_url, CHANGES)  # the original is not re-runnable: the guards matter
    finally:
        await drop_database(pg, original_url)
        await drop_database(pg, rewritten_url)


def test_a_script_that_creates_then_renames_an_object_says_a_second_run_recreates_it() -> None:
    script = "CREATE TYPE old_kind AS ENUM ('x');\nALTER TYPE old_kind RENAME TO kind;\n"
    rewritten = rewrite_for_target(split_statements(script), supabase=False)
    note = rewritten.statements[1].rerun_note
    assert note is not None and "'old_kind'" in note and "again" in note


async def test_the_original_hoppscotch_init_fails_on_a_second_run_and_the_rewrite_does_not(db18: str) -> None:
    script = (CORPUS / "prisma" / "hoppscotch" / "migrations" / "20230406064219_init" / "migration.sql").read_text()
    rewritten = rewrite_for_target(split_statements(script), supabase=False).script
    await execute(db18, script)
    with pytest.raises(asyncpg.DuplicateObjectError):
        await execute(db18, script)
    await execute(db18, rewritten)
