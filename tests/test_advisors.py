"""get_advisors on real PostgreSQL: every lint flags the fixture made to trigger it and not its clean twin.

One Supabase-shaped database per PostgreSQL version holds every fixture (tables named lNN_hit / lNN_ok after the
lint's number); the advisors run once on it and each test reads the one report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from pgshift.tools.databases import Databases, Environment
from pgshift.tools.errors import ConfigError
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.watch import advisors
from pgshift.tools.watch.advisors import AdvisorReport, Lint

SUPABASE_SHAPE = (Path(__file__).resolve().parents[1] / "tools" / "sample" / "supabase_shape.sql").read_text()
EXPOSED = ["public", "pgmq_public"]

FIXTURES = """
CREATE TABLE l01_parent (id int PRIMARY KEY);
CREATE TABLE l01_hit (id int PRIMARY KEY, parent_id int REFERENCES l01_parent);
CREATE TABLE l01_ok (id int PRIMARY KEY, parent_id int REFERENCES l01_parent);
CREATE INDEX ON l01_ok (parent_id);

CREATE VIEW l02_hit AS SELECT id, email FROM auth.users;
GRANT SELECT ON l02_hit TO anon;
CREATE VIEW l02_ok AS SELECT id, email FROM auth.users;

CREATE TABLE l03_hit (id int PRIMARY KEY, owner uuid);
CREATE TABLE l03_ok (id int PRIMARY KEY, owner uuid);
ALTER TABLE l03_hit ENABLE ROW LEVEL SECURITY;
ALTER TABLE l03_ok ENABLE ROW LEVEL SECURITY;
CREATE POLICY mine ON l03_hit USING (owner = auth.uid());
CREATE POLICY mine ON l03_ok USING (owner = (SELECT auth.uid()));

CREATE TABLE l04_hit (id int);
CREATE TABLE l04_ok (id int PRIMARY KEY);

CREATE TABLE l05 (id int PRIMARY KEY, a int, b int);
CREATE INDEX l05_hit ON l05 (a);
CREATE INDEX l05_ok ON l05 (b);

CREATE TABLE l06_hit (id int PRIMARY KEY);
CREATE TABLE l06_ok (id int PRIMARY KEY);
ALTER TABLE l06_hit ENABLE ROW LEVEL SECURITY;
ALTER TABLE l06_ok ENABLE ROW LEVEL SECURITY;
CREATE POLICY one ON l06_hit FOR SELECT TO authenticated USING (id > 0);
CREATE POLICY two ON l06_hit FOR SELECT TO authenticated USING (id < 100);
CREATE POLICY one ON l06_ok FOR SELECT TO authenticated USING (id > 0);
CREATE POLICY two ON l06_ok FOR INSERT TO authenticated WITH CHECK (id > 0);

CREATE TABLE l07_hit (id int PRIMARY KEY);
CREATE TABLE l07_ok (id int PRIMARY KEY);
CREATE POLICY p ON l07_hit USING (id > 0);
CREATE POLICY p ON l07_ok USING (id > 0);
ALTER TABLE l07_ok ENABLE ROW LEVEL SECURITY;

CREATE TABLE l08_hit (id int PRIMARY KEY);
CREATE TABLE l08_ok (id int PRIMARY KEY);
ALTER TABLE l08_hit ENABLE ROW LEVEL SECURITY;
ALTER TABLE l08_ok ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON l08_ok USING (id > 0);

CREATE TABLE l09_hit (id int PRIMARY KEY, a int, b int);
CREATE INDEX l09_hit_a1 ON l09_hit (a);
CREATE INDEX l09_hit_a2 ON l09_hit (a);
CREATE TABLE l09_ok (id int PRIMARY KEY, a int, b int);
CREATE INDEX l09_ok_a ON l09_ok (a);
CREATE INDEX l09_ok_ab ON l09_ok (a, b);

