"""Status across every environment: the engine, `pgshift status` (text, JSON, Markdown, exit codes), get_status and
the pgshift://status resource over MCP, `pgshift check --format markdown`, and the GitHub Actions example."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from conftest import create_database, drop_database
from support_apply import prisma_folder

from pgshift.server.cli import build_parser, main
from pgshift.tools.apply import apply_migration
from pgshift.tools.approval import ApprovalStore
from pgshift.tools.databases import Databases, Environment
from pgshift.tools.deploy import deploy
from pgshift.tools.errors import ConnectionFailed
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.watch.status import Providers, SnapshotCell, digest, gather_status

ONE = "CREATE TABLE one (id int);\n"
TWO = "CREATE TABLE two (id int);\n"
HOTFIX = "20240105000000"
PAYLOAD = '<img src=x onerror="alert(1)">|`**x**`'
WORKFLOW = Path(__file__).resolve().parents[1] / "examples" / "github-actions" / "pgshift.yml"


@pytest.fixture(autouse=True)
def without_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    """The columns' engines (drift's shadow replay, snapshots) have their own tests and cost seconds per check:
    these tests give their providers explicitly, and the commands run with none."""
    import pgshift.server.dashboard
    import pgshift.tools.watch.status

    monkeypatch.setattr(pgshift.tools.watch.status, "default_providers", Providers)
    monkeypatch.setattr(pgshift.server.dashboard, "default_providers", Providers)


@dataclass(frozen=True)
class Pair:
    local: str
    production: str
    folder: Path


@dataclass(frozen=True)
class Templates:
    local: str
    production: str


MIGRATIONS = {"20240101000000_one": ONE, "20240102000000_two": TWO}


@pytest.fixture(scope="module")
def templates(pg18: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    """Built once per module with the real apply path, then copied per test (CREATE DATABASE … TEMPLATE): local has
    both migrations; production has the first and a hotfix no file explains (named with markup)."""

    async def build() -> Templates:
        local, production = await create_database(pg18, "tpl"), await create_database(pg18, "tpl")
        folder = prisma_folder(tmp_path_factory.mktemp("tpl"), MIGRATIONS)
        db = Databases.from_urls({"local": local, "production": production})
        try:
            await deploy(db, "local", str(folder))
            await apply_migration(db, "production", "one", migration=str(folder / "20240101000000_one"))
            await apply_migration(db, "production", PAYLOAD, sql="CREATE TABLE hotfix (id int);", version=HOTFIX)
        finally:
            await db.close()
        return Templates(local, production)

    built = asyncio.run(build())
    yield built
    asyncio.run(drop_database(pg18, built.local))
    asyncio.run(drop_database(pg18, built.production))


async def copy_database(server: LocalPostgres, template: str) -> str:
    name = f"st_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(server.url())
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template.rsplit("/", 1)[1]}" STRATEGY FILE_COPY')
    finally:
        await conn.close()
    return server.url(name)


@pytest.fixture
def pair(templates: Templates, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pair:
    """The two databases (tests that change them copy them first) and a fresh migrations folder."""
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))
    return Pair(templates.local, templates.production, prisma_folder(tmp_path, MIGRATIONS))


async def test_status_shows_each_environment_with_its_history_last_apply_and_pending_approvals(
    pair: Pair, tmp_path: Path
) -> None:
    store = ApprovalStore(tmp_path / "approvals-state")
    filed = store.file("deploy", "production", "postgresql://u:****@h/db", ["CREATE TABLE x (id int)"], ["b"])
    db = Databases([Environment(name="local", url=pair.local), Environment(name="production", url=pair.production)])
    try:
        status = await gather_status(db, str(pair.folder), approvals=store)
    finally:
        await db.close()
    local, production = status.environments
    assert (local.applied, local.pending, local.problems, local.in_sync) == (2, 0, [], True)
    assert (production.applied, production.pending, production.missing_locally) == (1, 1, 1)
    assert production.problems == ["1 pending", "1 missing locally"] and not status.clean
    assert production.last_apply is not None and production.last_apply.boundary_open.startswith("<untrusted-data-")
    last = production.last_apply.data
    assert (last.version, last.name, last.outcome, last.applied_by) == (
        "20240105000000",
        PAYLOAD,
        "applied",
        "postgres",
    )
    assert last.duration_ms >= 0 and local.last_apply is not None
    assert local.last_apply.data.version == "20240102000000"
    assert [a.id for a in status.approvals] == [filed.id] and status.approvals[0].statements == 1
    assert (local.pending_approvals, production.pending_approvals) == (0, 1)
    assert (store.directory / f"{filed.id}.json").is_file()  # listed, not touched
    assert local.drift is None and local.snapshots is None  # no provider: not checked, not guessed


async def test_an_unreachable_environment_is_a_row_with_its_error_and_no_password(pair: Pair) -> None:
    dead = "postgresql://postgres:Sup3rSecretPw@127.0.0.1:1/postgres"
    db = Databases.from_urls({"local": pair.local, "staging": dead})
    try:
        status = await gather_status(db, str(pair.folder))
    finally:
        await db.close()
    local, staging = status.environments
    assert local.reachable and local.problems == []
    assert not staging.reachable and staging.problems == ["unreachable"] and staging.error is not None
    assert "server unreachable" in staging.error and "Sup3rSecretPw" not in status.model_dump_json()
    assert staging.url == "postgresql://postgres:****@127.0.0.1:1/postgres" and not status.clean


@dataclass(frozen=True)
class TableDrift:
    """A real (simple) drift report: tables in public that no migration of the test creates."""

    state: str
    objects: list[str]
    history_problems: int
    from_fast_path: bool
    detail: str | None


EXPECTED_TABLES = {"one", "two", "hotfix", "_prisma_migrations"}


async def unexplained_tables(db: Databases, environment: str, directory: str | None = None, /) -> TableDrift:
    if environment == "broken":
        raise ConnectionFailed("drift engine could not reach 'broken' at postgresql://u:Sup3rSecretPw@nowhere/db")
    async with db.read_only(environment) as conn:
        names = {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    extra = sorted(names - EXPECTED_TABLES)
    return TableDrift("drift" if extra else "none", extra, 0, False, ", ".join(extra) or None)


async def kept_snapshots(db: Databases, environment: str, /) -> SnapshotCell:
    async with db.read_only(environment) as conn:
        row = await conn.fetchrow("SELECT count(*) AS n, max(taken_at) AS at FROM public.snaps")
    return SnapshotCell(count=row["n"], latest_at=row["at"])


async def test_drift_and_snapshot_providers_fill_their_columns_and_a_failing_provider_is_only_a_note(
    pair: Pair, pg18: LocalPostgres
) -> None:
    production = await copy_database(pg18, pair.production)
    conn = await asyncpg.connect(production)
    try:
        await conn.execute("CREATE TABLE manual_fix (id int); CREATE TABLE snaps (taken_at timestamptz)")
        await conn.execute("INSERT INTO snaps VALUES (now()), (now())")
    finally:
        await conn.close()
    db = Databases.from_urls({"production": production, "broken": production})
    providers = Providers(drift=unexplained_tables, snapshots=kept_snapshots)
    try:
        status = await gather_status(db, str(pair.folder), providers=providers, allow_pending=True)
    finally:
        await db.close()
        await drop_database(pg18, production)
    row, broken = status.environments
    assert row.drift is not None and row.drift.state == "drift"
    assert (row.drift.objects, row.drift.detail) == (2, "manual_fix, snaps")
    assert row.problems == ["1 missing locally", "drift (2 object(s))"]  # no "0 history problem(s)" noise
    assert row.snapshots is not None and row.snapshots.count == 2
    assert broken.drift is not None and broken.drift.state == "unknown" and broken.reachable
    assert "could not reach" in (broken.drift.detail or "") and "Sup3rSecretPw" not in (broken.drift.detail or "")
    assert "drift (" not in " ".join(broken.problems)  # unknown is not counted as drift objects...
    assert [p for p in broken.problems if p.startswith("drift unknown: ")] and not status.clean  # ...nor as clean
    assert digest(status)["environments"]["production"]["drift"] == "drift"


def write_config(root: Path, envs: dict[str, str]) -> None:
    lines = [f'[environments.{name}]\nurl = "{url}"\nprotected = false\n' for name, url in envs.items()]
    (root / "pgshift.toml").write_text("\n".join(lines))


def test_pgshift_status_without_target_shows_every_environment_and_exits_for_a_ci_gate(
    pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, {"local": pair.local, "production": pair.production})
    assert main(["status"]) == 2
    text = capsys.readouterr().out
    assert "NOT clean" in text and "1 pending; 1 missing locally" in text and "production" in text
    assert main(["status", "--target", "local", "--json"]) == 0
    only_local = json.loads(capsys.readouterr().out)
    assert [e["environment"] for e in only_local["environments"]] == ["local"] and only_local["clean"] is True
    assert main(["status", "--format", "markdown"]) == 2
    markdown = capsys.readouterr().out
    assert markdown.startswith("## pgshift status: **not clean**") and "| local | clean | 2 | 0 |" in markdown
    assert "<img" not in markdown and "&#60;img src=x onerror=" in markdown and "&#124;&#96;&#42;&#42;x" in markdown
    (tmp_path / "pgshift.toml").unlink()
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SUPABASE_DB_URL", raising=False)
    assert main(["status"]) == 1
    assert "no environment is configured" in capsys.readouterr().err


def test_allow_pending_passes_a_pull_request_gate_but_not_an_unexplained_migration(
    pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, {"local": pair.local, "production": pair.production})
    assert main(["status", "--target", "production", "--allow-pending", "--json"]) == 2  # the hotfix has no file
    assert json.loads(capsys.readouterr().out)["environments"][0]["problems"] == ["1 missing locally"]
    (pair.folder / "20240105000000_hotfix").mkdir()
    (pair.folder / "20240105000000_hotfix" / "migration.sql").write_text("CREATE TABLE hotfix (id int);\n")
    assert main(["status", "--target", "local", "--allow-pending"]) == 0  # local lacks only the new file


async def test_get_status_and_the_status_resource_answer_over_mcp(
    pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcp import Client

    from pgshift.server.app import build_app
    from pgshift.server.status_tools import register_status_tools

    monkeypatch.chdir(tmp_path)
    envs = [Environment(name="local", url=pair.local), Environment(name="production", url=pair.production)]
    app = build_app(lambda: envs)
    if "get_status" not in {t.name for t in await app.list_tools()}:
        register_status_tools(app)  # until the lead wires it into build_app
    async with Client(app, raise_exceptions=False) as client:
        tool = next(t for t in (await client.list_tools()).tools if t.name == "get_status")
        result = await client.call_tool("get_status", {"directory": "prisma/migrations"})
        resource = await client.read_resource("pgshift://status")
        outside = await client.call_tool("get_status", {"directory": "/etc"})
    assert tool.annotations is not None and tool.annotations.read_only_hint is True and tool.output_schema
    assert not result.is_error and result.structured_content is not None
    answer = result.structured_content
    assert [e["environment"] for e in answer["environments"]] == ["local", "production"] and not answer["clean"]
    assert answer["migrations"]["untrusted"] is True
    assert any(m["name"] == PAYLOAD for m in answer["migrations"]["data"])
    text = resource.contents[0].text  # type: ignore[union-attr]
    read = json.loads(text)
    assert [e["problems"] for e in read["environments"]] == [e["problems"] for e in answer["environments"]]
    assert outside.is_error and "outside the project directory" in str(outside.content)


def test_check_of_a_migrations_folder_as_markdown_lists_each_pending_migration_and_its_sql(
    pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (pair.folder / "20240106000000_ticks").mkdir()
    (pair.folder / "20240106000000_ticks" / "migration.sql").write_text(
        "CREATE TABLE ticks (note text DEFAULT '````');\n"
    )
    code = main(["check", "--target", pair.production, str(pair.folder), "--format", "markdown"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("## pgshift check against target: 2 migration(s), ready")
    assert "### 20240102000000_two" in out.replace("&#95;", "_") and "`````sql" in out  # longer than the ````
    assert "- dry run (transaction): succeeded" in out


def workflow_commands() -> list[list[str]]:
    """Every `pgshift …` command line of the workflow's run blocks, without shell redirections and pipes."""
    commands = []
    for raw in WORKFLOW.read_text().splitlines():
        line = raw.strip().removeprefix("- ").removeprefix("run: ")
        if not line.startswith("pgshift "):
            continue
        words = shlex.split(line.split("|")[0].split(">>")[0].split(">")[0], comments=True)
        commands.append(words[1:])
    return commands


