"""Messages name options the way the reader passes them: a CLI flag to a person at a terminal (`--migrations DIR`,
`--allow-data-loss`), the MCP argument to an assistant (`directory`, `allow_data_loss=true`). One spelling per flag
across commands (older spellings still parse, unseen). Approval prompts count the statements that will run and name
the project each request came from. Messages say what actually happened (the pooler's real port, how to approve).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import create_database, drop_database
from mcp import Client
from support_apply import prisma_folder

from pgshift.server.app import build_app
from pgshift.server.cli import build_parser
from pgshift.tools.approval import ApprovalStore, describe, request_line, statement_count
from pgshift.tools.databases import Environment
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.options import ALLOW_DATA_LOSS, DIRECTORY, cli_surface

PGSHIFT = Path(sys.executable).with_name("pgshift")  # the console script users run
INIT = (
    "CREATE TABLE a (id int PRIMARY KEY);\nCREATE TABLE b (id int PRIMARY KEY, a int REFERENCES a);\n"
    "CREATE INDEX b_a ON b (a);\nCOMMENT ON TABLE a IS 'one; two';\nINSERT INTO a VALUES (1);\n"
    "CREATE VIEW v AS SELECT 1 AS x;\n"
)


def pgshift(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {**os.environ, "PGSHIFT_STATE_DIR": str(cwd / "state"), **env}
    for name in ("DATABASE_URL", "SUPABASE_DB_URL", "PGSHIFT_DEBUG"):
        if name not in env:
            base.pop(name, None)
    return subprocess.run([str(PGSHIFT), *args], cwd=cwd, env=base, capture_output=True, text=True, timeout=120)


def test_an_option_renders_as_the_mcp_argument_by_default_and_as_the_flag_inside_the_cli() -> None:
    assert f"pass {DIRECTORY} explicitly" == "pass directory explicitly"
    assert f"with {ALLOW_DATA_LOSS}" == "with allow_data_loss=true"
    with cli_surface():
        assert f"pass {DIRECTORY} explicitly" == "pass --migrations DIR explicitly"
        assert f"with {ALLOW_DATA_LOSS}" == "with --allow-data-loss"
    assert str(ALLOW_DATA_LOSS) == "allow_data_loss=true"  # the surface is restored


async def test_a_missing_migrations_folder_names_the_flag_at_a_terminal_and_the_argument_over_mcp(
    db18: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = await asyncio.to_thread(pgshift, tmp_path, "status", "--target", db18)
    assert done.returncode == 1 and "pass --migrations DIR explicitly" in done.stderr, done.stderr
    assert "pass directory" not in done.stderr
    monkeypatch.chdir(tmp_path)
    envs = [Environment(name="local", url=db18)]
    async with Client(build_app(lambda: envs), raise_exceptions=False) as client:
        answer = await client.call_tool("list_migrations", {})
    assert answer.is_error and "pass directory explicitly" in str(answer.content)


async def test_pgshift_plan_that_loses_data_prints_the_plan_marked_and_names_the_flag(
    pg18: LocalPostgres, tmp_path: Path
) -> None:
    source, target = await create_database(pg18), await create_database(pg18)
    try:
        conn_sql = [(source, "CREATE TABLE t (a int)"), (target, "CREATE TABLE t (a int, old int)")]
        for url, sql in conn_sql:
            import asyncpg

            conn = await asyncpg.connect(url)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()
        done = await asyncio.to_thread(pgshift, tmp_path, "plan", "--source", source, "--target", target)
        assert done.returncode == 3
        assert "DELETES DATA" in done.stdout and "DROP COLUMN old" in done.stdout
        assert all(line.startswith("--") for line in done.stdout.splitlines())  # nothing psql would run
        assert "--allow-data-loss" in done.stderr and "allow_data_loss" not in done.stderr
        as_json = await asyncio.to_thread(pgshift, tmp_path, "plan", "--source", source, "--target", target, "--json")
        assert as_json.returncode == 3 and "re-run with --allow-data-loss" not in as_json.stdout
        assert "Plan again with --allow-data-loss" in as_json.stdout  # the plan's own withheld note, in CLI words
    finally:
        await drop_database(pg18, source)
        await drop_database(pg18, target)


def test_every_command_spells_each_flag_one_way_and_old_spellings_still_parse_unseen() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and "status" in a.choices)  # type: ignore[operator]
    shown: dict[str, set[str]] = {}
    for name, command in sub.choices.items():  # type: ignore[union-attr]
        help_text = command.format_help()
        assert "--dir " not in help_text and "--accept-data-loss" not in help_text, name
        shown[name] = {o for a in command._actions for o in a.option_strings if a.help != "==SUPPRESS=="}
    folder_flags = {o for opts in shown.values() for o in opts if o in ("--dir", "--migrations", "--directory")}
    assert folder_flags == {"--migrations"}
    assert {c for c, opts in shown.items() if "--migrations" in opts} >= {"status", "deploy", "drift", "dashboard"}
    loss_flags = {o for opts in shown.values() for o in opts if "data-loss" in o}
    assert loss_flags == {"--allow-data-loss"}
    assert parser.parse_args(["drift", "--target", "x", "--dir", "m"]).migrations == "m"
    assert parser.parse_args(["rollback", "--target", "x", "--snapshot", "1", "--accept-data-loss"]).accept_data_loss
    assert parser.parse_args(["rollback", "--target", "x", "--snapshot", "1", "--allow-data-loss"]).accept_data_loss


async def test_a_deploy_waiting_for_approval_counts_its_statements_names_its_project_and_says_how_to_approve(
    db18: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "shop"
    prisma_folder(project, {"20240101000000_init": INIT})
    monkeypatch.chdir(project)
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))
    envs = [Environment(name="production", url=db18, protected=True)]
    async with Client(build_app(lambda: envs), raise_exceptions=False) as client:
        answer = await client.call_tool("deploy", {"environment": "production"})
    assert not answer.is_error and answer.structured_content is not None
    waiting = answer.structured_content
    assert waiting["status"] == "confirmation_required"
    assert f"pgshift approve {waiting['approval_id']}" in waiting["next_step"]
    [request] = ApprovalStore(tmp_path / "state").listed()
    assert statement_count(request) == 6  # six statements, one of them with a ';' inside a string
    prompt = describe(request)
    assert "6 statements in 1 migration(s)" in prompt and "--- 6\nCREATE VIEW v AS SELECT 1 AS x" in prompt
    assert f"asked from: {project}" in prompt
    line = request_line(request)
    assert str(project) in line and "'production'" in line and line.endswith("6 statements")


def test_the_pooler_refusal_names_the_port_and_setting_the_url_gives(pg18: LocalPostgres, tmp_path: Path) -> None:
    url = asyncio.run(create_database(pg18, "pool"))
    try:
        prisma_folder(tmp_path, {"20240101000000_init": "CREATE TABLE a (id int);\n"})
        (tmp_path / "pgshift.toml").write_text(
            f'[environments.staging]\nurl = "{url}?pgbouncer=true"\nprotected = false\n'
        )
        done = pgshift(tmp_path, "deploy", "--target", "staging")
        port = url.rsplit(":", 1)[1].split("/")[0]
        assert done.returncode == 1
        assert f"transaction pooler (pgbouncer=true in its URL, port {port})" in done.stderr, done.stderr
        assert "6543" not in done.stderr
    finally:
        asyncio.run(drop_database(pg18, url))


def read_all(fd: int, proc: subprocess.Popen[bytes]) -> str:
    """Everything the command writes to its terminal until it exits (bounded)."""
    import select

    out, deadline = b"", time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the other end closed: the command is done
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    return out.decode(errors="replace")


def test_pgshift_approve_lists_each_request_with_its_project_environment_and_counted_statements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pty

    store = ApprovalStore(tmp_path / "state")
    for project in ("shop", "blog"):
        (tmp_path / project).mkdir()
        monkeypatch.chdir(tmp_path / project)  # the folder an MCP server runs in: its project
        store.file("deploy", "production", "postgresql://u:****@h/db", [f"-- migration 1_init\n{INIT}"], ["b"])
    master, slave = pty.openpty()
    env = {**os.environ, "PGSHIFT_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.Popen([str(PGSHIFT), "approve"], stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path, env=env)
    os.close(slave)
    try:
        shown = read_all(master, proc)
        assert proc.wait(30) == 0, shown
    finally:
        os.close(master)
    lines = [line for line in shown.splitlines() if "deploy on 'production'" in line]
    assert len(lines) == 2, shown
    for project, line in zip(("shop", "blog"), lines, strict=True):
        assert f"from {tmp_path / project}" in line and line.rstrip().endswith("6 statements"), line
        assert "postgresql://u:****@h/db" in line


async def test_refusals_and_next_steps_read_as_sentences_never_empty_nor_doubled_stops(
    db18: str, pg18: LocalPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncpg

    monkeypatch.chdir(tmp_path)
    other = await create_database(pg18)
    try:
        conn = await asyncpg.connect(db18)
        try:
            await conn.execute("CREATE TABLE only_local (id int)")
        finally:
            await conn.close()
        envs = [Environment(name="local", url=db18), Environment(name="other", url=other)]
        async with Client(build_app(lambda: envs), raise_exceptions=False) as client:
            refused = await client.call_tool("execute_sql", {"environment": "local", "sql": "DELETE FROM pg_class"})
            differs = await client.call_tool("compare_schemas", {"source": "local", "target": "other"})
    finally:
        await drop_database(pg18, other)
    text = " ".join(getattr(c, "text", "") for c in refused.content)
    assert refused.is_error and "write=true" in text and ".." not in text, text
    assert differs.structured_content is not None and not differs.structured_content["in_sync"]
    assert "plan=true" in differs.structured_content["next_step"]  # a real step, never ""
