"""Splitting migration scripts into statements: exact text, kinds, transactional flags, lines, malformed input."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import corpus_root

from pgshift.tools.errors import ConfigError
from pgshift.tools.migrations.parse import StatementKind, split_statements

CORPUS = corpus_root()
CHAIN_FILES = sorted((CORPUS / "prisma" / "hoppscotch" / "migrations").glob("*/migration.sql")) + sorted(
    (CORPUS / "supabase" / "chatbot-ui" / "supabase" / "migrations").glob("*.sql")
)


@pytest.mark.parametrize("path", CHAIN_FILES, ids=lambda p: p.parent.name if p.name == "migration.sql" else p.name)
def test_joining_the_pieces_reproduces_every_corpus_migration_exactly(path: Path) -> None:
    script = path.read_text()
    statements = split_statements(script)
    assert statements
    assert "".join(s.leading + s.text + s.suffix for s in statements) == script
    for s in statements:
        assert script[s.start : s.start + len(s.text)] == s.text
        assert script.count("\n", 0, s.start) + 1 == s.line
        assert not s.text.endswith(";")
        assert s.kind is not StatementKind.UNKNOWN


def test_the_corpus_chains_exist() -> None:
    assert len(CHAIN_FILES) == 21 + 25


def test_dollar_quoted_bodies_strings_identifiers_and_comments_never_split_a_statement() -> None:
    script = (
        "-- header; with a semicolon\n"
        "CREATE FUNCTION f() RETURNS trigger AS $body$ BEGIN x := 'a;b'; END; $body$ LANGUAGE plpgsql;\n"
        "/* block; comment */ DO $$ BEGIN PERFORM 1; END $$;\n"
        "SELECT 'x;''y', \"we;ird\" FROM t;\n"
    )
    statements = split_statements(script)
    assert [s.kind for s in statements] == [StatementKind.CREATE_FUNCTION, StatementKind.DO_BLOCK, StatementKind.SELECT]
    assert statements[0].text.endswith("LANGUAGE plpgsql")
    assert statements[0].leading == "-- header; with a semicolon\n"
    assert statements[1].text == "DO $$ BEGIN PERFORM 1; END $$"
    assert statements[2].text == "SELECT 'x;''y', \"we;ird\" FROM t"
    assert [s.line for s in statements] == [2, 3, 4]


def test_a_sql_standard_function_body_keeps_its_inner_semicolons() -> None:
    script = "CREATE FUNCTION one() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;\nSELECT one();"
    statements = split_statements(script)
    assert [s.kind for s in statements] == [StatementKind.CREATE_FUNCTION, StatementKind.SELECT]
    assert statements[0].text.endswith("SELECT 2; END")


@pytest.mark.parametrize(
    ("sql", "kind", "transactional"),
    [
        ("CREATE TABLE t (id int)", StatementKind.CREATE_TABLE, True),
        ("CREATE UNLOGGED TABLE t (id int)", StatementKind.CREATE_TABLE, True),
        ("CREATE UNIQUE INDEX i ON t (id)", StatementKind.CREATE_INDEX, True),
        ("CREATE INDEX CONCURRENTLY i ON t (id)", StatementKind.CREATE_INDEX, False),
        ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (id)", StatementKind.CREATE_INDEX, False),
        ("DROP INDEX CONCURRENTLY i", StatementKind.DROP_INDEX, False),
        ("ALTER TYPE mood ADD VALUE 'meh'", StatementKind.ALTER_TYPE, True),
        ("CREATE OR REPLACE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql", StatementKind.CREATE_FUNCTION, True),
        ("CREATE EXTENSION IF NOT EXISTS pg_trgm", StatementKind.CREATE_EXTENSION, True),
        ("CREATE TYPE mood AS ENUM ('a')", StatementKind.CREATE_TYPE, True),
        ("CREATE POLICY p ON t USING (true)", StatementKind.CREATE_POLICY, True),
        ("CREATE MATERIALIZED VIEW v AS SELECT 1", StatementKind.CREATE_VIEW, True),
        ("CREATE EVENT TRIGGER e ON ddl_command_end EXECUTE FUNCTION f()", StatementKind.CREATE_OTHER, True),
        ("VACUUM ANALYZE t", StatementKind.VACUUM, False),
        ("CREATE DATABASE d", StatementKind.CREATE_DATABASE, False),
        ("BEGIN", StatementKind.BEGIN, False),
        ("START TRANSACTION", StatementKind.BEGIN, False),
        ("COMMIT", StatementKind.COMMIT, False),
        ("END", StatementKind.COMMIT, False),
        ("ROLLBACK", StatementKind.ROLLBACK, False),
        ("REINDEX INDEX CONCURRENTLY i", StatementKind.REINDEX, False),
        ("WITH x AS (SELECT 1) UPDATE t SET a = 1 FROM x", StatementKind.UPDATE, True),
        ("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", StatementKind.SELECT, True),
        ("INSERT INTO t VALUES (1)", StatementKind.INSERT, True),
        ("DO $$ BEGIN END $$", StatementKind.DO_BLOCK, True),
        ("REINDEX DATABASE d", StatementKind.REINDEX, False),
        ("REINDEX (CONCURRENTLY) TABLE t", StatementKind.REINDEX, False),
        ("ALTER TABLE t DETACH PARTITION p CONCURRENTLY", StatementKind.ALTER_TABLE, False),
        ("ALTER TABLE t RENAME COLUMN a TO b", StatementKind.ALTER_TABLE, True),
        ("ALTER TABLE t RENAME CONSTRAINT a TO b", StatementKind.ALTER_TABLE, True),
        ("ALTER TYPE mood RENAME VALUE 'a' TO 'b'", StatementKind.ALTER_TYPE, True),
        ("ALTER INDEX i RENAME TO j", StatementKind.ALTER_INDEX, True),
        ("ALTER SYSTEM SET work_mem = '1MB'", StatementKind.ALTER_OTHER, False),
        ("DROP MATERIALIZED VIEW v", StatementKind.DROP_VIEW, True),
        ("CREATE TABLE t2 AS SELECT 1", StatementKind.CREATE_TABLE, True),
        ("CLUSTER", StatementKind.UNKNOWN, False),
        ("ANALYZE t", StatementKind.UNKNOWN, True),
        ("GRANT SELECT ON t TO r", StatementKind.GRANT, True),
        ("REVOKE r FROM u", StatementKind.REVOKE, True),
        ("ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO r", StatementKind.ALTER_OTHER, True),
    ],
)
def test_each_statement_is_classified_by_its_parse_tree(sql: str, kind: StatementKind, transactional: bool) -> None:
    (statement,) = split_statements(sql + ";")
    assert statement.kind is kind
    assert statement.transactional is transactional


def test_explicit_transaction_control_is_reported_as_such() -> None:
    statements = split_statements("BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n")
    assert [s.tx_control for s in statements] == ["begin", None, "commit"]


def test_a_quoted_keyword_is_a_name_not_a_keyword() -> None:
    (statement,) = split_statements('CREATE TABLE "INDEX" ("CONCURRENTLY" int)')
    assert statement.kind is StatementKind.CREATE_TABLE
    assert statement.transactional


def test_a_last_statement_without_semicolon_is_kept() -> None:
    statements = split_statements("SELECT 1;\nSELECT 2 -- no semicolon\n")
    assert [s.text for s in statements] == ["SELECT 1", "SELECT 2"]
    assert statements[1].suffix == " -- no semicolon\n"


def test_empty_statements_and_comment_only_scripts_give_nothing_to_run() -> None:
    assert split_statements("-- nothing here\n/* at all */\n") == []
    assert [s.text for s in split_statements(";;SELECT 1;;")] == ["SELECT 1"]


@pytest.mark.parametrize(
    ("sql", "line"),
    [
        ("SELECT 1;\n\nSELECT 'unterminated;\n", 3),
        ("SELECT 1;\nCREATE FUNCTION f() RETURNS int AS $$ select 1;\n", 2),
        ("SELECT 1;\n/* never closed\nSELECT 2;", 2),
        ('SELECT 1;\nSELECT "open;', 2),
        ("CREATE TABLE t (id int;\nSELECT 1;", 1),
        ("SELECT 1;\nSELECT 2);", 2),
        ("SELECT 1;\n\n\nCREAT TABLE t (id int);", 4),
    ],
)
def test_malformed_sql_is_a_config_error_naming_the_line(sql: str, line: int) -> None:
    with pytest.raises(ConfigError, match=rf"line {line}\b"):
        split_statements(sql)


def test_the_begin_atomic_attack_splits_into_the_three_commands_postgresql_runs() -> None:
    script = "CREATE VIEW v AS SELECT begin atomic FROM (SELECT 1 AS begin) s; COMMIT; DROP TABLE victim"
    statements = split_statements(script)
    assert [s.kind for s in statements] == [StatementKind.CREATE_VIEW, StatementKind.COMMIT, StatementKind.DROP_TABLE]
    assert [s.text for s in statements][1:] == ["COMMIT", "DROP TABLE victim"]


def test_escape_strings_nested_comments_and_non_ascii_text_split_as_postgresql_splits_them() -> None:
    script = "SELECT E'it\\'s; here' AS é;\n/* outer /* inner; */ still comment; */ SELECT 'ü;ß' AS x;\nSELECT 3"
    statements = split_statements(script)
    assert [s.text for s in statements] == ["SELECT E'it\\'s; here' AS é", "SELECT 'ü;ß' AS x", "SELECT 3"]
    assert statements[1].leading == "\n/* outer /* inner; */ still comment; */ "
    assert "".join(s.leading + s.text + s.suffix for s in statements) == script
    assert [t.text for t in statements[1].tokens] == ["SELECT", "'ü;ß'", "AS", "x"]


def test_each_statement_carries_postgresqls_parse_tree() -> None:
    (statement,) = split_statements("CREATE INDEX CONCURRENTLY i ON t (a)")
    assert type(statement.node).__name__ == "IndexStmt"
    assert statement.node.concurrent


@pytest.mark.parametrize(
    ("sql", "kind", "tx_control"),
    [
        ("ROLLBACK TO SAVEPOINT s", StatementKind.SAVEPOINT, None),
        ("PREPARE TRANSACTION 'x'", StatementKind.PREPARED_TRANSACTION, None),
        ("COMMIT PREPARED 'x'", StatementKind.PREPARED_TRANSACTION, None),
        ("ABORT", StatementKind.ROLLBACK, "rollback"),
    ],
)
def test_transaction_statements_are_classified_by_their_parse_tree(
    sql: str, kind: StatementKind, tx_control: str | None
) -> None:
    (statement,) = split_statements(sql)
    assert (statement.kind, statement.tx_control) == (kind, tx_control)


def test_a_psql_meta_command_is_refused_as_not_sql() -> None:
    with pytest.raises(ConfigError, match=r"line 2: '\\\\connect' is a psql meta-command"):
        split_statements("SELECT 1;\n\\connect other\nSELECT 2;")
