"""Every file pgshift writes stays inside its folder, is created new, and never goes through a link (issue 16,
findings 4 and 5).

The attacks are planted on the file system (symbolic links out of a temporary project, files already there, a
name ending in a newline) and made through MCP tool calls; they are judged on the file system: the outside file's
content and mtime, and what `os.listdir` shows.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path, PurePath
from typing import Any

import pytest
from conftest import create_database, drop_database
from mcp import Client
from test_drift import ENV, deployed, execute, write_prisma

from pgshift.server.app import build_app
from pgshift.tools.approval import ApprovalStore
from pgshift.tools.databases import Databases, Environment
from pgshift.tools.errors import ConfigError
from pgshift.tools.files import check_name, private_dir, write_new, write_private
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.watch.fingerprint import CacheEntry, DriftCache

PRECIOUS = "-- the victim's own file: must never change\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The server's working folder (its project), with a victim folder and file outside it."""
    root = tmp_path / "project"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "victim.sql").write_text(PRECIOUS)
    monkeypatch.chdir(root)
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))
    return root


def untouched(tmp_path: Path) -> tuple[str, int, list[str]]:
    victim = tmp_path / "outside" / "victim.sql"
    return victim.read_text(), victim.stat().st_mtime_ns, sorted(os.listdir(tmp_path / "outside"))


async def snapshot_to_file(url: str) -> Any:
    async with Client(build_app(lambda: [Environment(name="local", url=url)]), raise_exceptions=False) as client:
        return await client.call_tool("snapshot_schema", {"environment": "local", "to_file": True})


def error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    return "\n".join(getattr(c, "text", "") for c in result.content)


async def test_a_linked_snapshot_folder_is_refused_and_the_outside_folder_gets_nothing(
    fresh_db: str, project: Path, tmp_path: Path
) -> None:
    (project / ".pgshift" / "snapshots").mkdir(parents=True)
    (project / ".pgshift" / "snapshots" / "local").symlink_to(tmp_path / "outside", target_is_directory=True)
    before = untouched(tmp_path)
    message = error_text(await snapshot_to_file(fresh_db))
    assert untouched(tmp_path) == before
    assert "symbolic link" in message and "nothing was written" in message


async def test_a_linked_top_folder_of_the_project_is_refused(fresh_db: str, project: Path, tmp_path: Path) -> None:
    (project / ".pgshift").symlink_to(tmp_path / "outside", target_is_directory=True)
    before = untouched(tmp_path)
    message = error_text(await snapshot_to_file(fresh_db))
    assert untouched(tmp_path) == before and "symbolic link" in message


async def test_a_linked_snapshot_file_is_never_written_through(fresh_db: str, project: Path, tmp_path: Path) -> None:
    folder = project / ".pgshift" / "snapshots" / "local"
    folder.mkdir(parents=True)
    for snapshot_id in range(1, 50):  # whatever id the next snapshot gets, its file name is a planted link
        (folder / f"{snapshot_id}.sql").symlink_to(tmp_path / "outside" / "victim.sql")
    before = untouched(tmp_path)
    message = error_text(await snapshot_to_file(fresh_db))
    assert untouched(tmp_path) == before
    assert "symbolic link" in message and "recorded" in message  # says the row exists, only the file was refused


async def test_an_existing_snapshot_file_is_never_overwritten(fresh_db: str, project: Path) -> None:
    folder = project / ".pgshift" / "snapshots" / "local"
    folder.mkdir(parents=True)
    for snapshot_id in range(1, 50):
        (folder / f"{snapshot_id}.sql").write_text(PRECIOUS)
    message = error_text(await snapshot_to_file(fresh_db))
    assert "already exists" in message
    assert {p.read_text() for p in folder.iterdir()} == {PRECIOUS}


async def test_a_snapshot_file_is_written_new_inside_the_project(fresh_db: str, project: Path) -> None:
    result = await snapshot_to_file(fresh_db)
    assert not result.is_error, result.content
    written = Path(result.structured_content["file"])
    assert written.parent == (project / ".pgshift" / "snapshots" / "local").resolve()
    info = os.lstat(written)
    assert stat.S_ISREG(info.st_mode) and not stat.S_IMODE(info.st_mode) & 0o022


@pytest.fixture
async def drifted(pg18: LocalPostgres, project: Path) -> AsyncIterator[tuple[str, Path]]:
    """A production deployed from the project's Prisma folder, then changed by hand (so adopt has a file to write)."""
    url = await create_database(pg18, "adopt")
    folder = write_prisma(project)
    db = Databases([Environment(name=ENV, url=url)])
    try:
        await deployed(db, folder)
    finally:
        await db.close()
    await execute(url, "ALTER TABLE account ADD COLUMN note text")
    yield url, folder
    await drop_database(pg18, url)


def every_name(root: Path) -> list[str]:
    return [name for _, dirs, files in os.walk(root) for name in dirs + files]


