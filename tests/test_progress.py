"""Long work reports progress: MCP progress notifications to a client that asked for them (deploy per migration,
compare per stage), a `\\r` line on a terminal for the CLI, and nothing at all when stderr is not a terminal."""

from __future__ import annotations

import io
from pathlib import Path

import asyncpg
import pytest
from mcp import Client
from support_apply import prisma_folder

from pgshift.server.app import build_app
from pgshift.server.cli import main
from pgshift.server.progress import TerminalProgress
from pgshift.tools.databases import Environment

MIGRATIONS = {f"2024010{i}000000_step{i}": f"CREATE TABLE step{i} (id int);\n" for i in range(1, 5)}


async def test_a_deploy_of_several_migrations_sends_progress_notifications_to_an_mcp_client(
    db18: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))
    prisma_folder(tmp_path, MIGRATIONS)
    heard: list[tuple[float, float | None, str | None]] = []

    async def listen(progress: float, total: float | None, message: str | None) -> None:
        heard.append((progress, total, message))

    envs = [Environment(name="local", url=db18)]
    async with Client(build_app(lambda: envs), raise_exceptions=False) as client:
        result = await client.call_tool("deploy", {"environment": "local"}, progress_callback=listen)
        compared = await client.call_tool(
            "compare_schemas", {"source": "local", "target": "local"}, progress_callback=listen
        )
    assert not result.is_error, result.content
    assert not compared.is_error, compared.content
    deploy_heard = [h for h in heard if h[2] and ("applying" in h[2] or "applied" in h[2])]
    assert len(deploy_heard) >= len(MIGRATIONS) + 1  # one per migration, and the end
    assert [h[0] for h in deploy_heard] == sorted(h[0] for h in deploy_heard)  # never goes backwards
    assert deploy_heard[-1][:2] == (4, 4) and "step4" in (deploy_heard[-2][2] or "")
    assert any("reading both schemas" in (h[2] or "") for h in heard)  # compare reports its stages too
    conn = await asyncpg.connect(db18)  # the work itself was done
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'step%'") == 4
    finally:
        await conn.close()


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_the_terminal_progress_line_redraws_in_place_and_erases_itself_only_on_a_tty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("PGSHIFT_NO_PROGRESS", raising=False)
    tty = Tty()
    line = TerminalProgress("deploy", tty)
    await line(0, 2, "applying 20240101000000_a (1 of 2)")
    await line(1, 2, "applying 20240102000000_b (2 of 2)")
    line.close()
    drawn = tty.getvalue()
    assert drawn.startswith("\rpgshift deploy: applying 20240101000000_a (1 of 2) [0/2]")
    assert "\rpgshift deploy: applying 20240102000000_b (2 of 2) [1/2]" in drawn
    assert drawn.endswith("\r") and "\n" not in drawn  # erased: the next message starts on a clean line

    piped = io.StringIO()  # not a terminal: CI logs and pipes get nothing
    quiet = TerminalProgress("deploy", piped)
    await quiet(0, 2, "applying")
    quiet.close()
    assert piped.getvalue() == ""
    monkeypatch.setenv("CI", "true")
    assert not TerminalProgress("deploy", Tty()).enabled


def test_pgshift_deploy_in_a_pipe_prints_no_progress_line(
    db18: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))
    folder = prisma_folder(tmp_path, MIGRATIONS)
    assert main(["deploy", "--target", db18, "--migrations", str(folder), "--yes"]) == 0
    captured = capsys.readouterr()
    assert "\r" not in captured.err and "\r" not in captured.out
