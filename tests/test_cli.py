"""The `pgshift` command line against real PostgreSQL: exit codes CI can gate on, data on stdout."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgshift.server.cli import main
from pgshift.tools.localpg import LocalPostgres

INIT = 'CREATE TABLE "Note" ("id" TEXT NOT NULL, CONSTRAINT "Note_pkey" PRIMARY KEY ("id"));\n'
SECOND = 'ALTER TABLE "Note" ADD COLUMN "body" TEXT;\n'


@pytest.fixture
def target(pg18: LocalPostgres) -> Iterator[str]:
    import asyncio

    from conftest import create_database, drop_database

    url = asyncio.run(create_database(pg18, "cli"))
    yield url
    asyncio.run(drop_database(pg18, url))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for folder, sql in [("20240101000000_init", INIT), ("20240202000000_body", SECOND)]:
        (tmp_path / "prisma" / "migrations" / folder).mkdir(parents=True)
        (tmp_path / "prisma" / "migrations" / folder / "migration.sql").write_text(sql)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SUPABASE_DB_URL", raising=False)
    return tmp_path


def test_status_deploy_status_goes_from_pending_to_in_sync(
    target: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--target", target, "--json"]) == 2
    before = json.loads(capsys.readouterr().out)
    assert before["environments"][0]["in_sync"] is False
    assert main(["deploy", "--target", target, "--yes"]) == 0
    assert main(["status", "--target", target]) == 0
    capsys.readouterr()
    assert main(["deploy", "--target", target, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "up_to_date"


def test_check_exits_zero_for_a_clean_migration_and_prints_json(
    target: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--target", target, "prisma/migrations/20240101000000_init", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dry_run"]["succeeded"] is True


def test_a_protected_target_needs_yes_to_apply(target: str, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "pgshift.toml").write_text(f"[environments.production]\nurl = '{target}'\n")
    migration = "prisma/migrations/20240101000000_init"
    assert main(["apply", "--target", "production", migration, "--name", "init"]) == 2
    assert "re-run with --yes" in capsys.readouterr().err
    assert main(["apply", "--target", "production", migration, "--name", "init", "--yes"]) == 0
    capsys.readouterr()
    assert main(["status", "--target", "production", "--json"]) == 2
    rows = {m["version"]: m["states"]["production"] for m in json.loads(capsys.readouterr().out)["migrations"]["data"]}
    assert rows == {"20240101000000": "applied", "20240202000000": "pending"}


def test_a_raw_url_target_is_protected_so_apply_and_deploy_need_yes_and_say_so_in_cli_words(
    target: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    migration = "prisma/migrations/20240101000000_init"
    assert main(["apply", "--target", target, migration, "--name", "init"]) == 2
    captured = capsys.readouterr()
    assert '"Note"' in captured.out and "re-run with --yes" in captured.err
    assert "approval_id" not in captured.out + captured.err and "pgshift approve" not in captured.out + captured.err
    assert main(["deploy", "--target", target, "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "confirmation_required" and out["approval_id"] is None and "--yes" in out["message"]
    assert main(["status", "--target", target]) == 2  # nothing was applied


def test_check_given_a_migrations_folder_checks_each_migration_the_target_lacks(
    target: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--target", target, "prisma/migrations"]) == 0
    out = capsys.readouterr().out
    assert "20240101000000_init" in out and "20240202000000_body" in out and out.count("ready to apply") == 2
    assert main(["apply", "--target", target, "prisma/migrations/20240101000000_init", "--name", "init", "--yes"]) == 0
    capsys.readouterr()
    assert main(["check", "--target", target, "prisma/migrations", "--json"]) == 0
    checked = json.loads(capsys.readouterr().out)
    assert [Path(c["migration"]).parent.name for c in checked] == ["20240202000000_body"]


def test_check_never_calls_a_migration_with_lint_errors_ready_to_apply(
    target: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", "--target", target, "prisma/migrations/20240101000000_init", "--name", "init", "--yes"]) == 0
    (project / "drop.sql").write_text('DROP TABLE "Note";\n')
    capsys.readouterr()
    main(["check", "--target", target, "drop.sql"])
    out = capsys.readouterr().out
    assert "error(s)" in out and "lint: 0 error(s)" not in out and "ready to apply" not in out, out
    assert "no blocker, but read the lint error(s) before applying" in out, out


def test_an_unknown_target_is_an_error_exit(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--target", "nowhere"]) == 1
    err = capsys.readouterr().err
    assert (
        "neither a postgresql:// URL nor a configured environment" in err and "Next step: pass a postgresql://" in err
    )


# A password with every character a URL gives a meaning to, unencoded; each fragment is distinctive ("Qz").
BAD_URL = "postgresql://postgres:Qz1#Qz2/Qz3?Qz4@Qz5%Qz6 Qz7@127.0.0.1:1/postgres"
MIGRATION = "prisma/migrations/20240101000000_init"
COMMANDS = [
    ["compare", "--source", BAD_URL, "--target", BAD_URL],
    ["compare", "--source", "{target}", "--target", BAD_URL, "--json"],
    ["plan", "--source", BAD_URL, "--target", "{target}"],
    ["check", "--target", BAD_URL, MIGRATION],
    ["apply", "--target", BAD_URL, MIGRATION, "--name", "init", "--yes"],
    ["status", "--target", BAD_URL],
    ["deploy", "--target", BAD_URL, "--yes"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_command_given_a_malformed_url_fails_in_one_line_without_the_password(
    target: str, project: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    code = main([part.replace("{target}", target) for part in command])
    captured = capsys.readouterr()
    assert code == (2 if command[0] == "status" else 1)  # status lists an unreachable target: exit 2
    assert "Traceback" not in captured.err and "Qz" not in captured.err + captured.out
    assert "percent-encode" in captured.err + captured.out


def test_a_reader_that_stops_early_ends_the_command_quietly(target: str, project: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "pgshift.server.cli", "compare", "--source", target, "--target", target, "--json"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert proc.stdout is not None
    proc.stdout.close()  # like `| head` that has read enough
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141 and err.decode() == ""


def test_python_m_server_keeps_bad_input_off_stderr_and_marks_only_the_bad_environment(
    tmp_path: Path, pg18: LocalPostgres
) -> None:
    import subprocess
    import sys

    from mcp.types import LATEST_PROTOCOL_VERSION

    def request(i: int, method: str, params: dict[str, object]) -> str:
        return json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params})

    def call(i: int, tool: str, **args: object) -> str:
        return request(i, "tools/call", {"name": tool, "arguments": args})

    init = {"protocolVersion": LATEST_PROTOCOL_VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    lines = [
        request(1, "initialize", init),
        json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        call(2, "list_environments"),
        call(3, "list_tables", environment="local"),
        call(4, "execute_sql", environment="production", sql="SELEC nonsense"),
        call(5, "list_tables", environment="nowhere"),
        call(6, "describe_table", environment="production", table='"unterminated'),
        call(7, "execute_sql", environment="production", sql="SELECT 1", limit="many"),
        "this is not json",
        json.dumps({"jsonrpc": "2.0", "id": 8, "method": "no/such/method"}),
        call(9, "list_environments"),
    ]
    env = {**os.environ, "DATABASE_URL": BAD_URL, "SUPABASE_DB_URL": pg18.url()}
    env.pop("PGSHIFT_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "server"],  # the repository's own entry point, found through PYTHONPATH
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert proc.stdin is not None and proc.stdout is not None
    watchdog = threading.Timer(120, proc.kill)  # bounds every read below
    watchdog.start()
    try:
        proc.stdin.write("\n".join(lines) + "\n")
        proc.stdin.flush()
        answers: dict[int, dict[str, Any]] = {}
        while not {3, 4, 5, 6, 7, 8, 9} <= set(answers) and (line := proc.stdout.readline()):
            message = json.loads(line)
            answers[message.get("id", -1)] = message
        out, err = proc.communicate()  # closes stdin: the server ends
    finally:
        watchdog.cancel()
    assert "Traceback" not in err and "Qz" not in err + out + json.dumps(answers), err
    listed = {e["name"]: e for e in answers[9]["result"]["structuredContent"]["environments"]}
    assert listed["production"]["reachable"] and not listed["local"]["reachable"]
    assert "environment 'local'" in listed["local"]["error"] and "percent-encode" in listed["local"]["error"]
    assert answers[3]["result"]["isError"] and "environment 'local'" in answers[3]["result"]["content"][0]["text"]
