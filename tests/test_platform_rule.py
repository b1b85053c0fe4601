"""One platform rule (`tools.introspect.platform`) for compare, plan, drift, adopt and revert, on a Supabase-shaped
target reached as a NOSUPERUSER `postgres`-like role, with the platform state Supabase's init script gives a project:
`GRANT USAGE ON SCHEMA public TO postgres, anon, authenticated, service_role`, the nine `ALTER DEFAULT PRIVILEGES
FOR ROLE <owner> IN SCHEMA public GRANT ALL ON TABLES|FUNCTIONS|SEQUENCES TO anon, authenticated, service_role`, and
pg_stat_statements beside pgcrypto and uuid-ossp in `extensions` (where the server has them).

- a fresh project: compare with an empty local database is in sync and plans nothing; drift is none;
- a deployed chain: drift is none (the replay gives its tables what the platform's default privileges give);
- a grant to anon beyond the defaults, by hand: exactly that one drift, adopt writes exactly it, revert plans
  exactly its revoke;
- a migration's `alter role authenticator set pgrst... to 'true'` replays (as on Supabase), scoped to the copy;
- no answer names one of pgshift's internal roles.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from conftest import create_database, drop_database
from pglast import parse_sql

from pgshift.tools.compare import PlanOptions, compare_schemas
from pgshift.tools.databases import Databases, Environment
from pgshift.tools.deploy import deploy
from pgshift.tools.diff import diff_schemas, with_platform_state_of
from pgshift.tools.introspect.platform import PlatformGrants, platform_role_setting, without_internal_roles
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.model import DefaultPrivilege, Extension, Privilege, Schema
from pgshift.tools.watch.drift import detect_drift

SUPABASE_SHAPE = (Path(__file__).resolve().parents[1] / "tools" / "sample" / "supabase_shape.sql").read_text()
OWNER = "pgshift_sb_postgres"  # stands for a hosted project's `postgres`: no superuser
READER = "pgshift_sb_reader"
PASSWORD = "pgshift-sb-postgres-pw"
ENV = "production"
INTERNAL = ("pgshift_expected_", "pgshift_shadow_", "pgshift_snapshot_")

# Roles are cluster-wide: created once per server, never dropped (other databases may use them).
ROLES = f"""
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{OWNER}') THEN
    CREATE ROLE {OWNER} LOGIN NOSUPERUSER CREATEDB CREATEROLE BYPASSRLS PASSWORD '{PASSWORD}';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticator') THEN
    CREATE ROLE authenticator LOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER}') THEN CREATE ROLE {READER} NOLOGIN; END IF;
END
$$;
"""
# Supabase's init script (supabase/postgres migrations/db/init-scripts/00000000000000-initial-schema.sql), run as the
# project's owner role (there: postgres, a superuser while the image is built), plus what a hosted postgres holds
# on the platform's schemas; run here by the server's superuser.
PLATFORM = f"""
GRANT usage ON SCHEMA public TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} IN SCHEMA public
  GRANT ALL ON TABLES TO {OWNER}, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} IN SCHEMA public
  GRANT ALL ON FUNCTIONS TO {OWNER}, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} IN SCHEMA public
  GRANT ALL ON SEQUENCES TO {OWNER}, anon, authenticated, service_role;
GRANT USAGE ON SCHEMA extensions TO {OWNER}, anon, authenticated, service_role;
GRANT USAGE ON SCHEMA auth, storage TO {OWNER};
GRANT ALL ON ALL TABLES IN SCHEMA auth, storage TO {OWNER};
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA auth TO {OWNER};
GRANT authenticator, anon, authenticated, service_role TO {OWNER} WITH ADMIN OPTION;
-- what supautils lets a hosted postgres do: set PostgREST's placeholders on the API roles
GRANT SET ON PARAMETER pgrst.db_aggregates_enabled TO {OWNER};
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements') THEN
    CREATE EXTENSION IF NOT EXISTS pg_stat_statements WITH SCHEMA extensions;
  END IF;
END
$$;
"""
CHAIN = {
    "20240101000000_init.sql": f"""