def test_every_pgshift_command_in_the_github_workflow_parses_with_the_real_parser() -> None:
    commands = workflow_commands()
    assert {c[0] for c in commands} >= {"status", "check"}, commands
    parser = build_parser()
    for command in commands:
        args = parser.parse_args(command)  # argparse exits (SystemExit) on anything it does not know
        assert args.func is not None
        if command[0] in ("status", "check"):
            assert args.format == "markdown" or args.json or "--allow-pending" in command, command


def test_the_github_workflow_is_valid_yaml_that_runs_on_pull_requests() -> None:
    python = next(
        (p for p in ("/usr/bin/python3", shutil.which("python3")) if p and _has_yaml(p)),
        None,
    )
    if python is None:
        pytest.skip("no YAML parser installed (PyYAML is not a dependency): the workflow's YAML is not parsed")
    loaded = subprocess.run(
        [
            python,
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1])), default=str))",
            WORKFLOW,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    doc = json.loads(loaded.stdout)
    triggers = doc.get("on") or doc.get("true")  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    steps = doc["jobs"]["pgshift"]["steps"]
    assert any("GITHUB_STEP_SUMMARY" in (s.get("run") or "") for s in steps)


def _has_yaml(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", "import yaml"], capture_output=True, timeout=30).returncode == 0
    except OSError:
        return False


async def test_the_snapshot_column_counts_the_snapshots_each_apply_recorded(pair: Pair) -> None:
    from pgshift.tools.watch.status import recorded_snapshots

    db = Databases([Environment(name="local", url=pair.local), Environment(name="production", url=pair.production)])
    try:
        status = await gather_status(db, str(pair.folder), providers=Providers(snapshots=recorded_snapshots))
    finally:
        await db.close()
    cells = {e.environment: e.snapshots for e in status.environments}
    conn = await asyncpg.connect(pair.production)
    try:
        recorded = await conn.fetchval("SELECT count(*) FROM pgshift.snapshots")
    finally:
        await conn.close()
    assert cells["production"] is not None and cells["production"].count == recorded >= 1
    assert cells["production"].latest_at is not None and cells["production"].error is None


PGSHIFT = Path(sys.executable).with_name("pgshift")  # the console script users run


def pgshift(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`pgshift ARGS` as a user runs it: the console script, from a folder outside the checkout."""
    env = {**os.environ, "PGSHIFT_STATE_DIR": str(cwd / "state"), "PGSHIFT_NO_PROGRESS": "1"}
    for name in ("DATABASE_URL", "SUPABASE_DB_URL", "PGSHIFT_DEBUG"):
        env.pop(name, None)
    return subprocess.run([str(PGSHIFT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # deploy, rollback (verified on a scratch server) and two status runs through the console script
def test_after_a_rollback_status_says_rolled_back_in_words_and_every_status_reader_answers(
    pg18: LocalPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = asyncio.run(create_database(pg18, "rb"))
    try:
        prisma_folder(tmp_path, MIGRATIONS)
        assert pgshift(tmp_path, "deploy", "--target", url, "--yes").returncode == 0
        back = pgshift(tmp_path, "rollback", "--target", url, "--migration", "20240102000000", "--yes")
        assert back.returncode == 0, back.stdout + back.stderr

        shown = pgshift(tmp_path, "status", "--target", url)
        assert shown.returncode == 2, shown.stdout + shown.stderr  # two is pending again: not clean, no crash
        assert "unexpected" not in shown.stderr and "Traceback" not in shown.stderr
        assert re.search(r"rolled back 20240102000000_two (just now|\d+ min ago)", shown.stdout), shown.stdout
        as_json = json.loads(pgshift(tmp_path, "status", "--target", url, "--json").stdout)
        assert as_json["environments"][0]["last_apply"]["data"]["outcome"] == "rolled_back"

        monkeypatch.chdir(tmp_path)
        status = asyncio.run(_mcp_status_and_dashboard(url, tmp_path))
        assert status == ("rolled_back", 200)
    finally:
        asyncio.run(drop_database(pg18, url))


async def _mcp_status_and_dashboard(url: str, project: Path) -> tuple[str, int]:
    from mcp import Client
    from starlette.testclient import TestClient

    from pgshift.server.app import build_app
    from pgshift.server.dashboard import dashboard_app

    envs = [Environment(name="production", url=url)]
    async with Client(build_app(lambda: envs), raise_exceptions=False) as client:
        answer = await client.call_tool("get_status", {})
    assert not answer.is_error, answer.content
    assert answer.structured_content is not None
    outcome = answer.structured_content["environments"][0]["last_apply"]["data"]["outcome"]
    app = dashboard_app(envs, str(project / "prisma" / "migrations"), interval_s=1.0, providers=Providers())
    with TestClient(app) as web:
        page = await asyncio.to_thread(web.get, "/status.json")
    return outcome, page.status_code


def test_every_ledger_outcome_reads_as_a_last_apply() -> None:
    import typing

    from pgshift.tools.ledger import LedgerRow
    from pgshift.tools.watch.status import OUTCOME_WORDS, LastApply

    outcomes = typing.get_args(LedgerRow.model_fields["outcome"].annotation)
    assert set(typing.get_args(LastApply.model_fields["outcome"].annotation)) == set(outcomes) == set(OUTCOME_WORDS)


@pytest.mark.slow  # a deploy and a drift check (its replay on a scratch server) through the console script
def test_drift_that_cannot_be_determined_is_never_clean_and_fails_the_ci_gate_with_the_reason(
    pg18: LocalPostgres, tmp_path: Path
) -> None:
    url = asyncio.run(create_database(pg18, "unk"))
    name = url.rsplit("/", 1)[1]
    # Runs on the target; the drift check's throw-away database has another name, so its replay fails there.
    only_here = (
        f"DO $$ BEGIN IF current_database() <> '{name}' THEN RAISE EXCEPTION 'runs only on {name}'; END IF; END $$;\n"
    )
    try:
        prisma_folder(tmp_path, {"20240101000000_one": ONE, "20240102000000_only_here": only_here})
        assert pgshift(tmp_path, "deploy", "--target", url, "--yes").returncode == 0
        shown = pgshift(tmp_path, "status", "--target", url)
        assert shown.returncode == 2, shown.stdout + shown.stderr  # the gate fails: unknown is not clean
        assert "NOT clean" in shown.stdout and "drift unknown: " in shown.stdout, shown.stdout
        assert f"runs only on {name}" in shown.stdout  # the reason
        assert "Next step: run `pgshift drift --target target --refresh`" in shown.stdout  # and what to do
        [overview] = [line for line in shown.stdout.splitlines() if line.startswith("target ")]
        assert "drift unknown: " in overview and "unknown" in overview  # the row's state and drift columns
    finally:
        asyncio.run(drop_database(pg18, url))