CREATE VIEW l10_hit AS SELECT 1 AS x;
CREATE VIEW l10_ok WITH (security_invoker = on) AS SELECT 1 AS x;
GRANT SELECT ON l10_hit, l10_ok TO anon;

CREATE FUNCTION l11_hit() RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION l11_ok() RETURNS int LANGUAGE sql SET search_path = '' AS 'SELECT 1';

CREATE TABLE l13_hit (id int PRIMARY KEY);
CREATE TABLE l13_ok (id int PRIMARY KEY);
ALTER TABLE l13_ok ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON l13_hit, l13_ok TO anon;

CREATE EXTENSION cube;
CREATE SCHEMA l14;
CREATE EXTENSION hstore VERSION '1.4' SCHEMA l14;

CREATE TABLE l15_hit (id int PRIMARY KEY);
CREATE TABLE l15_ok (id int PRIMARY KEY);
ALTER TABLE l15_hit ENABLE ROW LEVEL SECURITY;
ALTER TABLE l15_ok ENABLE ROW LEVEL SECURITY;
CREATE POLICY admins ON l15_hit USING (((SELECT auth.jwt()) -> 'user_metadata' ->> 'role') = 'admin');
CREATE POLICY admins ON l15_ok USING (((SELECT auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

CREATE MATERIALIZED VIEW l16_hit AS SELECT 1 AS x;
CREATE MATERIALIZED VIEW l16_ok AS SELECT 1 AS x;
GRANT SELECT ON l16_hit TO anon;

CREATE FOREIGN DATA WRAPPER l17_fdw;
CREATE SERVER l17_server FOREIGN DATA WRAPPER l17_fdw;
CREATE FOREIGN TABLE l17_hit (id int) SERVER l17_server;
CREATE FOREIGN TABLE l17_ok (id int) SERVER l17_server;
GRANT SELECT ON l17_hit TO authenticated;

CREATE TABLE l18_hit (id int PRIMARY KEY, fn regproc);
CREATE TABLE l18_ok (id int PRIMARY KEY, t regclass);

CREATE SCHEMA pgmq;
GRANT USAGE ON SCHEMA pgmq TO anon;
CREATE TABLE pgmq.q_hit (msg_id bigint PRIMARY KEY);
CREATE TABLE pgmq.q_ok (msg_id bigint PRIMARY KEY);
ALTER TABLE pgmq.q_ok ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON pgmq.q_hit, pgmq.q_ok TO anon;

CREATE TABLE l20_hit (id int PRIMARY KEY, filler text);
INSERT INTO l20_hit SELECT g, repeat('x', 1900) FROM generate_series(1, 12000) AS g;
DELETE FROM l20_hit WHERE id < 12000;
CREATE TABLE l20_ok (id int PRIMARY KEY, filler text);
INSERT INTO l20_ok SELECT g, 'x' FROM generate_series(1, 100) AS g;

CREATE TABLE l21_hit (id int PRIMARY KEY, phone text REFERENCES auth.users (phone));
CREATE TABLE l21_ok (id int PRIMARY KEY, user_id uuid REFERENCES auth.users (id));

CREATE TABLE l23_hit (id int PRIMARY KEY, password text);
CREATE TABLE l23_ok (id int PRIMARY KEY, password text);
ALTER TABLE l23_ok ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON l23_hit, l23_ok TO anon;

CREATE TABLE l24_hit (id int PRIMARY KEY, owner uuid);
CREATE TABLE l24_ok (id int PRIMARY KEY, owner uuid);
ALTER TABLE l24_hit ENABLE ROW LEVEL SECURITY;
ALTER TABLE l24_ok ENABLE ROW LEVEL SECURITY;
CREATE POLICY anyone ON l24_hit FOR UPDATE TO authenticated USING (true);
CREATE POLICY readers ON l24_ok FOR SELECT TO anon USING (true);
CREATE POLICY owners ON l24_ok FOR UPDATE TO authenticated USING (owner = (SELECT auth.uid()));

INSERT INTO storage.buckets (id, name, public) VALUES ('l25_hit', 'l25_hit', true), ('l25_ok', 'l25_ok', true);
CREATE POLICY l25_listing ON storage.objects FOR SELECT TO anon USING (bucket_id = 'l25_hit');
CREATE POLICY l25_own ON storage.objects FOR SELECT TO authenticated
  USING (bucket_id = 'l25_ok' AND owner = (SELECT auth.uid()));

CREATE TABLE l26_hit (id int PRIMARY KEY, secret text);
CREATE TABLE l26_ok (id int PRIMARY KEY);
GRANT SELECT (id) ON l26_hit TO anon, authenticated;

CREATE FUNCTION l28_hit() RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = '' AS 'SELECT 1';
CREATE FUNCTION l28_ok() RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = '' AS 'SELECT 1';
REVOKE EXECUTE ON FUNCTION l28_ok() FROM PUBLIC;
"""

# Statements that cannot run in the script's implicit transaction, then the index use lint 0005 must not flag.
AFTER = [
    "VACUUM l20_hit",
    "ANALYZE l20_hit",
    "ANALYZE l20_ok",
    "SET enable_seqscan = off",
    "SELECT * FROM l05 WHERE b = 1",
    "SELECT pg_stat_force_next_flush()",  # flushed before this statement's answer arrives
]

# lint → (metadata key, the value it must flag, the value it must not flag)
CASES: dict[str, tuple[str, str, str]] = {
    "unindexed_foreign_keys": ("name", "l01_hit", "l01_ok"),
    "auth_users_exposed": ("name", "l02_hit", "l02_ok"),
    "auth_rls_initplan": ("name", "l03_hit", "l03_ok"),
    "no_primary_key": ("name", "l04_hit", "l04_ok"),
    "unused_index": ("index", "l05_hit", "l05_ok"),
    "multiple_permissive_policies": ("name", "l06_hit", "l06_ok"),
    "policy_exists_rls_disabled": ("name", "l07_hit", "l07_ok"),
    "rls_enabled_no_policy": ("name", "l08_hit", "l08_ok"),
    "duplicate_index": ("name", "l09_hit", "l09_ok"),
    "security_definer_view": ("name", "l10_hit", "l10_ok"),
    "function_search_path_mutable": ("name", "l11_hit", "l11_ok"),
    "rls_disabled_in_public": ("name", "l13_hit", "l13_ok"),
    "extension_in_public": ("name", "cube", "hstore"),
    "rls_references_user_metadata": ("name", "l15_hit", "l15_ok"),
    "materialized_view_in_api": ("name", "l16_hit", "l16_ok"),
    "foreign_table_in_api": ("name", "l17_hit", "l17_ok"),
    "unsupported_reg_types": ("name", "l18_hit", "l18_ok"),
    "insecure_queue_exposed_in_api": ("name", "q_hit", "q_ok"),
    "table_bloat": ("name", "l20_hit", "l20_ok"),
    "fkey_to_auth_unique": ("name", "l21_hit", "l21_ok"),
    "extension_versions_outdated": ("name", "hstore", "cube"),
    "sensitive_columns_exposed": ("name", "l23_hit", "l23_ok"),
    "rls_policy_always_true": ("name", "l24_hit", "l24_ok"),
    "public_bucket_allows_listing": ("bucket_id", "l25_hit", "l25_ok"),
    "anon_security_definer_function_executable": ("name", "l28_hit", "l28_ok"),
    "authenticated_security_definer_function_executable": ("name", "l28_hit", "l28_ok"),
}
# pg_graphql is not installable on these servers: the lint is skipped, and its query is run directly.
GRAPHQL_CASES: dict[str, tuple[str, str]] = {
    "pg_graphql_anon_table_exposed": ("l26_hit", "l26_ok"),
    "pg_graphql_authenticated_table_exposed": ("l26_hit", "l26_ok"),
}
NEVER_IN_A_DATABASE = {"auth_allow_anonymous_sign_ins"}


@dataclass(frozen=True)
class Linted:
    url: str
    report: AdvisorReport


async def _prepare(server: LocalPostgres) -> Linted:
    from conftest import create_database

    url = await create_database(server, "adv")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(SUPABASE_SHAPE)
        await conn.execute(FIXTURES)
        for statement in AFTER:
            await conn.execute(statement)
    finally:
        await conn.close()
    return Linted(url, await _advise(url, "all", EXPOSED))


async def _advise(url: str, kind: advisors.Kind, exposed: list[str] | None) -> AdvisorReport:
    db = Databases([Environment(name="local", url=url)])
    try:
        return await advisors.get_advisors(db, "local", kind, exposed)
    finally:
        await db.close()


@pytest.fixture(scope="module", params=["pg18", "pg15"])
def linted(request: pytest.FixtureRequest) -> Iterator[Linted]:
    """Every fixture in one Supabase-shaped database, and the advisors' report on it (once per version)."""
    from conftest import drop_database

    server: LocalPostgres = request.getfixturevalue(request.param)
    result = asyncio.run(_prepare(server))
    yield result
    asyncio.run(drop_database(server, result.url))


def flagged(report: AdvisorReport, lint: str, key: str) -> set[str]:
    return {str(a.metadata.get(key)) for a in report.lints.data if a.name == lint}


def test_every_declared_lint_has_a_trigger_case() -> None:
    names = {lint.name for lint in advisors.load_lints()}
    assert names == set(CASES) | set(GRAPHQL_CASES) | NEVER_IN_A_DATABASE
    assert len(names) == len(advisors.load_lints())  # no two files declare one name


@pytest.mark.parametrize("lint", sorted(CASES))
def test_each_lint_flags_its_trigger_and_not_its_clean_twin(linted: Linted, lint: str) -> None:
    key, hit, clean = CASES[lint]
    assert lint in linted.report.checked, (linted.report.skipped, linted.report.failed)
    found = flagged(linted.report, lint, key)
    assert hit in found, f"{lint} missed {hit}: {found}"
    assert clean not in found, f"{lint} flagged the clean {clean}"


def test_findings_carry_splinters_fields_most_severe_first(linted: Linted) -> None:
    report = linted.report
    assert report.failed == []
    rls = next(a for a in report.lints.data if a.name == "rls_disabled_in_public")
    assert rls.level == "ERROR" and rls.facing == "EXTERNAL" and rls.categories == ["SECURITY"]
    assert rls.detail == "Table `public.l13_hit` is public, but RLS has not been enabled."
    assert rls.remediation.endswith("lint=0013_rls_disabled_in_public")
    assert rls.cache_key == "rls_disabled_in_public_public_l13_hit"
    assert rls.metadata == {"schema": "public", "name": "l13_hit", "type": "table"}
    levels = [advisors.LEVELS.index(a.level) for a in report.lints.data]
    assert levels == sorted(levels)
    assert report.counts == {level: sum(a.level == level for a in report.lints.data) for level in advisors.LEVELS}
    assert report.lints.untrusted and report.lints.boundary_open.startswith("<untrusted-data-")


def test_lints_that_need_what_the_server_lacks_are_named_as_skipped(linted: Linted) -> None:
    skipped = {s.name: s.reason for s in linted.report.skipped}
    assert set(skipped) == set(GRAPHQL_CASES) | NEVER_IN_A_DATABASE
    assert all("pg_graphql" in skipped[name] for name in GRAPHQL_CASES)
    assert "outside the database" in skipped["auth_allow_anonymous_sign_ins"]


@pytest.mark.parametrize("lint", sorted(GRAPHQL_CASES))
async def test_pg_graphql_lint_queries_flag_tables_the_role_can_select(linted: Linted, lint: str) -> None:
    (declared,) = [candidate for candidate in advisors.load_lints() if candidate.name == lint]
    hit, clean = GRAPHQL_CASES[lint]
    conn = await asyncpg.connect(linted.url)
    try:
        names = {a.metadata["name"] for a in await advisors.run_lint(conn, declared, EXPOSED)}
    finally:
        await conn.close()
    assert hit in names and clean not in names


async def test_exposed_schemas_decide_what_counts_as_exposed(linted: Linted) -> None:
    report = await _advise(linted.url, "security", ["l14"])
    assert "rls_disabled_in_public" in report.checked
    assert flagged(report, "rls_disabled_in_public", "name") == set()
    assert flagged(report, "extension_in_public", "name") == {"hstore"}
    assert all("SECURITY" in a.categories for a in report.lints.data)
    assert "unused_index" not in report.checked  # a performance lint


async def test_kind_performance_runs_only_performance_lints(linted: Linted) -> None:
    report = await _advise(linted.url, "performance", None)
    declared = {lint.name for lint in advisors.load_lints() if "PERFORMANCE" in lint.categories}
    assert set(report.checked) == declared
    assert {a.name for a in report.lints.data} <= declared


async def test_on_plain_postgresql_supabase_only_lints_are_skipped_with_the_reason(fresh_db: str) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute("CREATE TABLE plain (id int)")
    finally:
        await conn.close()
    report = await _advise(fresh_db, "all", None)
    skipped = {s.name: s.reason for s in report.skipped}
    for name in ("auth_users_exposed", "fkey_to_auth_unique"):
        assert "auth.users" in skipped[name]
    assert "storage" in skipped["public_bucket_allows_listing"]
    assert "pgmq" in skipped["insecure_queue_exposed_in_api"]
    assert report.failed == []
    assert "plain" in flagged(report, "no_primary_key", "name")


async def test_a_lint_that_tries_to_write_fails_read_only_and_the_others_still_run(fresh_db: str) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute(
            "CREATE FUNCTION sneaky() RETURNS text LANGUAGE plpgsql AS "
            "$$BEGIN CREATE TABLE pwned (id int); RETURN 'x'; END$$; CREATE TABLE keyless (id int)"
        )
    finally:
        await conn.close()
    writer = Lint(
        name="writer",
        title="Writer",
        level="ERROR",
        categories=("SECURITY",),
        description="tries to write",
        remediation="-",
        query="SELECT sneaky() AS detail, NULL::jsonb AS metadata, 'k' AS cache_key",
    )
    (no_pk,) = [lint for lint in advisors.load_lints() if lint.name == "no_primary_key"]
    db = Databases([Environment(name="local", url=fresh_db)])
    try:
        report = await advisors.get_advisors(db, "local", "all", None, lints=[writer, no_pk])
    finally:
        await db.close()
    assert [(f.name, f.sqlstate) for f in report.failed] == [("writer", "25006")]  # read_only_sql_transaction
    assert "keyless" in flagged(report, "no_primary_key", "name")
    check = await asyncpg.connect(fresh_db)
    try:
        assert await check.fetchval("SELECT to_regclass('public.pwned')") is None
    finally:
        await check.close()


def test_a_lint_file_without_its_declaration_is_refused() -> None:
    with pytest.raises(ConfigError, match="lacks header"):
        advisors.parse_lint("-- name: x\nSELECT 1", "x.sql")
    with pytest.raises(ConfigError, match="unknown requirement"):
        advisors.parse_lint(
            "-- name: x\n-- title: X\n-- level: WARN\n-- categories: SECURITY\n-- requires: nonsense\n"
            "-- description: d\n-- remediation: r\nSELECT 1",
            "x.sql",
        )


def test_exposed_schemas_must_name_a_schema() -> None:
    with pytest.raises(ConfigError, match="at least one schema"):
        advisors.exposed_list([])
    assert advisors.exposed_list(None) == ["public"]
