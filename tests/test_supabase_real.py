"""pgshift's workflow on a Supabase-faithful production stand-in (issue 17), built from Supabase's own SQL.

Production is a copy of the stand-in (tests/support_supabase.py: supabase/postgres's init scripts and migrations,
GoTrue's and storage-api's migrations, pgjwt; `postgres` demoted to NOSUPERUSER), reached as `postgres` with a
password over TCP and configured as a protected environment, as a hosted project is. The local dev database is a
plain database on the PostgreSQL 15 (or 18) fixture. Commands run as a user runs them: `pgshift deploy` and
`pgshift status` through the CLI, the other engines as the MCP tools call them, each starting its own throw-away
server (a local PostgreSQL 15 with Supabase's extensions: see the `state` fixture). Outcomes are read from the
databases on the tests' own connections.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from conftest import corpus_root, create_database, drop_database
from support_prepare import make_supabase_shaped
from support_supabase import StandIn, copy_project, drop_project, major_extensions, start_stand_in

from pgshift.server.cli import main
from pgshift.tools.approval import ApprovalStore
from pgshift.tools.compare import compare_environments
from pgshift.tools.databases import Databases, Environment
from pgshift.tools.deploy import deploy
from pgshift.tools.localpg import LocalPostgres, pg15_bin_dir
from pgshift.tools.migrations.folder import read_migrations
from pgshift.tools.undo.rollback import rollback
from pgshift.tools.undo.snapshots import list_snapshots, verify_snapshot
from pgshift.tools.watch.advisors import get_advisors
from pgshift.tools.watch.drift import detect_drift

PG17_DEBIAN_BIN = "/usr/lib/postgresql/17/bin"
CHAINS = {
    "umami": (corpus_root() / "prisma" / "umami" / "migrations", "prisma"),
    "hoppscotch": (corpus_root() / "prisma" / "hoppscotch" / "migrations", "prisma"),
    "basejump": (corpus_root() / "supabase" / "basejump" / "supabase" / "migrations", "supabase"),
}
PUBLIC_SHAPE = (  # the app's tables, columns and indexes
    "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable, coalesce(c.column_default, '')"
    " FROM information_schema.columns c WHERE c.table_schema = 'public'"
    " UNION ALL SELECT 'index', indexname, indexdef, '', '' FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2"
)
INTERNAL_ROLE = "pgshift_expected_"  # the drift sandbox's role: never in an answer
PLATFORM_NOISE = ("pgjwt", "ON SCHEMA public TO postgres", INTERNAL_ROLE)


@contextmanager
def running_stand_in(bin_dir: Path) -> Iterator[StandIn]:
    stand_in, tree = start_stand_in(bin_dir)
    try:
        yield stand_in
    finally:
        stand_in.server.stop()
        shutil.rmtree(tree, ignore_errors=True)


@pytest.fixture(scope="session")
def supabase15() -> Iterator[StandIn]:
    """One stand-in cluster per session (roles are cluster-wide); the platform is built once into a template."""
    bin_dir = pg15_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL 15 binaries not found under /usr/lib/postgresql/15/bin")
    with running_stand_in(bin_dir) as stand_in:
        yield stand_in


@dataclass(frozen=True)
class Project:
    """A pgshift project: its folder (pgshift.toml, the migrations), its local dev database, its production."""

    root: Path
    folder: Path
    local: str
    production: str
    production_admin: str  # supabase_admin: the tests' own checks only

    def databases(self) -> Databases:
        return Databases(
            [
                Environment(name="local", url=self.local),
                Environment(name="production", url=self.production, protected=True),
            ]
        )


def _write_project(root: Path, local: str, production: str, kind: str, chain: Path | None) -> Path:
    """The folder a user has: pgshift.toml (production protected) and the app's migrations (none yet: an empty
    Prisma folder holding only migration_lock.toml)."""
    (root / "pgshift.toml").write_text(
        f'[environments.local]\nurl = "{local}"\nprotected = false\n\n'
        f'[environments.production]\nurl = "{production}"\nprotected = true\n'
    )
    folder = root / kind / "migrations"
    if chain is not None:
        shutil.copytree(chain, folder)
    else:
        folder.mkdir(parents=True)
        (folder / "migration_lock.toml").write_text('provider = "postgresql"\n')
    return folder


@pytest.fixture
def state(supabase15: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's machine: the project folder as working directory, pgshift's state in it, and a local PostgreSQL 15
    with the extensions a hosted project has (the stand-in's own install) for pgshift's scratch servers, as the
    README's "Scratch servers" section advises (`PGSHIFT_PG15_BIN`)."""
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv(f"PGSHIFT_PG{supabase15.major}_BIN", str(supabase15.server.bin_dir))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "state"


