"""Each ecosystem's history table decides what is applied: Supabase's for a Supabase folder, Prisma's for a Prisma
folder; our ledger adds detail but never makes applied what that table says is not.

The CLIs' writes are simulated with the SQL they run: `supabase migration repair --status reverted V` deletes V's
row from `supabase_migrations.schema_migrations`; `prisma migrate resolve --rolled-back N` sets `rolled_back_at` on
N's failed rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from support_apply import prisma_folder, run_sql, target

from pgshift.tools import ledger
from pgshift.tools.databases import Databases, Environment
from pgshift.tools.deploy import deploy, list_migrations
from pgshift.tools.migrations.folder import Migration, checksum

SUPABASE_REVERT = "DELETE FROM supabase_migrations.schema_migrations WHERE version = ANY($1::text[])"
PRISMA_ROLL_BACK = (
    "UPDATE _prisma_migrations SET rolled_back_at = now() "
    "WHERE migration_name = $1 AND finished_at IS NULL AND rolled_back_at IS NULL"
)
NOW = datetime(2024, 1, 1, tzinfo=UTC)


def _supabase_folder(root: Path, files: dict[str, str]) -> Path:
    folder = root / "supabase" / "migrations"
    folder.mkdir(parents=True)
    for name, sql in files.items():
        (folder / name).write_text(sql)
    return root


async def _fetch(url: str, query: str, *args: object) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(query, *args)]
    finally:
        await conn.close()


def _states(status: object) -> dict[str, str]:
    return {f"{m.version}_{m.name}": m.states["target"] for m in status.migrations.data}  # type: ignore[attr-defined]


async def test_a_supabase_migration_reverted_by_the_cli_is_pending_and_deploy_applies_and_records_it_again(
    db18: str, tmp_path: Path
) -> None:
    root = _supabase_folder(
        tmp_path,
        {
            "20240101000000_notes.sql": "create table notes (id int);\n",
            "20240102000000_tags.sql": "create table tags (id int);\n",
        },
    )
    db = target(db18)
    try:
        assert (await deploy(db, "target", str(root))).status == "deployed"
        await _fetch(db18, SUPABASE_REVERT, ["20240102000000"])
        await run_sql(db18, "DROP TABLE tags;")  # the author undid it by hand, as repair expects
        reverted = await list_migrations(db, str(root))
        again = await deploy(db, "target", str(root))
        after = await list_migrations(db, str(root))
    finally:
        await db.close()
    assert _states(reverted) == {"20240101000000_notes": "applied", "20240102000000_tags": "pending"}
    assert not reverted.environments[0].in_sync and reverted.environments[0].pending == 1
    assert again.status == "deployed" and [a.version for a in again.applied] == ["20240102000000"]
    assert after.environments[0].in_sync
    assert await _fetch(db18, "SELECT version, statements FROM supabase_migrations.schema_migrations ORDER BY 1") == [
        ("20240101000000", ["create table notes (id int)"]),
        ("20240102000000", ["create table tags (id int)"]),
    ]
    ledger_rows = await _fetch(db18, "SELECT version, outcome FROM pgshift.migrations ORDER BY id")
    assert ledger_rows == [
        ("20240101000000", "applied"),
        ("20240102000000", "applied"),
        ("20240102000000", "applied"),
    ]


async def test_a_prisma_migration_marked_rolled_back_is_pending_and_deploy_records_a_new_prisma_row(
    db18: str, tmp_path: Path
) -> None:
    folder = prisma_folder(
        tmp_path,
        {"20240101000000_one": "CREATE TABLE one (id int);\n", "20240102000000_two": "CREATE TABLE two (id int);\n"},
    )
    db = target(db18)
    try:
        assert (await deploy(db, "target", str(folder))).status == "deployed"
        # A row with rolled_back_at set is one Prisma ignores, whatever our ledger and Supabase's table say.
        await run_sql(
            db18,
            "UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = '20240102000000_two';"
            "DROP TABLE two;",
        )
        rolled_back = await list_migrations(db, str(folder))
        again = await deploy(db, "target", str(folder))
        after = await list_migrations(db, str(folder))
    finally:
        await db.close()
    assert _states(rolled_back) == {"20240101000000_one": "applied", "20240102000000_two": "pending"}
    assert again.status == "deployed" and [a.version for a in again.applied] == ["20240102000000"]
    assert after.environments[0].in_sync
    rows = await _fetch(
        db18,
        "SELECT finished_at IS NOT NULL, rolled_back_at IS NOT NULL FROM _prisma_migrations "
        "WHERE migration_name = '20240102000000_two' ORDER BY started_at",
    )
    assert rows == [(True, True), (True, False)]
    assert await _fetch(db18, "SELECT version FROM supabase_migrations.schema_migrations ORDER BY 1") == [
        ("20240101000000",),
        ("20240102000000",),
    ]


async def test_a_failed_prisma_migration_resolved_as_rolled_back_is_pending_not_failed(
    db18: str, tmp_path: Path
) -> None:
    cic = "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY t_idx ON t (id);\n"
    folder = prisma_folder(tmp_path, {"20240101000000_cic": cic + "SELECT 1 / 0;\n"})
    db = target(db18)
    try:
        failed = await deploy(db, "target", str(folder))
        before = await list_migrations(db, str(folder))
        await _fetch(db18, PRISMA_ROLL_BACK, "20240101000000_cic")
        await run_sql(db18, "DROP TABLE t;")
        resolved = await list_migrations(db, str(folder))
        (folder / "20240101000000_cic" / "migration.sql").write_text(cic + "SELECT 1;\n")
        again = await deploy(db, "target", str(folder))
    finally:
        await db.close()
    assert failed.status == "failed"
    assert _states(before) == {"20240101000000_cic": "failed"}
    assert _states(resolved) == {"20240101000000_cic": "pending"}  # our ledger's failed attempt does not decide
    assert again.status == "deployed", again.message


async def test_the_supabase_row_holds_the_authors_statements_and_our_ledger_what_ran(db18: str, tmp_path: Path) -> None:
    script = "-- notes\ncreate table notes (id bigint primary key);\n\ncreate index notes_id on notes (id);\n"
    root = _supabase_folder(tmp_path, {"20240101000000_notes.sql": script})
    db = target(db18)
    try:
        result = await deploy(db, "target", str(root))
    finally:
        await db.close()
    assert result.status == "deployed"
    ran = [s.sql for s in result.applied[0].statements]
    assert ran != ["create table notes (id bigint primary key)", "create index notes_id on notes (id)"]
    assert await _fetch(db18, "SELECT statements FROM supabase_migrations.schema_migrations") == [
        (["create table notes (id bigint primary key)", "create index notes_id on notes (id)"],)
    ]
    assert await _fetch(db18, "SELECT statements FROM pgshift.migrations") == [(ran,)]


async def test_prisma_history_lives_in_the_schema_the_environment_url_names(db18: str, tmp_path: Path) -> None:
    folder = prisma_folder(tmp_path, {"20240101000000_one": "CREATE TABLE public.one (id int);\n"})
    db = Databases([Environment(name="target", url=f"{db18}?schema=app")])
    try:
        result = await deploy(db, "target", str(folder))
        status = await list_migrations(db, str(folder))
    finally:
        await db.close()
    assert result.status == "deployed", result.message
    assert status.environments[0].in_sync
    assert await _fetch(db18, "SELECT migration_name FROM app._prisma_migrations") == [("20240101000000_one",)]
    assert await _fetch(db18, "SELECT to_regclass('public._prisma_migrations')") == [(None,)]


# The rules themselves, on history values (no database needed).


def _migration(source: str) -> Migration:
    prisma_name = "20240101000000_one" if source == "prisma" else None
    return Migration(
        version="20240101000000",
        name="one",
        source=source,  # type: ignore[arg-type]
        sql="SELECT 1",
        checksum=checksum("SELECT 1"),
        prisma_name=prisma_name,
    )


def _ledger_row(outcome: str) -> ledger.LedgerRow:
    return ledger.LedgerRow(
        version="20240101000000",
        name="one",
        source="supabase",
        checksum=checksum("SELECT 1"),
        statements=["SELECT 1"],
        applied_by="me",
        client="pgshift",
        started_at=NOW,
        finished_at=NOW,
        duration_ms=1,
        outcome=outcome,  # type: ignore[arg-type]
    )


def _prisma_row(*, finished: bool, rolled_back: bool) -> ledger.PrismaRow:
    return ledger.PrismaRow(
        id="x",
        checksum=checksum("SELECT 1"),
        migration_name="20240101000000_one",
        started_at=NOW,
        finished_at=NOW if finished else None,
        rolled_back_at=NOW if rolled_back else None,
        applied_steps_count=1,
    )


def test_our_ledger_alone_never_makes_a_migration_applied() -> None:
    history = ledger.History(ledger=[_ledger_row("applied")])
    assert not history.is_applied(_migration("supabase"))
    assert not history.is_applied(_migration("prisma"))
    assert not history.is_applied(_migration("sql"))


def test_supabase_table_decides_for_supabase_and_loose_files_and_prisma_table_for_prisma() -> None:
    supabase = ledger.History(supabase=[ledger.SupabaseRow(version="20240101000000")])
    assert supabase.is_applied(_migration("supabase")) and supabase.is_applied(_migration("sql"))
    assert not supabase.is_applied(_migration("prisma"))
    prisma = ledger.History(prisma=[_prisma_row(finished=True, rolled_back=False)])
    assert prisma.is_applied(_migration("prisma")) and not prisma.is_applied(_migration("supabase"))


def test_prisma_rows_read_as_prisma_reads_them() -> None:
    def history(*rows: ledger.PrismaRow) -> ledger.History:
        return ledger.History(prisma=list(rows), ledger=[_ledger_row("applied")])

    m = _migration("prisma")
    rolled_back = history(_prisma_row(finished=True, rolled_back=True))
    assert not rolled_back.is_applied(m) and not rolled_back.is_failed(m)
    failed = history(_prisma_row(finished=False, rolled_back=False))
    assert not failed.is_applied(m) and failed.is_failed(m)
    resolved = history(_prisma_row(finished=False, rolled_back=True))
    assert not resolved.is_applied(m) and not resolved.is_failed(m)
    reapplied = history(_prisma_row(finished=True, rolled_back=True), _prisma_row(finished=True, rolled_back=False))
    assert reapplied.is_applied(m)


def test_a_failed_attempt_in_our_ledger_is_failed_only_where_the_ecosystem_has_no_notion_of_failure() -> None:
    history = ledger.History(ledger=[_ledger_row("failed")])
    assert history.is_failed(_migration("supabase"))
    assert not history.is_failed(_migration("prisma"))
