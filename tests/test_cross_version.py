"""Source on PostgreSQL 18, target on 15 (Supabase's version): plans settle across versions.

The same DDL on both compares in sync and plans nothing; a plan never asks the target for an extension
version it cannot install; and over the migra corpus (a.sql on 15, b.sql on 18) every plan applies and a
second plan is empty. Convergence is judged by our own diff (in sync) and the empty re-plan: an independent
`pg_dump` of two different server versions differs in how each prints the same schema, which is exactly what
the diff's version equivalences forgive (the same cases are judged by `pg_dump` on one version in
`test_acceptance_migra.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from difflib import unified_diff
from pathlib import Path

import asyncpg
import pytest
from conftest import corpus_root, create_database, drop_database
from support_plan import apply_plan, ensure_role, has_icu, read_schema, run_sql
from support_prepare import available_extensions, make_supabase_shaped, without_unavailable_extensions

from pgshift.tools.diff import diff_schemas
from pgshift.tools.judge import dump_schema, normalise_dump
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.plan import plan_migration

CORPUS = corpus_root() / "migra"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "a.sql").exists()) if CORPUS.exists() else []

# What a Supabase app keeps in public: extensions, views (printed differently by 15 and 16+), grants to the
# platform roles, NOT NULL columns (named constraints on 18 only), an exclusion constraint over btree_gist.
APP = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
END $$;
CREATE EXTENSION citext;
CREATE EXTENSION btree_gist;
CREATE TABLE products (id int PRIMARY KEY, name citext NOT NULL, price numeric NOT NULL DEFAULT 0);
CREATE TABLE bookings (room int NOT NULL, during tstzrange NOT NULL, EXCLUDE USING gist (room WITH =, during WITH &&));
CREATE VIEW cheap AS SELECT id, name FROM products WHERE price < 10;
CREATE VIEW named AS SELECT p.name, b.room FROM products p JOIN bookings b ON b.room = p.id;
CREATE MATERIALIZED VIEW totals AS SELECT count(*) AS n FROM products;
GRANT SELECT ON cheap, named TO anon, authenticated;
GRANT ALL ON products TO authenticated;
"""


@pytest.fixture
async def pair(pg18: LocalPostgres, pg15: LocalPostgres) -> AsyncIterator[tuple[str, str]]:
    """(source on 18, target on 15): two new empty databases."""
    source, target = await asyncio.gather(create_database(pg18, "s18"), create_database(pg15, "t15"))
    yield source, target
    await asyncio.gather(drop_database(pg18, source), drop_database(pg15, target))


