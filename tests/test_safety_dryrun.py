"""Dry runs cannot commit or escape, and every statement reaches PostgreSQL as exactly one command.

Each attack is checked on the database (and the machine) directly, never through the tool's answer.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from support_apply import history_counts, run_sql, target

from pgshift.tools.apply import apply_migration
from pgshift.tools.databases import Databases
from pgshift.tools.errors import NotAllowed
from pgshift.tools.localpg import LocalPostgres, embedded_server
from pgshift.tools.migrations.check import check_migration
from pgshift.tools.migrations.dryrun import Runnable, dry_run_in_transaction
from pgshift.tools.plan.statement import Statement as PlanStatement
from pgshift.tools.statement_runner import run_statement

SEED = "CREATE TABLE account (id int PRIMARY KEY, email text);\nCREATE TABLE victim (id int);\n"
BEGIN_ATOMIC_ATTACK = "CREATE VIEW v AS SELECT begin atomic FROM (SELECT 1 AS begin) s; COMMIT; DROP TABLE victim"


@pytest.fixture
async def seeded(fresh_db: str) -> AsyncIterator[tuple[Databases, str]]:
    await run_sql(fresh_db, SEED)
    db = Databases.from_urls({"production": fresh_db}, protected=frozenset({"production"}))
    try:
        yield db, fresh_db
    finally:
        await db.close()


@pytest.fixture
def machine_dir() -> Iterator[Path]:
    """A directory the database server's OS user may write to: an attack that escaped would leave files here."""
    path = Path(tempfile.mkdtemp(prefix="pgshift-escape-", dir="/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _files(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


async def _fetchval(url: str, query: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


async def _exists(url: str, relation: str) -> bool:
    return await _fetchval(url, f"SELECT to_regclass('{relation}') IS NOT NULL") is True


# ---------------------------------------------------------------------------------------------- one command


async def test_postgresql_refuses_a_glued_script_sent_through_the_runner(fresh_db: str) -> None:
    await run_sql(fresh_db, SEED)
    conn = await asyncpg.connect(fresh_db)
    try:
        with pytest.raises(asyncpg.PostgresSyntaxError) as caught:
            async with conn.transaction():
                await run_statement(conn, BEGIN_ATOMIC_ATTACK)
    finally:
        await conn.close()
    assert caught.value.sqlstate == "42601"  # cannot insert multiple commands into a prepared statement
    assert await _exists(fresh_db, "victim") and not await _exists(fresh_db, "v")


async def test_the_begin_atomic_attack_on_a_protected_dry_run_leaves_the_victim_table(
    seeded: tuple[Databases, str],
) -> None:
    db, url = seeded
    result = await check_migration(db, "production", sql=BEGIN_ATOMIC_ATTACK)
    assert [s.kind.value for s in result.statements] == ["create_view", "commit", "drop_table"]
    assert result.dry_run is not None and result.dry_run.mode == "transaction"
    assert await _exists(url, "victim") and not await _exists(url, "v")


async def test_apply_shows_the_drop_hidden_behind_begin_atomic_as_its_own_statement(fresh_db: str) -> None:
    await run_sql(fresh_db, SEED)
    db = target(fresh_db, protected=True)
    try:
        first = await apply_migration(db, "target", "attack", sql=BEGIN_ATOMIC_ATTACK)
    finally:
        await db.close()
    assert first.status == "confirmation_required"
    assert [s.original or s.sql for s in first.statements] == [
        "CREATE VIEW v AS SELECT begin atomic FROM (SELECT 1 AS begin) s",
        "DROP TABLE victim",
    ]
    assert await _exists(fresh_db, "victim") and await history_counts(fresh_db) == (0, 0, 0)


async def test_utility_statements_run_over_the_extended_protocol(fresh_db: str) -> None:
    db = target(fresh_db)
    try:
        await apply_migration(
            db,
            "target",
            "types",
            sql="CREATE TYPE mood AS ENUM ('a');\nCREATE TABLE t (id int, m mood);\n"
            "DO $$ BEGIN INSERT INTO t VALUES (1, 'a'); END $$;\n",
            version="1",
        )
        second = await apply_migration(
            db,
            "target",
            "online",
            sql="ALTER TYPE mood ADD VALUE 'b';\nCREATE INDEX CONCURRENTLY t_id_idx ON t (id);\nVACUUM t;\n",
            version="2",
        )
    finally:
        await db.close()
    assert second.status == "applied" and second.mode == "stepwise"
    assert await _fetchval(fresh_db, "SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum") == "a,b"
    assert await _fetchval(fresh_db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_id_idx'::regclass")
    assert await _fetchval(fresh_db, "SELECT count(*) FROM t") == 1


async def test_a_plan_statement_runs_with_its_own_lock_timeout_which_is_restored_after(fresh_db: str) -> None:
    await run_sql(fresh_db, SEED)
    holder = await asyncpg.connect(fresh_db)
    conn = await asyncpg.connect(fresh_db)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("LOCK TABLE account IN ACCESS EXCLUSIVE MODE")
        statement = PlanStatement(sql="ALTER TABLE account ADD COLUMN x int", lock_timeout_ms=100)
        with pytest.raises(asyncpg.LockNotAvailableError):
            await run_statement(conn, statement)
        with pytest.raises(asyncpg.LockNotAvailableError):  # inside a transaction too (its rollback restores)
            async with conn.transaction():
                await run_statement(conn, statement)
        await tx.rollback()
        assert await conn.fetchval("SHOW lock_timeout") == "0"
        await run_statement(conn, statement)
    finally:
        await holder.close()
        await conn.close()
    assert await _fetchval(fresh_db, "SELECT count(*) FROM pg_attribute WHERE attname = 'x'") == 1


# ---------------------------------------------------------------------------------------------- the target's dry run


OUTSIDE_THE_TRANSACTION = [
    "SELECT pg_read_file('/etc/hostname')",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
    "DO $$ BEGIN PERFORM pg_catalog.pg_switch_wal(); END $$",
    "SELECT pg_reload_conf()",
    "SAVEPOINT a",
]


async def test_a_statement_that_could_act_outside_the_dry_runs_transaction_never_runs_on_the_target(
    seeded: tuple[Databases, str], pg18: LocalPostgres
) -> None:
    db, url = seeded
    bystander = await asyncpg.connect(url)
    conn = await asyncpg.connect(url)
    try:
        for attack in OUTSIDE_THE_TRANSACTION:
            sent = [
                Runnable(index=1, line=1, sql="ALTER TABLE account ADD COLUMN z int", transactional=True),
                Runnable(index=2, line=2, sql=attack, transactional=True),
            ]
            with pytest.raises(NotAllowed, match=r"(?s)statement 2 \(line 2\).*Nothing was run"):
                await dry_run_in_transaction(conn, sent)
        for attack in OUTSIDE_THE_TRANSACTION[:3]:  # check_migration sends such a script to the shadow instead
            script = f"ALTER TABLE account ADD COLUMN z int;\n{attack};\n"
            result = await check_migration(db, "production", sql=script, shadow=pg18)
            assert result.dry_run is not None and result.dry_run.mode == "shadow"
            assert "statement 2 (line 2) does not run on 'production'" in result.dry_run.notes[0]
        assert await bystander.fetchval("SELECT 1") == 1  # not terminated
    finally:
        await conn.close()
        await bystander.close()
    assert await _fetchval(url, "SELECT count(*) FROM pg_attribute WHERE attname = 'z'") == 0


async def test_a_script_no_migration_may_hold_is_refused_before_its_dry_run(
    seeded: tuple[Databases, str], machine_dir: Path
) -> None:
    db, url = seeded
    for attack in [f"COPY (SELECT 1) TO PROGRAM 'touch {machine_dir}/program'", f"COPY account TO '{machine_dir}/f'"]:
        with pytest.raises(NotAllowed, match=r"(?s)statement 2 \(line 2\).*Nothing was run"):
            await check_migration(db, "production", sql=f"ALTER TABLE account ADD COLUMN z int;\n{attack};\n")
    assert _files(machine_dir) == []
    assert await _fetchval(url, "SELECT count(*) FROM pg_attribute WHERE attname = 'z'") == 0


async def test_a_do_block_with_dynamic_sql_is_dry_run_on_the_shadow_instead_of_the_target(
    seeded: tuple[Databases, str], pg18: LocalPostgres
) -> None:
    db, url = seeded
    script = "DO $$ BEGIN EXECUTE 'CREATE TABLE ' || 'dynamic_t (id int)'; END $$;\n"
    result = await check_migration(db, "production", sql=script, shadow=pg18)
    assert result.dry_run is not None and result.dry_run.mode == "shadow" and result.dry_run.succeeded
    assert "cannot be checked" in result.dry_run.notes[0] and "does not run on 'production'" in result.dry_run.notes[0]
    assert [(c.kind, c.key) for c in result.dry_run.changes.data] == [("table", "public.dynamic_t")]
    assert not await _exists(url, "dynamic_t")


@pytest.fixture(scope="module")
def two_phase_server() -> Iterator[LocalPostgres]:
    """A server that allows PREPARE TRANSACTION (max_prepared_transactions needs a restart)."""
    server = embedded_server().start()
    try:
        server._run(
            [
                server._program("psql"),  # as the server's user: the copy it can run, not the venv's (0700 home)
                "-X",
                "-q",
                "-c",
                "ALTER SYSTEM SET max_prepared_transactions = 2",
                server.url(),
            ]
        )
        assert server.datadir is not None
        log = str(server.datadir.parent / "restart.log")  # pg_ctl must not hand our pipes to the server
        server._run([server._program("pg_ctl"), "-D", str(server.datadir), "-l", log, "-w", "-m", "fast", "restart"])
        yield server
    finally:
        server.stop()


async def test_prepare_transaction_never_commits_a_dry_run(two_phase_server: LocalPostgres) -> None:
    url = two_phase_server.url()
    assert await _fetchval(url, "SHOW max_prepared_transactions") == "2"
    script = "CREATE TABLE two_phase (id int);\nPREPARE TRANSACTION 'pgshift_attack';\n"
    db = Databases.from_urls({"production": url}, protected=frozenset({"production"}))
    try:
        checked = await check_migration(db, "production", sql=script, shadow=two_phase_server)
        # What the old splitter made of it: a transactional statement, sent to the target's transaction.
        sneaked = [
            Runnable(index=1, line=1, sql="CREATE TABLE two_phase (id int)", transactional=True),
            Runnable(index=2, line=2, sql="PREPARE TRANSACTION 'pgshift_attack'", transactional=True),
        ]
        conn = await asyncpg.connect(url)
        try:
            with pytest.raises(NotAllowed, match="statement 2"):
                await dry_run_in_transaction(conn, sneaked)
        finally:
            await conn.close()
    finally:
        await db.close()
    assert checked.dry_run is not None and checked.dry_run.mode == "shadow"
    assert await _fetchval(url, "SELECT count(*) FROM pg_prepared_xacts") == 0
    assert not await _exists(url, "two_phase")


# ---------------------------------------------------------------------------------------------- the shadow


async def test_the_shadow_runs_the_script_without_file_or_program_privileges(
    seeded: tuple[Databases, str], pg18: LocalPostgres, machine_dir: Path
) -> None:
    db, url = seeded
    secret = f"s3cret-{secrets.token_hex(8)}"
    secret_file = machine_dir / "secrets.env"
    secret_file.write_text(secret)
    secret_file.chmod(0o644)
    control = machine_dir / "control"
    # The server's OS user can reach both paths: a superuser's COPY and pg_read_file would work.
    superuser = await asyncpg.connect(pg18.url())
    try:
        # `cat` reads what COPY writes (a program that exits without reading, like `touch`, breaks COPY's pipe).
        await superuser.execute(f"COPY (SELECT 1) TO PROGRAM 'cat > {control}'")
        assert await superuser.fetchval("SELECT pg_read_file($1)", str(secret_file)) == secret
    finally:
        await superuser.close()
    assert control.exists()
    concurrently = "CREATE INDEX CONCURRENTLY account_email_idx ON account (email);\n"
    for attack in [
        f"COPY (SELECT 1) TO PROGRAM 'touch {machine_dir}/escaped'",
        f"SELECT pg_read_file('{secret_file}')",
    ]:
        result = await check_migration(db, "production", sql=f"{concurrently}{attack};\n", shadow=pg18)
        assert result.dry_run is not None and result.dry_run.mode == "shadow"
        assert result.dry_run.failure is not None and result.dry_run.failure.statement == 2
        assert result.dry_run.failure.sqlstate == "42501"  # insufficient_privilege
        assert secret not in result.model_dump_json()
    assert _files(machine_dir) == ["control", "secrets.env"]
    assert not await _exists(url, "account_email_idx")
    # The shadow's role and database are gone.
    assert await _fetchval(pg18.url(), "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'pgshift_shadow_%'") == 0


async def test_a_migration_that_runs_a_program_is_refused_before_anything_runs(
    fresh_db: str, machine_dir: Path
) -> None:
    await run_sql(fresh_db, SEED)
    db = target(fresh_db)
    try:
        with pytest.raises(NotAllowed, match=r"(?s)statement 2 \(line 2\).*Nothing was run"):
            await apply_migration(
                db,
                "target",
                "escape",
                sql=f"ALTER TABLE account ADD COLUMN z int;\nCOPY (SELECT 1) TO PROGRAM 'touch {machine_dir}/x';\n",
            )
    finally:
        await db.close()
    assert _files(machine_dir) == []
    assert await history_counts(fresh_db) == (0, 0, 0)
    assert await _fetchval(fresh_db, "SELECT count(*) FROM pg_attribute WHERE attname = 'z'") == 0


async def test_a_deploy_with_a_forbidden_migration_stops_before_the_first_one_runs(
    fresh_db: str, tmp_path: Path, machine_dir: Path
) -> None:
    from support_apply import prisma_folder

    from pgshift.tools.deploy import deploy

    folder = prisma_folder(
        tmp_path,
        {
            "20240101000000_init": SEED,
            "20240102000000_escape": f"COPY (SELECT 1) TO PROGRAM 'touch {machine_dir}/x';\n",
        },
    )
    db = target(fresh_db)
    try:
        with pytest.raises(NotAllowed, match="20240102000000"):
            await deploy(db, "target", str(folder))
    finally:
        await db.close()
    assert _files(machine_dir) == []
    assert not await _exists(fresh_db, "account") and await history_counts(fresh_db) == (0, 0, 0)