CREATE TABLE public.profile (id uuid PRIMARY KEY REFERENCES auth.users (id), name text);
ALTER TABLE public.profile ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON public.profile FOR SELECT TO authenticated USING (auth.uid() = id);
CREATE TABLE public.note (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text);
CREATE FUNCTION public.note_count() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM public.note';
CREATE SCHEMA app;
CREATE TABLE app.thing (id int PRIMARY KEY);
GRANT USAGE ON SCHEMA app TO authenticated;
GRANT SELECT ON app.thing TO authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO {READER};
""",
    "20240102000000_api_settings.sql": (
        "alter role authenticator set pgrst.db_aggregates_enabled to 'true';\n"
        "alter role authenticated set statement_timeout = '8s';\n"
    ),
}
SETTINGS_RESET = "ALTER ROLE authenticator RESET pgrst.db_aggregates_enabled; ALTER ROLE authenticated RESET ALL"


async def _run(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass
class Project:
    db: Databases
    server: LocalPostgres
    url: str  # as the superuser
    local: str


@pytest.fixture
async def project(pg: LocalPostgres) -> AsyncIterator[Project]:
    """A fresh Supabase-shaped project reached as OWNER, and an empty plain local database."""
    await _run(pg.url(), ROLES)
    url, local = await create_database(pg, "sbp"), await create_database(pg, "loc")
    name = url.rsplit("/", 1)[1]
    await _run(url, SUPABASE_SHAPE)
    await _run(url, f'ALTER DATABASE "{name}" OWNER TO {OWNER}; ' + PLATFORM)
    as_owner = pg.url(name, user=OWNER, password=PASSWORD)
    db = Databases([Environment(name="local", url=local), Environment(name=ENV, url=as_owner)])
    try:
        yield Project(db, pg, url, local)
    finally:
        await db.close()
        await _run(pg.url(), SETTINGS_RESET)
        await drop_database(pg, url)
        await drop_database(pg, local)


def _folder(root: Path, chain: dict[str, str]) -> Path:
    folder = root / "supabase" / "migrations"
    folder.mkdir(parents=True)
    for name, sql in chain.items():
        (folder / name).write_text(sql)
    return folder


def _no_internal_role(text: str) -> None:
    assert not any(prefix in text for prefix in INTERNAL), text


async def test_a_fresh_project_compares_in_sync_with_an_empty_app_and_has_no_drift(
    project: Project, tmp_path: Path
) -> None:
    result = await compare_schemas(project.db, "local", ENV, plan=PlanOptions(allow_data_loss=True))
    assert result.in_sync, [(d.kind, d.name) for d in result.differences.data]
    assert result.plan is not None and result.plan.data.statements == ()

    folder = _folder(tmp_path, {"20240101000000_start.sql": "SELECT 1;\n"})
    found = await detect_drift(project.db, ENV, str(folder), shadow=project.server, state_dir=tmp_path / "s")
    assert (found.state, found.summary.total) == ("none", 0), [(d.kind, d.name) for d in found.differences.data]


async def test_a_deployed_chain_has_no_drift_and_its_api_role_settings_replay(project: Project, tmp_path: Path) -> None:
    folder = _folder(tmp_path, CHAIN)
    deployed = await deploy(project.db, ENV, str(folder))
    assert deployed.status == "deployed", deployed.message

    found = await detect_drift(project.db, ENV, str(folder), shadow=project.server, state_dir=tmp_path / "s")

    assert found.error is None and found.state == "none", (found.error, found.differences.data)
    assert (found.replayed, found.summary.total) == (2, 0)
    _no_internal_role(found.model_dump_json())
    # The replay's settings went with its copy: none is left on the server for a database that is gone, and the
    # global setting is only the one deploy made on the target.
    conn = await asyncpg.connect(project.server.url())
    try:
        orphans = await conn.fetchval(
            "SELECT count(*) FROM pg_db_role_setting WHERE setdatabase <> 0"
            " AND setdatabase NOT IN (SELECT oid FROM pg_database)"
        )
        scoped = await conn.fetchval(
            "SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
            " WHERE d.datname LIKE 'pgshift\\_%'"
        )
    finally:
        await conn.close()
    assert (orphans, scoped) == (0, 0)


async def test_a_grant_beyond_the_defaults_is_the_one_drift_adopt_writes_and_revert_revokes(
    project: Project, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, CHAIN)
    deployed = await deploy(project.db, ENV, str(folder))
    assert deployed.status == "deployed", deployed.message
    await _run(project.url, "GRANT SELECT ON app.thing TO anon")

    found = await detect_drift(project.db, ENV, str(folder), shadow=project.server, state_dir=tmp_path / "s")

    assert found.state == "drift"
    listed = [(d.kind, d.name, d.change) for d in found.differences.data]
    assert listed == [("privilege", "TABLE app.thing TO anon", "added")]
    assert found.adopt is not None and found.revert is not None
    assert [s.sql for s in found.adopt.data.statements] == ["GRANT SELECT ON TABLE app.thing TO anon"]
    assert [s.sql for s in found.revert.data.statements] == ["REVOKE SELECT ON TABLE app.thing FROM anon"]
    # drift list == adopt's objects == revert's objects
    assert {s.object for s in found.adopt.data.statements} == {s.object for s in found.revert.data.statements}
    _no_internal_role(found.model_dump_json())


# ------------------------------------------------------------------------------------------- pure: the rule itself


def _node(sql: str) -> tuple[str, object]:
    stmt = parse_sql(sql)[0].stmt
    return type(stmt).__name__, stmt


@pytest.mark.parametrize(
    ("sql", "allowed"),
    [
        ("alter role authenticator set pgrst.db_aggregates_enabled to 'true'", True),
        ("ALTER ROLE authenticated SET statement_timeout = '8s'", True),
        ("ALTER ROLE anon RESET statement_timeout", True),
        ("ALTER ROLE supabase_admin SET pgrst.x = 1", False),  # a superuser on Supabase
        ("ALTER ROLE ALL SET pgrst.x = 1", False),
        ("ALTER ROLE anon RESET ALL", False),
        ("ALTER ROLE anon SET search_path FROM CURRENT", False),
        ("ALTER ROLE app_user SET pgrst.x = 1", False),  # not a platform role
        ("ALTER ROLE anon SUPERUSER", False),
    ],
)
def test_only_a_setting_of_one_parameter_on_a_non_superuser_platform_role_runs_as_the_scratch_admin(
    sql: str, allowed: bool
) -> None:
    assert (platform_role_setting(*_node(sql)) is not None) is allowed


def test_a_settings_statement_is_scoped_to_the_copy() -> None:
    node_type, node = _node("alter role authenticator set pgrst.db_aggregates_enabled to 'true'")
    setting = platform_role_setting(node_type, node)
    assert setting is not None
    scoped = setting.in_database(node, "pgshift_expected_0123456789ab")
    assert scoped == (
        "ALTER ROLE authenticator IN DATABASE pgshift_expected_0123456789ab SET pgrst.db_aggregates_enabled TO 'true'"
    )


def _defaults(owner: str, schema: str, objtype: str, grantee: str, *privileges: str) -> list[dict[str, object]]:
    return [
        {"role": owner, "schema": schema, "objtype": objtype, "grantee": grantee, "privilege": p, "grantable": False}
        for p in privileges
    ]


def test_a_grant_is_the_platforms_only_as_far_as_its_owners_default_privileges_give_it() -> None:
    rule = PlatformGrants.of(
        _defaults("postgres", "public", "r", "anon", "SELECT", "INSERT"), supabase=True, include_managed=False
    )
    assert rule.is_platform("TABLE", "public", "postgres", "anon", ["SELECT"])
    assert not rule.is_platform("TABLE", "public", "postgres", "anon", ["SELECT", "DELETE"])  # beyond the defaults
    assert not rule.is_platform("TABLE", "app", "postgres", "anon", ["SELECT"])  # another schema
    assert not rule.is_platform("TABLE", "public", "someone", "anon", ["SELECT"])  # another owner
    assert not rule.is_platform("TABLE", "public", "postgres", "app_reader", ["SELECT"])  # not a platform role
    assert rule.is_platform("SCHEMA", "public", "pg_database_owner", "postgres", ["USAGE"])
    assert not rule.is_platform("SCHEMA", "public", "pg_database_owner", "postgres", ["CREATE", "USAGE"])
    # Without the platform's default privileges, every grant to a platform role is presumed the platform's.
    bare = PlatformGrants.of([], supabase=True, include_managed=False)
    assert bare.is_platform("TABLE", "app", "someone", "anon", ["SELECT", "DELETE"])
    assert not PlatformGrants.of([], supabase=True, include_managed=True).is_platform("TABLE", "a", "o", "anon", ["X"])


def test_the_replays_role_reads_as_the_targets_and_the_platforms_state_is_the_live_ones() -> None:
    box = "pgshift_expected_0123456789ab"
    live = Schema(
        extensions=(Extension("pgjwt", "extensions", "0.2.0", platform=True),),
        default_privileges=(
            DefaultPrivilege("postgres", "public", "TABLES", "anon", ("SELECT",), platform=True),
            DefaultPrivilege("postgres", "app", "TABLES", "reader", ("SELECT",)),
        ),
        privileges=(Privilege("TABLE", "app.t", "anon", ("SELECT",)),),
    )
    expected = Schema(
        default_privileges=(
            DefaultPrivilege(box, "app", "TABLES", "reader", ("SELECT",)),
            DefaultPrivilege(box, "public", "TABLES", box, ("SELECT",)),
        ),
    )
    mapped = without_internal_roles(expected, "postgres")
    assert [d.key for d in mapped.default_privileges] == ["FOR ROLE postgres IN SCHEMA app ON TABLES TO reader"]
    aligned = with_platform_state_of(live, mapped)
    changes = [(c.kind, c.key, c.change) for c in diff_schemas(live, aligned).changes]
    assert changes == [("privilege", "TABLE app.t TO anon", "added")]
    assert box not in json.dumps([d.key for d in aligned.default_privileges])


def test_pgjwt_and_pg_stat_statements_in_extensions_are_the_platforms_never_dropped_by_a_plan() -> None:
    from pgshift.tools.introspect.filters import SUPABASE_MANAGED_SCHEMAS
    from pgshift.tools.introspect.namespaces import extensions
    from pgshift.tools.introspect.platform import platform_extensions
    from pgshift.tools.plan import plan_migration

    rows = [
        {"row": "installed", "name": name, "schema": "extensions", "version": "1.0", "comment": None}
        for name in ("pgjwt", "pg_stat_statements")
    ]
    installed = extensions(rows, ("plpgsql",), None, platform_extensions(False), SUPABASE_MANAGED_SCHEMAS)
    assert [e.platform for e in installed] == [True, True]
    target, local = Schema(extensions=installed), Schema()
    assert diff_schemas(local, target).changes == ()
    assert plan_migration(local, target, allow_data_loss=True).is_empty


async def test_after_deploying_a_chain_to_both_compare_is_in_sync_and_plans_nothing(
    project: Project, tmp_path: Path
) -> None:
    chain = {
        name: sql.replace(f"ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO {READER};", "")
        for name, sql in CHAIN.items()
    }  # FOR ROLE would name each side's own role
    folder = _folder(tmp_path, chain)
    await _run(project.local, SUPABASE_SHAPE)  # a local Supabase (miniature): auth.users, the API roles
    for environment in ("local", ENV):
        deployed = await deploy(project.db, environment, str(folder))
        assert deployed.status == "deployed", deployed.message

    result = await compare_schemas(project.db, "local", ENV, plan=PlanOptions(allow_data_loss=True))

    assert result.in_sync, [(d.kind, d.name) for d in result.differences.data]
    assert result.plan is not None and [s.sql for s in result.plan.data.statements] == []


async def test_a_replay_that_fails_leaves_drift_unknown_never_clean_with_the_reason(
    project: Project, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from pgshift.tools import ledger
    from pgshift.tools.migrations.folder import read_migrations

    folder = _folder(tmp_path, {"20240101000000_broken.sql": "ALTER ROLE supabase_admin SET pgrst.x TO 'on';\n"})
    migration = read_migrations(str(folder)).migrations[0]
    conn = await asyncpg.connect(project.db.environment(ENV).url)
    try:  # recorded as applied (by hand, as `supabase migration repair` does): the replay must run it
        async with conn.transaction():
            await ledger.record(
                conn, migration, statements=[], started_at=datetime.now(UTC), duration_ms=0, outcome="applied"
            )
    finally:
        await conn.close()

    found = await detect_drift(project.db, ENV, str(folder), shadow=project.server, state_dir=tmp_path / "s")

    assert found.state == "unknown" and found.error is not None and "20240101000000" in found.error
    assert any("unknown, not clean" in step for step in found.next_steps)
    _no_internal_role(found.model_dump_json())
