"""The `pgshift` command line against real PostgreSQL: exit codes CI can gate on, data on stdout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.cli import main
from tools.localpg import LocalPostgres

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
    assert main(["deploy", "--target", target]) == 0
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
    rows = {m["version"]: m["states"]["production"] for m in json.loads(capsys.readouterr().out)["migrations"]}
    assert rows == {"20240101000000": "applied", "20240202000000": "pending"}


def test_an_unknown_target_is_an_error_exit(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--target", "nowhere"]) == 1
    assert "neither a postgresql:// URL nor a configured environment" in capsys.readouterr().err
