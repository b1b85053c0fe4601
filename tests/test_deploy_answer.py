"""deploy's MCP answer stays under the token budget at 500 migrations, with every migration listed once."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from mcp import Client

from pgshift.server.app import build_app
from pgshift.tools.databases import Environment
from pgshift.tools.deploy import DeployAnswer, DeployCounts, DeployResult, deploy_answer
from pgshift.tools.migrations.runner import ApplyResult, PlannedStatement

BUDGET_TOKENS = 20_000
COUNT = 500


def write_folder(project: Path, count: int, failing: int | None = None) -> list[str]:
    """`count` one-statement Prisma migrations (a table each); migration `failing` (1-based) cannot run."""
    labels = []
    for i in range(1, count + 1):
        label = f"2024{i:010d}_add_t{i:04d}"
        sql = f'CREATE TABLE "t{i:04d}" ("id" INTEGER NOT NULL, CONSTRAINT "t{i:04d}_pkey" PRIMARY KEY ("id"));\n'
        if i == failing:
            sql += 'ALTER TABLE "missing_table" ADD COLUMN "x" INTEGER;\n'
        folder = project / "prisma" / "migrations" / label
        folder.mkdir(parents=True)
        (folder / "migration.sql").write_text(sql)
        labels.append(label)
    return labels


async def deploy_over_mcp(url: str, **args: object) -> tuple[str, dict[str, object]]:
    envs = [Environment(name="local", url=url)]
    async with Client(build_app(lambda: envs)) as client:
        out = await client.call_tool("deploy", {"environment": "local", "directory": "prisma/migrations", **args})
    assert not out.is_error and out.structured_content is not None, out.content
    text = "".join(getattr(c, "text", "") for c in out.content)
    return text, out.structured_content


async def tables(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 't%'")
        )
    finally:
        await conn.close()


def applied(i: int) -> ApplyResult:
    """What deploy records for one applied Prisma migration of five statements (a table with an index and a
    foreign key), with a snapshot and kept data."""
    sql = [
        f'CREATE TABLE IF NOT EXISTS "t{i:04d}" ("id" INTEGER NOT NULL, "body" TEXT, "owner" INTEGER)',
        f'ALTER TABLE "t{i:04d}" ADD CONSTRAINT "t{i:04d}_pkey" PRIMARY KEY ("id")',
        f'CREATE INDEX IF NOT EXISTS "t{i:04d}_owner_idx" ON "t{i:04d}"("owner")',
        f'ALTER TABLE "t{i:04d}" ADD CONSTRAINT "t{i:04d}_owner_fkey" FOREIGN KEY ("owner") REFERENCES "t0001"("id")',
        f'ALTER TABLE "t{i:04d}" DROP COLUMN IF EXISTS "legacy"',
    ]
    return ApplyResult(
        environment="local",
        version=f"2024{i:010d}",
        name=f"add_t{i:04d}",
        source="prisma",
        checksum="0" * 64,
        status="applied",
        mode="single_transaction",
        statements=[PlannedStatement(index=n, line=n, sql=s, transactional=True) for n, s in enumerate(sql, 1)],
        recorded_in=["pgshift.migrations", "supabase_migrations.schema_migrations", "public._prisma_migrations"],
        duration_ms=12,
        snapshot_id=1000 + i,
        kept_bytes=2048,
        message="applied",
    )


def tokens(answer: DeployAnswer) -> float:
    """Estimated tokens of the text content the server sends (compact JSON without nulls, see registry.compact)."""
    return len(answer.model_dump_json(by_alias=True, exclude_none=True)) / 4


def test_a_deploy_of_500_migrations_answers_under_budget_listing_each_migration_once() -> None:
    # A real deploy of 500 migrations takes about two minutes (a snapshot before each): the engine's result is built
    # here in its recorded shape; test_a_failed_deploy_... below goes through the server and a database.
    runs = [applied(i) for i in range(1, COUNT + 1)]
    labels = [f"{a.version}_{a.name}" for a in runs]
    result = DeployResult(
        environment="local", directory="prisma/migrations", status="deployed", applied=runs, pending=labels
    )
    whole = len(result.model_dump_json(exclude_none=True)) / 4
    answer = deploy_answer(result)
    assert tokens(answer) < BUDGET_TOKENS < whole, (tokens(answer), whole)
    assert answer.counts == DeployCounts(pending=COUNT, applied=COUNT, failed=0, not_run=0)
    assert [f"{r.version}_{r.name}" for r in answer.migrations] == labels and answer.rows_shown == COUNT
    assert all(r.statements == 5 and r.snapshot_id and r.kept_bytes == 2048 for r in answer.migrations)
    assert answer.first_snapshot_id == 1001 and answer.kept_bytes == 2048 * COUNT
    assert answer.recorded_in == runs[0].recorded_in
    assert "CREATE TABLE" not in answer.model_dump_json() and "list_migrations" in answer.next_step


def test_beyond_the_row_budget_the_answer_says_how_many_are_listed_and_where_the_rest_is() -> None:
    runs = [applied(i) for i in range(1, 2001)]
    result = DeployResult(environment="local", directory="d", status="deployed", applied=runs)
    answer = deploy_answer(result, detail=True)
    assert tokens(answer) < BUDGET_TOKENS
    assert answer.counts.applied == 2000 and 0 < answer.rows_shown == len(answer.migrations) < 2000
    assert f"first {answer.rows_shown} of 2000" in answer.next_step and "pgshift deploy --json" in answer.next_step
    assert answer.detail is not None and 0 < len(answer.detail) < 2000
    assert answer.detail == runs[: len(answer.detail)]


async def test_a_failed_deploy_answers_the_failed_migration_with_its_error_and_statements_only(
    db18: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = write_folder(tmp_path, 6, failing=4)
    monkeypatch.chdir(tmp_path)
    _, answer = await deploy_over_mcp(db18)
    assert answer["status"] == "failed" and answer["failed"] == labels[3]
    assert answer["counts"] == {"pending": 6, "applied": 3, "failed": 1, "not_run": 2}
    rows = answer["migrations"]
    assert isinstance(rows, list)
    assert [(f"{r['version']}_{r['name']}", r["status"]) for r in rows] == [
        *((label, "applied") for label in labels[:3]),
        (labels[3], "failed"),
        *((label, "not_run") for label in labels[4:]),
    ]
    statements = answer["failed_statements"]
    assert isinstance(statements, list) and [s["index"] for s in statements] == [1, 2]
    assert "missing_table" in statements[1]["sql"] and "missing_table" in str(answer["error"])
    assert answer.get("detail") is None
    assert await tables(db18) == 3


async def test_detail_true_carries_the_applied_migrations_statements(
    db18: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_folder(tmp_path, 2)
    monkeypatch.chdir(tmp_path)
    _, answer = await deploy_over_mcp(db18, detail=True)
    detail = answer["detail"]
    assert isinstance(detail, list) and [len(d["statements"]) for d in detail] == [1, 1]
    assert '"t0001"' in detail[0]["statements"][0]["sql"]


async def test_apply_migration_of_400_statements_answers_under_budget_with_the_first_ones_in_order(
    db18: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sql = "".join(f'CREATE TABLE "t{i:04d}" ("id" INTEGER NOT NULL, "note" TEXT);\n' for i in range(1, 401))
    envs = [Environment(name="local", url=db18)]
    async with Client(build_app(lambda: envs)) as client:
        out = await client.call_tool("apply_migration", {"environment": "local", "name": "many", "sql": sql})
    assert not out.is_error and out.structured_content is not None, out.content
    text = "".join(getattr(c, "text", "") for c in out.content)
    answer = out.structured_content
    assert len(text) / 4 < BUDGET_TOKENS and answer["status"] == "applied", len(text)
    shown = answer["statements"]
    assert answer["statements_total"] == 400 and 0 < len(shown) < 400
    assert [s["index"] for s in shown] == list(range(1, len(shown) + 1))
    assert f"first {len(shown)} of 400" in answer["statements_note"]
    assert await tables(db18) == 400