async def _grants(url: str) -> set[tuple[str, str, str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT table_name, grantee, privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee IN ('anon', 'authenticated')"
        )
        return {(r["table_name"], r["grantee"], r["privilege_type"]) for r in rows}
    finally:
        await conn.close()


async def _extensions(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        return {r["extname"]: r["extversion"] for r in await conn.fetch("SELECT extname, extversion FROM pg_extension")}
    finally:
        await conn.close()


async def test_the_same_ddl_on_18_and_15_compares_in_sync_and_plans_nothing_in_both_directions(
    pair: tuple[str, str],
) -> None:
    source, target = pair
    await asyncio.gather(run_sql(source, APP), run_sql(target, APP))
    on18, on15 = await asyncio.gather(read_schema(source), read_schema(target))
    for src, tgt in ((on18, on15), (on15, on18)):
        diff = diff_schemas(src, tgt)
        assert diff.in_sync, [(c.kind, c.key, [f.field for f in c.fields]) for c in diff.changes]
        plan = plan_migration(src, tgt)
        assert plan.is_empty, plan.script
    assert ("cheap", "anon", "SELECT") in await _grants(target)


async def test_a_plan_from_18_never_asks_a_15_target_for_an_extension_version_it_cannot_install(
    pair: tuple[str, str],
) -> None:
    source, target = pair
    await run_sql(source, APP)
    await run_sql(target, "CREATE EXTENSION btree_gist VERSION '1.6'")  # older than 15's default and 18's
    src, tgt = await asyncio.gather(read_schema(source), read_schema(target))
    on18 = {e.name: e.version for e in src.extensions}
    assert not tgt.can_install("citext", on18["citext"]), "the test needs a citext version 15 does not have"
    plan = plan_migration(src, tgt)
    assert not any(on18["citext"] in s.sql or on18["btree_gist"] in s.sql for s in plan.statements), plan.script
    await apply_plan(target, plan)
    installed = await _extensions(target)
    assert installed["citext"] == "1.6"  # 15's default version
    # Versions are compared only when the target could install the source's one: 1.6 stays (no update to a
    # version the source does not have either).
    assert installed["btree_gist"] == "1.6"
    after = await read_schema(target)
    assert diff_schemas(src, after).in_sync
    assert plan_migration(src, after).is_empty


@pytest.mark.parametrize("case", CASES)
async def test_a_migra_case_planned_from_18_onto_15_converges_with_an_empty_replan(
    pg18: LocalPostgres, pg15: LocalPostgres, pair: tuple[str, str], case: str
) -> None:
    folder = CORPUS / case
    if case == "collations" and not await has_icu(pg18.url()):
        pytest.skip(f"{pg18.version}: built without ICU, the case creates an ICU collation")
    await asyncio.gather(ensure_role(pg18.url()), ensure_role(pg15.url()))
    source, target = pair
    await asyncio.gather(
        run_sql(source, (folder / "b.sql").read_text()), run_sql(target, (folder / "a.sql").read_text())
    )
    src, tgt = await asyncio.gather(read_schema(source), read_schema(target))
    plan = plan_migration(src, tgt, allow_data_loss=True)
    await apply_plan(target, plan)
    after = await read_schema(target)
    diff = diff_schemas(src, after)
    assert diff.in_sync, f"{case}: {[(c.kind, c.key, c.change) for c in diff.changes]}\n{plan.script}"
    replan = plan_migration(src, after)
    assert replan.is_empty, f"{case}: second plan not empty\n{replan.script}"


# The real chains, each replayed on 18 (the source) and on 15 (the reference), and planned from 18 onto an empty 15
# (Supabase-shaped for the Supabase chain). chatbot-ui needs pgvector, which Debian's 15 lacks.
CHAINS = {
    "hoppscotch": corpus_root() / "prisma" / "hoppscotch" / "migrations",
    "umami": corpus_root() / "prisma" / "umami" / "migrations",
    "basejump": corpus_root() / "supabase" / "basejump" / "supabase" / "migrations",
}
# pgcrypto's gen_random_bytes where the server lacks pgcrypto (the embedded 18): basejump's functions call it.
RANDOM_BYTES = """
CREATE FUNCTION extensions.gen_random_bytes(n integer) RETURNS bytea LANGUAGE sql VOLATILE
AS $$ SELECT pg_catalog.decode(pg_catalog.repeat(pg_catalog.md5(pg_catalog.random()::text), 8), 'hex') $$
"""


def _chain_scripts(folder: Path, available: set[str]) -> list[str]:
    """The chain's files in order, without the extensions the source server cannot create (umami's unused pgcrypto
    on the embedded 18), so that the same statements run on both servers."""
    files = sorted(folder.glob("*/migration.sql")) or sorted(folder.glob("*.sql"))
    return [without_unavailable_extensions(path.read_text(), available)[0] for path in files]


async def _replay(url: str, scripts: list[str]) -> None:
    for script in scripts:
        await run_sql(url, script)


def _acl_order_aside(dump: str) -> str:
    """The judge's normal form with the grants of each ACL entry sorted: their order (the order of the GRANT
    statements, kept in the aclitem array) means nothing."""
    blocks = [b.split("\n") for b in dump.split("\n\n")]
    return "\n\n".join(
        sorted("\n".join(sorted(b) if all(ln.startswith(("GRANT ", "REVOKE ")) for ln in b) else b) for b in blocks)
    )


@pytest.mark.parametrize("chain", sorted(CHAINS))
async def test_a_real_chain_on_18_plans_onto_15_and_equals_the_chain_replayed_there(
    pg18: LocalPostgres, pg15: LocalPostgres, chain: str
) -> None:
    folder = CHAINS[chain]
    supabase = "supabase" in folder.parts
    source = await create_database(pg18, "s18")
    target, reference = await asyncio.gather(create_database(pg15, "t15"), create_database(pg15, "r15"))
    try:
        for url in (source, target, reference) if supabase else ():  # one after the other: cluster-wide roles
            await make_supabase_shaped(url)
        available = await available_extensions(source)
        if supabase and "pgcrypto" not in available:
            await run_sql(source, RANDOM_BYTES)
        scripts = _chain_scripts(folder, available)
        await asyncio.gather(_replay(source, scripts), _replay(reference, scripts))
        src, tgt = await asyncio.gather(read_schema(source), read_schema(target))
        plan = plan_migration(src, tgt)
        await apply_plan(target, plan)
        after, replayed = await asyncio.gather(read_schema(target), read_schema(reference))
        assert plan_migration(src, after).is_empty, f"{chain}: second plan not empty"
        assert plan_migration(src, replayed).is_empty, f"{chain}: the chain on 18 and on 15 differ"
        dumps = await asyncio.gather(dump_schema(target, pg15.bin_dir), dump_schema(reference, pg15.bin_dir))
        planned, replayed_dump = (_acl_order_aside(normalise_dump(d)) for d in dumps)
        diff = "".join(unified_diff(planned.splitlines(True), replayed_dump.splitlines(True), "planned", "replayed"))
        assert not diff, f"{chain}:\n{diff}"
    finally:
        await drop_database(pg18, source)
        await asyncio.gather(drop_database(pg15, target), drop_database(pg15, reference))
