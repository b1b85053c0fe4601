"""execute_sql is read-only by construction and bounded: each attack checked on the database and the machine."""

from __future__ import annotations

import resource
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from support_apply import run_sql

from pgshift.tools.approval import ApprovalStore
from pgshift.tools.databases import Databases, Environment
from pgshift.tools.errors import NotAllowed
from pgshift.tools.execute import ANSWER_ROW_BYTES, execute_sql
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.statement_runner import VALUE_CHARS

SEED = "CREATE TABLE t (id int PRIMARY KEY, v text);\nINSERT INTO t VALUES (1, 'one'), (2, 'two');\n"


@pytest.fixture
async def local(fresh_db: str) -> AsyncIterator[tuple[Databases, str]]:
    await run_sql(fresh_db, SEED)
    db = Databases([Environment(name="local", url=fresh_db)])
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


async def _refused(db: Databases, sql: str, *, write: bool = False) -> str:
    with pytest.raises(NotAllowed) as caught:
        await execute_sql(db, ApprovalStore(), "local", sql, write=write)
    message = str(caught.value)
    assert "nothing was changed" in message.lower()
    return message


async def test_read_only_refuses_what_a_read_only_transaction_still_allows(
    local: tuple[Databases, str], machine_dir: Path
) -> None:
    db, url = local
    secret = machine_dir / "secret.env"
    secret.write_text("s3cret-value")
    secret.chmod(0o644)
    bystander = await asyncpg.connect(url)
    try:
        pid = await bystander.fetchval("SELECT pg_backend_pid()")
        reset_before = await bystander.fetchval(
            "SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()"
        )
        for sql in [
            f"COPY (SELECT 1) TO PROGRAM 'touch {machine_dir}/program'",
            f"COPY t TO '{machine_dir}/file'",
            f"SELECT pg_read_file('{secret}')",
            f"SELECT pg_terminate_backend({pid})",
            "SELECT pg_reload_conf()",
            "SELECT pg_stat_reset()",
            "SELECT pg_switch_wal()",
            "CHECKPOINT",
            "LOCK TABLE t IN ACCESS EXCLUSIVE MODE",
            "SELECT * FROM t FOR UPDATE",
        ]:
            message = await _refused(db, sql)
            assert "s3cret-value" not in message
        assert await bystander.fetchval("SELECT 1") == 1  # not terminated
        assert (
            await bystander.fetchval("SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()")
            == reset_before
        )
    finally:
        await bystander.close()
    assert _files(machine_dir) == ["secret.env"]


async def test_a_write_through_dblink_is_refused_in_read_only_mode(local: tuple[Databases, str]) -> None:
    db, url = local
    await run_sql(url, "CREATE EXTENSION dblink")
    await _refused(db, f"SELECT dblink_exec('{url}', 'CREATE TABLE escaped (id int)')")
    await _refused(db, f"SELECT * FROM dblink('{url}', 'SELECT 1') AS r(x int)")
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT to_regclass('escaped')") is None
    finally:
        await conn.close()


async def test_a_role_without_superuser_cannot_terminate_its_own_other_sessions(
    fresh_db: str, pg: LocalPostgres
) -> None:
    role = f"app_{fresh_db.rsplit('_', 1)[1]}"
    await run_sql(fresh_db, f"CREATE ROLE {role} LOGIN PASSWORD 'app-pass'")
    url = pg.url(fresh_db.rsplit("/", 1)[1], user=role, password="app-pass")
    bystander = await asyncpg.connect(url)
    db = Databases([Environment(name="local", url=url)])
    try:
        await _refused(
            db,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE usename = current_user AND pid <> pg_backend_pid()",
        )
        assert await bystander.fetchval("SELECT 1") == 1
    finally:
        await db.close()
        await bystander.close()
        await run_sql(fresh_db, f"DROP ROLE {role}")


async def test_exactly_one_statement_runs_and_a_write_holds_no_transaction_control(
    local: tuple[Databases, str],
) -> None:
    db, url = local
    message = await _refused(db, "SELECT 1; DELETE FROM t")
    assert "exactly one statement" in message
    for sql in ["COMMIT", "BEGIN", "SAVEPOINT s", "PREPARE TRANSACTION 'x'", "DELETE FROM t; COMMIT"]:
        await _refused(db, sql, write=True)
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM t") == 2
    finally:
        await conn.close()


async def test_a_huge_value_is_cut_by_the_server_and_never_received_whole(local: tuple[Databases, str]) -> None:
    db, _ = local
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = await execute_sql(db, ApprovalStore(), "local", "SELECT repeat('x', 50000000) AS big, 7 AS n -- end")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert result.result is not None
    assert [c.name for c in result.result.data.columns] == ["big", "n"]
    (row,) = result.result.data.rows
    assert row["n"] == 7 and len(row["big"]) == VALUE_CHARS + 1 and row["big"].endswith("…")
    assert result.truncated and result.truncation is not None and "cut" in result.truncation
    assert grown_mb < 40  # 50 MB received whole would show here (as str and as bytes)


async def test_rows_stop_at_the_byte_budget_of_an_answer(local: tuple[Databases, str]) -> None:
    db, _ = local
    sql = "SELECT g, repeat('y', 4000) AS v FROM generate_series(1, 1000) g"
    result = await execute_sql(db, ApprovalStore(), "local", sql, limit=1000)
    assert 0 < result.row_count < ANSWER_ROW_BYTES // 4000 + 1
    assert result.truncation is not None and "budget" in result.truncation


async def test_a_write_with_returning_commits_every_row_but_returns_within_limit_and_budget(
    local: tuple[Databases, str],
) -> None:
    db, url = local
    sql = "INSERT INTO t SELECT g, repeat('z', 20000) FROM generate_series(10, 309) g RETURNING id, v"
    result = await execute_sql(db, ApprovalStore(), "local", sql, limit=5, write=True)
    # Five values of VALUE_CHARS + 1 would pass the answer's byte budget (an answer stays under 40,000 characters):
    # the rows stop at the budget, each value cut by the server, and the answer says why.
    assert result.committed and 1 <= result.row_count < 5
    assert result.result is not None
    assert [len(r["v"]) for r in result.result.data.rows] == [VALUE_CHARS + 1] * result.row_count
    assert sum(len(r["v"]) for r in result.result.data.rows) <= ANSWER_ROW_BYTES
    assert result.truncation is not None and "budget" in result.truncation
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM t") == 302
    finally:
        await conn.close()
