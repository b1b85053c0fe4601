"""Every migra conformance case, on real PostgreSQL: each side (a.sql, b.sql) loaded into PostgreSQL 18
and into PostgreSQL 15 compares equal (a self-compare across databases and versions), and the two sides
of a case differ, symmetrically."""

from __future__ import annotations

import asyncio

import pytest
from conftest import corpus_cases, corpus_root
from support_introspect import databases, describe, ensure_roles, has_icu, read

from pgshift.tools.diff import diff_schemas
from pgshift.tools.localpg import LocalPostgres, pg15_bin_dir
from pgshift.tools.model import Schema

CASES = corpus_cases("migra")


@pytest.fixture
def other_server(request: pytest.FixtureRequest) -> LocalPostgres:
    """PostgreSQL 15 when installed (cross-version check), else a second database on 18."""
    name = "pg15" if pg15_bin_dir() is not None else "pg18"
    server: LocalPostgres = request.getfixturevalue(name)
    return server


async def _usable(server: LocalPostgres, case: str) -> bool:
    await ensure_roles(server)
    return case != "collations" or await has_icu(server)


def _assert_same(one: Schema, two: Schema, what: str) -> None:
    diff = diff_schemas(one, two)
    # An extension's version is whatever each server ships (citext 1.6 on 15, 1.8 on 18): a real
    # difference between the two servers, not noise from the catalog, so it is set aside here only.
    rest = [c for c in diff.changes if not (c.kind == "extension" and [f.field for f in c.fields] == ["version"])]
    assert not rest, f"{what}:\n{describe(diff)}"
    assert not diff_schemas(two, one).changes or all(c.kind == "extension" for c in diff_schemas(two, one).changes)


@pytest.mark.parametrize("case", list(CASES))
async def test_each_side_of_a_corpus_case_compares_equal_across_databases_and_versions(
    pg18: LocalPostgres, other_server: LocalPostgres, case: str
) -> None:
    servers = [s for s in (pg18, other_server) if await _usable(s, case)]
    if len(servers) < 2:
        if not servers:
            pytest.skip("no server here has ICU collations (the collations case needs them)")
        servers = [servers[0], servers[0]]
    first, second = servers
    a_sql, b_sql = ((CASES[case] / f"{side}.sql").read_text() for side in "ab")
    async with databases((first, a_sql), (first, b_sql), (second, a_sql), (second, b_sql)) as urls:
        a_one, b_one, a_two, b_two = await asyncio.gather(*(read(url) for url in urls))
        a_again = await read(urls[0])
    assert a_again.fingerprint() == a_one.fingerprint()
    _assert_same(a_one, a_two, f"{case}/a.sql on {first.version} vs {second.version}")
    _assert_same(b_one, b_two, f"{case}/b.sql on {first.version} vs {second.version}")

    forward, backward = diff_schemas(b_one, a_one), diff_schemas(a_one, b_one)
    assert not forward.in_sync, f"{case}: a.sql and b.sql differ but no difference was found"
    assert sorted((c.kind, c.key) for c in forward.changes) == sorted((c.kind, c.key) for c in backward.changes)
    assert forward.summary()["added"] == backward.summary()["removed"]
    assert forward.summary()["changed"] == backward.summary()["changed"]


PRISMA = corpus_root() / "prisma" / "hoppscotch" / "migrations"


def _prisma_chain(upto: int | None = None) -> str:
    steps = sorted(p for p in PRISMA.iterdir() if (p / "migration.sql").exists())[:upto]
    return "\n".join((p / "migration.sql").read_text() for p in steps)


async def test_a_real_prisma_chain_compares_equal_across_versions_and_its_last_step_shows(
    pg18: LocalPostgres, other_server: LocalPostgres
) -> None:
    full, but_last = _prisma_chain(), _prisma_chain(-1)
    async with databases((pg18, full), (other_server, full), (pg18, but_last)) as urls:
        on18, other, before = await asyncio.gather(*(read(url) for url in urls))
    _assert_same(on18, other, f"hoppscotch chain on {pg18.version} vs {other_server.version}")
    last_step = diff_schemas(on18, before)
    assert not last_step.in_sync
    assert {c.kind for c in last_step.changes} <= {"table", "column", "constraint", "index", "enum"}
