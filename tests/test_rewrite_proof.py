"""Every rewrite is proven on the target before it runs: both scripts dry-run, same schema, else the original runs.

The proof (`tools.migrations.check.prove_rewrite`) dry-runs the script without guards and the guarded one on the
target, each rolled back, and keeps the guards only when both succeed and leave the same schema. check_migration
reports the proof; apply_migration runs what it chose and says why when the guards were dropped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import pytest
from conftest import create_database, drop_database
from support_prepare import (
    CORPUS,
    Chain,
    available_extensions,
    chains,
    execute,
    make_supabase_shaped,
    without_unavailable_extensions,
)

from pgshift.tools.apply import apply_migration
from pgshift.tools.databases import Databases
from pgshift.tools.errors import PgshiftError
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.migrations.check import check_migration, prove_rewrite, render_text
from pgshift.tools.migrations.parse import split_statements

SEED = "CREATE TABLE account (id int PRIMARY KEY, email text);\nINSERT INTO account VALUES (1, 'a@example.com');\n"
# `other` comes first on the search_path: an unqualified `to_regclass('renamed')` finds other.renamed, while
# `ALTER TABLE account RENAME TO renamed` renames public.account. A catalog guard would skip the rename.
SHADOWED = "CREATE SCHEMA other;\nCREATE TABLE other.renamed (id int);\n"


@pytest.fixture
async def seeded(fresh_db: str) -> AsyncIterator[tuple[Databases, str]]:
    await execute(fresh_db, SEED)
    db = Databases.from_urls({"target": fresh_db})
    try:
        yield db, fresh_db
    finally:
        await db.close()


async def _shadow_the_new_name(url: str) -> None:
    await execute(url, SHADOWED)
    conn = await asyncpg.connect(url)
    try:
        database = await conn.fetchval("SELECT current_database()")
    finally:
        await conn.close()
    await execute(url, f'ALTER DATABASE "{database}" SET search_path = other, public')


async def test_a_guard_that_changes_nothing_on_the_target_is_proven_and_runs(seeded: tuple[Databases, str]) -> None:
    db, _ = seeded
    result = await check_migration(db, "target", sql="CREATE TABLE note (id int);\nCREATE INDEX note_id ON note (id);")
    assert result.rewrite_proof.status == "proven" and result.rewrite_proof.guarded
    assert "CREATE TABLE IF NOT EXISTS note" in result.script
    assert result.dry_run is not None and result.dry_run.succeeded and result.ok
    assert "rewrite proof (proven)" in render_text(result)


async def test_a_script_that_fails_as_written_keeps_failing_instead_of_being_guarded_into_success(
    seeded: tuple[Databases, str],
) -> None:
    db, _ = seeded
    result = await check_migration(db, "target", sql="CREATE TABLE account (id int PRIMARY KEY, email text);")
    assert result.rewrite_proof.status == "refused"
    assert "fails on the target" in result.rewrite_proof.reason
    assert result.script.strip() == "CREATE TABLE account (id int PRIMARY KEY, email text);"
    assert result.statements[0].sql == result.statements[0].original
    assert not result.ok and any("dry run failed" in b for b in result.blockers)


async def test_a_guard_that_would_skip_what_the_original_does_is_refused_and_the_original_is_checked(
    seeded: tuple[Databases, str],
) -> None:
    db, url = seeded
    await _shadow_the_new_name(url)
    result = await check_migration(db, "target", sql="ALTER TABLE account RENAME TO renamed;")
    assert result.rewrite_proof.status == "refused"
    assert "another schema" in result.rewrite_proof.reason
    assert result.script.strip() == "ALTER TABLE account RENAME TO renamed;"
    assert result.dry_run is not None and result.dry_run.succeeded
    changes = {(c.kind, c.key, c.change) for c in result.dry_run.changes.data}
    assert ("table", "public.renamed", "added") in changes and ("table", "public.account", "removed") in changes


async def test_apply_runs_the_original_when_the_guard_is_not_proven_and_says_why(
    seeded: tuple[Databases, str],
) -> None:
    db, url = seeded
    await _shadow_the_new_name(url)
    result = await apply_migration(db, "target", "rename", sql="ALTER TABLE account RENAME TO renamed;", version="1")
    assert result.status == "applied"
    assert "Without idempotency guards" in result.message and "another schema" in result.message
    assert [s.sql for s in result.statements] == ["ALTER TABLE account RENAME TO renamed"]
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT to_regclass('public.renamed') IS NOT NULL")
        assert await conn.fetchval("SELECT to_regclass('public.account') IS NULL")
    finally:
        await conn.close()


async def test_an_insert_meant_to_fail_on_a_duplicate_still_fails_on_apply(seeded: tuple[Databases, str]) -> None:
    db, url = seeded
    with pytest.raises(PgshiftError) as info:
        await apply_migration(
            db, "target", "dup", sql="INSERT INTO account VALUES (1, 'again@example.com');", version="1"
        )
    assert "nothing of this migration remains" in str(info.value) or "rolled back" in str(info.value)
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT email FROM account WHERE id = 1") == "a@example.com"
    finally:
        await conn.close()


def _all_chains() -> list[Chain]:
    return [
        *chains(),
        Chain(
            "umami", tuple(sorted((CORPUS / "prisma" / "umami" / "migrations").glob("*/migration.sql"))), supabase=False
        ),
        Chain(
            "basejump",
            tuple(sorted((CORPUS / "supabase" / "basejump" / "supabase" / "migrations").glob("*.sql"))),
            supabase=True,
        ),
    ]


# What the proof decides over each corpus chain, replayed migration by migration (see the README's figures).
# chatbot-ui and basejump: the refused scripts hold a statement `tools.safety` keeps off the real target (a default
# calling the uuid_generate_v4() stand-in, functions running dynamic SQL): not provable there, so they run as written.
EXPECTED: dict[str, dict[str, int]] = {
    "hoppscotch": {"proven": 18, "not_needed": 3},
    "umami": {"proven": 18, "not_needed": 1},
    "chatbot-ui": {"proven": 10, "refused": 14, "not_needed": 1},
    "basejump": {"refused": 4},
}


@pytest.mark.parametrize("chain", _all_chains(), ids=lambda c: c.name)
async def test_over_the_corpus_chains_every_rewrite_is_proven_or_refused_before_it_runs(
    chain: Chain, request: pytest.FixtureRequest
) -> None:
    # chatbot-ui needs pgvector (only the embedded PostgreSQL 18 ships it); basejump needs pgcrypto (only 15 does).
    server: LocalPostgres = request.getfixturevalue("pg18" if chain.name == "chatbot-ui" else "pg15")
    url = await create_database(server, "prf")
    db = Databases.from_urls({"target": url})
    try:
        if chain.supabase:
            await make_supabase_shaped(url)
        available = await available_extensions(url)
        counts: Counter[str] = Counter()
        refused: list[str] = []
        for path in chain.files:
            script, _ = without_unavailable_extensions(path.read_text(), available)
            proven = await prove_rewrite(db, "target", split_statements(script), supabase=chain.supabase)
            counts[proven.proof.status] += 1
            if proven.proof.status == "refused":
                refused.append(f"{chain.label(path)}: {proven.proof.reason}")
            await execute(url, proven.rewritten.script)
        assert sum(counts.values()) == len(chain.files) > 0
        assert dict(counts) == EXPECTED[chain.name], refused
        assert all("does not run on 'target'" in r for r in refused), refused
    finally:
        await db.close()
        await drop_database(server, url)