@pytest.fixture
async def production(supabase15: StandIn) -> AsyncIterator[tuple[str, str]]:
    """A new hosted project: (app URL as postgres, admin URL) of a fresh copy of the stand-in."""
    name = await copy_project(supabase15)
    yield supabase15.app_url(name), supabase15.admin_url(name)
    await drop_project(supabase15, name)


@pytest.fixture
async def local15(pg15: LocalPostgres) -> AsyncIterator[str]:
    url = await create_database(pg15, "local")
    yield url
    await drop_database(pg15, url)


async def cli(*args: str) -> int:
    """`pgshift <args>` in the current folder, as a user runs it."""
    return await asyncio.to_thread(main, list(args))


async def fetch(url: str, query: str, *args: object) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(query, *args)]
    finally:
        await conn.close()


async def assert_in_sync_without_drift(project: Project, state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """compare local vs production: in sync, no platform object named; drift on production: none; `pgshift status`:
    exit 0 and clean. All three are run and every failure is reported together."""
    failures: list[str] = []
    compared = await compare_environments(
        Environment(name="local", url=project.local), Environment(name="production", url=project.production)
    )
    shown = compared.model_dump_json()
    if not compared.in_sync or any(noise in shown for noise in PLATFORM_NOISE):
        failures.append(f"compare: {shown[:3000]}")
    db = project.databases()
    try:
        drift = await detect_drift(db, "production", str(project.folder), refresh=True, state_dir=state)
    finally:
        await db.close()
    counts = (drift.summary.added, drift.summary.removed, drift.summary.changed)
    drift_shown = drift.model_dump_json()
    if (drift.state, drift.error, counts) != ("none", None, (0, 0, 0)) or INTERNAL_ROLE in drift_shown:
        failures.append(f"drift: {drift_shown[:3000]}")
    capsys.readouterr()
    code = await cli("status", "--migrations", str(project.folder), "--json")
    out = capsys.readouterr()
    if code != 0 or not json.loads(out.out or "{}").get("clean") or INTERNAL_ROLE in out.out + out.err:
        failures.append(f"status exit {code}: {out.out[:3000]} {out.err[:1000]}")
    assert not failures, "\n\n".join(failures)


async def deploy_production(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    """`pgshift deploy --target production --yes` (protected: the person at the terminal confirms)."""
    capsys.readouterr()
    code = await cli("deploy", "--target", "production", "--migrations", str(project.folder), "--yes")
    assert code == 0, capsys.readouterr()


async def deploy_both(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    """Local by the engine (a dev database), production by `pgshift deploy --yes`."""
    db = project.databases()
    try:
        local = await deploy(db, "local", str(project.folder))
    finally:
        await db.close()
    assert local.status in ("deployed", "up_to_date"), local.error
    await deploy_production(project, capsys)


# ---------------------------------------------------------------------------------------------- the stand-in itself


async def test_the_stand_in_is_a_hosted_project_postgres_is_no_superuser_and_has_its_majors_extensions(
    supabase15: StandIn, production: tuple[str, str]
) -> None:
    app, admin = production
    assert await fetch(app, "SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)") == [
        ("postgres", False)
    ]
    roles = await fetch(
        admin, "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles WHERE rolname = 'postgres'"
    )
    assert roles == [(False, True, True, True)]
    extensions = await fetch(
        admin, "SELECT extname FROM pg_extension WHERE extnamespace = 'extensions'::regnamespace ORDER BY 1"
    )
    assert [e[0] for e in extensions] == sorted(major_extensions(supabase15.major).installed)
    assert {"pgcrypto", "uuid-ossp", "pg_stat_statements", "pgjwt"} <= {e[0] for e in extensions}
    counts = await fetch(
        admin,
        "SELECT (SELECT count(*) FROM auth.schema_migrations), (SELECT count(*) FROM storage.migrations),"
        " (SELECT count(*) FROM pg_event_trigger), (SELECT count(*) FROM pg_publication WHERE pubname ="
        " 'supabase_realtime'), (SELECT count(*) FROM pg_default_acl d JOIN pg_roles r ON r.oid = d.defaclrole"
        " WHERE r.rolname = 'postgres' AND d.defaclnamespace = 'public'::regnamespace)",
    )
    auth_files = len(list((corpus_root() / "supabase-real" / "auth" / "migrations").glob("*.up.sql")))
    storage_files = len(list((corpus_root() / "supabase-real" / "storage" / "migrations" / "tenant").glob("*.sql")))
    (auth_versions, storage_rows, event_triggers, publications, default_acls) = counts[0]
    assert int(str(auth_versions)) >= auth_files and storage_rows == storage_files
    assert (event_triggers, publications, default_acls) == (6, 1, 3)  # tables, sequences, functions
    # what supautils lets postgres do on a hosted project: a PostgREST setting on the API role (this database only)
    database = app.rsplit("/", 1)[1]
    setting = f"ALTER ROLE authenticator IN DATABASE {database} SET pgrst.db_aggregates_enabled TO 'true'"
    await fetch(app, setting)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await fetch(app, f"ALTER ROLE authenticator IN DATABASE {database} SET log_statement TO 'all'")


def _pg17_bin() -> Path | None:
    for candidate in (os.environ.get("PGSHIFT_PG17_BIN", ""), PG17_DEBIAN_BIN):
        if candidate and (Path(candidate) / "postgres").exists():
            return Path(candidate)
    return None


def test_on_postgresql_17_the_stand_in_has_no_pgjwt_and_a_fresh_project_compares_in_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Supabase does not ship pgjwt on 17 (extensions.toml): the same build leaves it out, and nothing else differs."""
    bin_dir = _pg17_bin()
    if bin_dir is None:
        pytest.skip(
            "no PostgreSQL 17 server here (Debian bookworm has no 17 package; set PGSHIFT_PG17_BIN to a 17 bin dir)"
        )
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))
    expected = major_extensions(17)
    assert "pgjwt" in expected.not_shipped
    with running_stand_in(bin_dir) as stand_in:
        assert stand_in.major == 17
        asyncio.run(_fresh_project_on_17(stand_in, expected.installed))


async def _fresh_project_on_17(stand_in: StandIn, installed_expected: tuple[str, ...]) -> None:
    name = await copy_project(stand_in)
    local = await create_database(stand_in.server, "local17")
    try:
        app = stand_in.app_url(name)
        installed = await fetch(app, "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1")
        assert [e[0] for e in installed] == sorted(installed_expected)
        assert await fetch(app, "SELECT count(*) FROM pg_available_extensions WHERE name = 'pgjwt'") == [(0,)]
        compared = await compare_environments(
            Environment(name="local", url=local), Environment(name="production", url=app)
        )
        assert compared.in_sync, compared.model_dump_json()[:4000]
    finally:
        await drop_database(stand_in.server, local)
        await drop_project(stand_in, name)


# ---------------------------------------------------------------------------------------------- the workflow


@pytest.mark.slow
async def test_a_fresh_project_with_an_empty_local_app_is_in_sync_without_drift_and_status_passes(
    production: tuple[str, str], local15: str, tmp_path: Path, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app, admin = production
    folder = _write_project(tmp_path, local15, app, "prisma", None)
    await assert_in_sync_without_drift(Project(tmp_path, folder, local15, app, admin), state, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("chain", sorted(CHAINS))
async def test_after_deploying_a_real_chain_local_and_production_are_in_sync_without_drift_and_status_passes(
    chain: str,
    production: tuple[str, str],
    local15: str,
    tmp_path: Path,
    state: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, kind = CHAINS[chain]
    app, admin = production
    if kind == "supabase":  # a Supabase CLI chain needs auth.users locally: the repository's Supabase shape
        await make_supabase_shaped(local15)
    project = Project(tmp_path, _write_project(tmp_path, local15, app, kind, source), local15, app, admin)
    await deploy_both(project, capsys)
    n = len(read_migrations(str(project.folder)).migrations)
    applied = await fetch(admin, "SELECT count(*) FROM pgshift.migrations WHERE outcome = 'applied'")
    assert applied == [(n,)]
    await assert_in_sync_without_drift(project, state, capsys)


@pytest.mark.slow
async def test_the_newest_snapshot_verifies_and_rolling_back_the_last_migration_restores_schema_data_and_histories(
    production: tuple[str, str], local15: str, tmp_path: Path, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """umami's last migration drops `board.slug` (kept for undo) and adds tables: rolled back, then deployed again."""
    app, admin = production
    source, _ = CHAINS["umami"]
    project = Project(tmp_path, _write_project(tmp_path, local15, app, "prisma", source), local15, app, admin)
    last = read_migrations(str(project.folder)).migrations[-1]
    assert last.path is not None
    last_folder, held = Path(last.path).parent, tmp_path / "held"
    shutil.move(last_folder, held)  # production first gets all but the last
    await deploy_production(project, capsys)
    row = (
        "INSERT INTO board (board_id, type, name, description, parameters, slug)"
        " VALUES ('00000000-0000-0000-0000-000000000001', 'dash', 'Main', 'd', '{}', 'main-board')"
    )
    await fetch(app, row)
    before = await fetch(admin, PUBLIC_SHAPE)
    shutil.move(held, last_folder)
    await deploy_production(project, capsys)
    assert await fetch(admin, "SELECT to_regclass('public.session_replay') IS NOT NULL") == [(True,)]

    db = project.databases()
    approvals = ApprovalStore(state / "approvals")
    try:
        snapshots = (await list_snapshots(db, "production")).snapshots.data
        newest = max(snapshots, key=lambda s: s.id)
        verified = await verify_snapshot(db, "production", newest.id)
        unverified = [] if verified.verified else [f"verify_snapshot: {verified.model_dump_json()[:3000]}"]

        # accepted: the values written since into the columns the migration added (nothing kept them; none here)
        accept = True
        asked = await rollback(db, "production", migration=last.version, accept_data_loss=accept, approvals=approvals)
        assert asked.status == "confirmation_required" and asked.approval_id, [*unverified, asked.model_dump_json()]
        approvals.approve(asked.approval_id)
        done = await rollback(
            db,
            "production",
            migration=last.version,
            accept_data_loss=accept,
            approval_id=asked.approval_id,
            approvals=approvals,
        )
        assert done.status == "rolled_back", [*unverified, done.model_dump_json()]
    finally:
        await db.close()

    assert await fetch(admin, "SELECT slug FROM board") == [("main-board",)]
    assert await fetch(admin, PUBLIC_SHAPE) == before
    assert await fetch(admin, "SELECT to_regclass('public.session_replay') IS NULL") == [(True,)]
    # the three histories, read directly: pgshift's ledger records the rollback; Supabase's and Prisma's no longer
    # hold the migration as applied (so `supabase db push` and `prisma migrate deploy` apply it again)
    ledger_rows = "SELECT outcome FROM pgshift.migrations WHERE version = $1 ORDER BY id"
    assert await fetch(admin, ledger_rows, last.version) == [("applied",), ("rolled_back",)]
    supabase_rows = "SELECT count(*) FROM supabase_migrations.schema_migrations WHERE version = $1"
    assert await fetch(admin, supabase_rows, last.version) == [(0,)]
    prisma_rows = (
        "SELECT count(*) FROM public._prisma_migrations"
        " WHERE migration_name = $1 AND finished_at IS NOT NULL AND rolled_back_at IS NULL"
    )
    assert await fetch(admin, prisma_rows, last_folder.name) == [(0,)]
    assert await fetch(admin, "SELECT count(*) FROM public._prisma_migrations") != [(0,)]

    capsys.readouterr()
    code = await cli("status", "--target", "production", "--migrations", str(project.folder), "--json")
    answered = capsys.readouterr()
    assert code == 2, answered  # it answers: not clean, since the rolled-back migration is pending again
    row_status = json.loads(answered.out)["environments"][0]
    assert (row_status["pending"], row_status["problems"]) == (1, ["1 pending"]), answered.out[:4000]
    assert row_status["last_apply"] is not None

    await deploy_both(project, capsys)  # production again, and the local dev database for the comparison
    assert await fetch(admin, "SELECT to_regclass('public.session_replay') IS NOT NULL") == [(True,)]
    await assert_in_sync_without_drift(project, state, capsys)
    assert not unverified, unverified


@pytest.mark.slow
async def test_get_advisors_finds_nothing_on_pgshifts_own_objects_after_a_deploy(
    production: tuple[str, str], local15: str, tmp_path: Path, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """basejump deployed to production (pgshift's ledger, snapshots and kept-data tables now exist there)."""
    app, admin = production
    source, _ = CHAINS["basejump"]
    project = Project(tmp_path, _write_project(tmp_path, local15, app, "supabase", source), local15, app, admin)
    await deploy_production(project, capsys)
    assert await fetch(admin, "SELECT count(*) > 0 FROM pgshift.migrations") == [(True,)]
    db = project.databases()
    try:
        report = await get_advisors(db, "production", limit=1000)
    finally:
        await db.close()
    assert report.next_offset is None and report.failed == []
    findings = report.lints.data
    ours = [f.detail for f in findings if f.metadata.get("schema") == "pgshift" or "pgshift." in f.detail]
    assert ours == [], ours
    assert findings, "basejump has findings of its own: the advisors ran"


@pytest.mark.slow
async def test_across_versions_a_local_18_and_the_15_stand_in_stay_in_sync_after_deploy(
    production: tuple[str, str], pg18: LocalPostgres, tmp_path: Path, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """hoppscotch (its pg_trgm exists on both; umami's pgcrypto is not in the embedded 18 build)."""
    app, admin = production
    local = await create_database(pg18, "local18")
    try:
        source, _ = CHAINS["hoppscotch"]
        project = Project(tmp_path, _write_project(tmp_path, local, app, "prisma", source), local, app, admin)
        await deploy_both(project, capsys)
        compared = await compare_environments(
            Environment(name="local", url=local), Environment(name="production", url=app)
        )
        assert compared.in_sync, compared.model_dump_json()[:4000]
    finally:
        await drop_database(pg18, local)