async def test_an_adopt_name_is_matched_in_full_and_a_newline_never_reaches_a_file_name(
    drifted: tuple[str, Path], project: Path
) -> None:
    url, folder = drifted
    in_folder = sorted(every_name(folder))
    async with Client(build_app(lambda: [Environment(name=ENV, url=url)]), raise_exceptions=False) as client:
        for name in ["evil\n", "evil\r", "ok\nDROP", "../evil", "evil/x", "", "a" * 101, "é"]:
            result = await client.call_tool("adopt_drift", {"environment": ENV, "name": name})
            assert "nothing was written" in error_text(result), name
        assert sorted(every_name(folder)) == in_folder  # (a drift check may keep its expected schema beside)
        assert not [n for n in every_name(project) if "\n" in n or "\r" in n]
        result = await client.call_tool("adopt_drift", {"environment": ENV, "name": "evil"})  # the same, in full
    assert not result.is_error, result.content
    assert [n for n in every_name(folder) if n not in in_folder] == [
        Path(result.structured_content["path"]).parent.name
    ]


def test_write_new_refuses_escapes_links_and_existing_files(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "victim").write_text(PRECIOUS)
    for bad in ("../outside/x", "/etc/passwd", "a/../../outside/x", "", "."):
        with pytest.raises(ConfigError, match="not a path inside the project"):
            write_new(root, bad, "x")
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ConfigError, match="symbolic link"):
        write_new(root, PurePath("link", "x.sql"), "x")
    (root / "file.sql").symlink_to(outside / "victim")
    with pytest.raises(ConfigError, match="symbolic link"):
        write_new(root, "file.sql", "x")
    (root / "dangling.sql").symlink_to(outside / "not-yet")
    with pytest.raises(ConfigError, match="symbolic link"):
        write_new(root, "dangling.sql", "x")
    assert sorted(os.listdir(outside)) == ["victim"] and (outside / "victim").read_text() == PRECIOUS
    (root / "plain").write_text("")
    with pytest.raises(ConfigError, match="not a folder"):
        write_new(root, PurePath("plain", "x.sql"), "x")
    written = write_new(root, PurePath("a", "b", "c.sql"), "text")
    assert written.read_text() == "text"
    with pytest.raises(ConfigError, match="already exists"):
        write_new(root, PurePath("a", "b", "c.sql"), "other")
    with pytest.raises(ConfigError, match="already exists"):
        write_new(root, PurePath("a", "b", "d.sql"), "x", new_folder=True)
    assert written.read_text() == "text"


def test_names_from_arguments_are_matched_in_full() -> None:
    assert check_name("prod_eu-1.x", "environment name") == "prod_eu-1.x"
    for bad in ("evil\n", ".hidden", "a/b", "..", "", "x" * 101, "tab\t"):
        with pytest.raises(ConfigError):
            check_name(bad, "environment name")


def test_a_linked_approvals_folder_is_refused_and_gets_no_approval(tmp_path: Path) -> None:
    state, elsewhere = tmp_path / "state", tmp_path / "elsewhere"
    state.mkdir()
    elsewhere.mkdir()
    (state / "approvals").symlink_to(elsewhere, target_is_directory=True)
    store = ApprovalStore(state)
    with pytest.raises(ConfigError, match="symbolic link"):
        store.file("apply_migration", "production", "postgres://h/db", ["DROP TABLE victim"], ["b"])
    assert os.listdir(elsewhere) == []


def test_the_state_folder_is_private_and_its_files_are_0600(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    request = ApprovalStore(state).file("apply_migration", "production", "postgres://h/db", ["SELECT 1"], ["b"])
    approvals = state / "approvals"
    assert stat.S_IMODE(os.lstat(approvals).st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(approvals / f"{request.id}.json").st_mode) == 0o600
    (approvals / "planted").symlink_to(tmp_path / "victim")
    with pytest.raises(ConfigError, match="symbolic link"):
        write_private(approvals, "planted", "x")
    assert not (tmp_path / "victim").exists()
    cache = DriftCache(state / "drift-cache")
    cache.store("k", CacheEntry(fingerprint="0" * 64, result="{}"))
    assert stat.S_IMODE(os.lstat(state / "drift-cache").st_mode) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="planting a link owned by another user needs root (lchown)")
def test_a_link_on_the_way_to_the_state_folder_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "real", target_is_directory=True)
    os.lchown(link, 65534, 65534)
    with pytest.raises(ConfigError, match="owned by uid 65534"):
        private_dir(link / "state")
    assert os.listdir(tmp_path / "real") == []
    os.lchown(link, os.geteuid(), os.getegid())  # ours: followed
    assert private_dir(link / "state") == link / "state"


def test_a_folder_on_the_way_to_the_state_folder_that_anyone_may_change_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # writable by everyone, no sticky bit: another user could swap our folder inside it
    with pytest.raises(ConfigError, match="can be changed by another user"):
        private_dir(shared / "state")
    assert os.listdir(shared) == []
    shared.chmod(0o1777)  # with the sticky bit (like /tmp) only we may rename what we create there
    assert stat.S_IMODE(os.lstat(private_dir(shared / "state")).st_mode) == 0o700
