"""Paths never escape the project: symbolic links out of it, discovery above it and NUL bytes are refused.

Every attack goes through the MCP tools (in-memory `mcp.Client`) with the project as the server's working
directory; the database is then checked on a plain connection, and no answer may show the refused file's content.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from mcp import Client

from pgshift.server.app import build_app
from pgshift.tools.databases import Environment
from pgshift.tools.errors import ConfigError
from pgshift.tools.migrations.folder import find_migrations_dir, read_migration, read_migrations

SECRET = "-- SECRET-OUTSIDE-THE-PROJECT\nCREATE TABLE leaked (id int);\n"
MARKER = "SECRET-OUTSIDE-THE-PROJECT"
INIT = 'CREATE TABLE "Note" (id text PRIMARY KEY);\n'


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside the project holding SQL and a marker that must never be shown."""
    path = tmp_path / "outside" / "secret.sql"
    path.parent.mkdir()
    path.write_text(SECRET)
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


async def db_state(url: str) -> tuple[bool, bool]:
    """(table `leaked` exists, any history schema exists), read on a plain connection."""
    conn = await asyncpg.connect(url)
    try:
        leaked = await conn.fetchval("SELECT to_regclass('public.leaked') IS NOT NULL")
        history = await conn.fetchval(
            "SELECT count(*) > 0 FROM pg_namespace WHERE nspname IN ('pgshift', 'supabase_migrations')"
        )
        return bool(leaked), bool(history)
    finally:
        await conn.close()


async def answers(url: str, calls: list[tuple[str, dict[str, Any]]]) -> list[tuple[bool, str]]:
    """(is_error, every text of the answer) for each call, on a writable unprotected environment."""
    envs = [Environment(name="local", url=url, protected=False)]
    out = []
    async with Client(build_app(lambda: envs), raise_exceptions=False) as client:
        for name, args in calls:
            result = await client.call_tool(name, args)
            text = " ".join(getattr(c, "text", "") for c in result.content) + json.dumps(result.structured_content)
            out.append((result.is_error, text))
    return out


def prisma_folder(root: Path, name: str = "20240101000000_init") -> Path:
    folder = root / "prisma" / "migrations" / name
    folder.mkdir(parents=True)
    return folder


async def test_a_migration_sql_symlinked_out_of_the_project_is_refused_and_never_shown(
    db18: str, project: Path, outside: Path
) -> None:
    (prisma_folder(project, "20240101000000_init") / "migration.sql").write_text(INIT)
    (prisma_folder(project, "20240202000000_evil") / "migration.sql").symlink_to(outside)
    evil = "prisma/migrations/20240202000000_evil"
    results = await answers(
        db18,
        [
            ("check_migration", {"environment": "local", "migration": evil}),
            ("check_migration", {"environment": "local", "migration": f"{evil}/migration.sql"}),
            ("apply_migration", {"environment": "local", "name": "evil", "migration": evil}),
            ("list_migrations", {}),
            ("deploy", {"environment": "local"}),
            ("deploy", {"environment": "local", "directory": "prisma/migrations"}),
        ],
    )
    for is_error, text in results:
        assert is_error, text
        assert MARKER not in text and "leaked" not in text
        assert "outside" in text and "refused" in text
    assert await db_state(db18) == (False, False)


async def test_a_supabase_file_symlinked_out_of_the_project_is_refused(db18: str, project: Path, outside: Path) -> None:
    folder = project / "supabase" / "migrations"
    folder.mkdir(parents=True)
    (folder / "20240101000000_init.sql").write_text(INIT)
    (folder / "20240202000000_evil.sql").symlink_to(outside)
    results = await answers(db18, [("list_migrations", {}), ("deploy", {"environment": "local"})])
    for is_error, text in results:
        assert is_error and MARKER not in text and "resolves outside" in text, text
    assert await db_state(db18) == (False, False)


async def test_a_migrations_folder_symlinked_out_of_the_project_is_refused(
    db18: str, project: Path, outside: Path
) -> None:
    elsewhere = outside.parent / "migrations"
    elsewhere.mkdir()
    (elsewhere / "20240202000000_evil.sql").symlink_to(outside)
    (project / "supabase").mkdir()
    (project / "supabase" / "migrations").symlink_to(elsewhere, target_is_directory=True)
    results = await answers(
        db18,
        [
            ("list_migrations", {}),
            ("deploy", {"environment": "local"}),
            ("deploy", {"environment": "local", "directory": "supabase/migrations"}),
        ],
    )
    for is_error, text in results:
        assert is_error and MARKER not in text and "outside" in text, text
    assert await db_state(db18) == (False, False)


async def test_discovery_never_deploys_the_parent_folders_migrations(db18: str, project: Path) -> None:
    parent = project.parent / "supabase" / "migrations"
    parent.mkdir(parents=True)
    (parent / "20240101000000_leak.sql").write_text(SECRET)
    results = await answers(db18, [("list_migrations", {}), ("deploy", {"environment": "local"})])
    for is_error, text in results:
        assert is_error and "no migrations folder found in" in text and MARKER not in text, text
    assert await db_state(db18) == (False, False)


async def test_a_nul_byte_in_a_path_is_a_clear_tool_error(db18: str, project: Path) -> None:
    (prisma_folder(project) / "migration.sql").write_text(INIT)
    bad = "prisma/migrations\x00/../../etc"
    results = await answers(
        db18,
        [
            ("check_migration", {"environment": "local", "migration": bad}),
            ("apply_migration", {"environment": "local", "name": "x", "migration": bad}),
            ("list_migrations", {"directory": bad}),
            ("deploy", {"environment": "local", "directory": bad}),
        ],
    )
    for is_error, text in results:
        assert is_error and "NUL byte" in text, text
    assert await db_state(db18) == (False, False)


def test_the_engine_refuses_symlinks_out_of_the_folder_it_reads(tmp_path: Path, outside: Path) -> None:
    folder = prisma_folder(tmp_path)
    (folder / "migration.sql").symlink_to(outside)
    for read in (lambda: read_migrations(tmp_path), lambda: read_migration(str(folder))):
        with pytest.raises(ConfigError, match="resolves outside") as caught:
            read()
        assert MARKER not in str(caught.value)
    with pytest.raises(ConfigError, match="NUL byte"):
        find_migrations_dir(Path("prisma\x00"))


def test_a_symlink_that_stays_inside_the_migrations_folder_is_read(tmp_path: Path) -> None:
    folder = prisma_folder(tmp_path)
    (folder / "original.sql").write_text(INIT)
    (folder / "migration.sql").symlink_to(folder / "original.sql")
    (migration,) = read_migrations(tmp_path).migrations
    assert migration.sql == INIT
