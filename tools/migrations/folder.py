"""Migration folders on disk: Prisma's `prisma/migrations/<folder>/migration.sql` and Supabase's
`supabase/migrations/<version>_<name>.sql`, read in the order their own tools apply them.

Each migration keeps its own version (the Prisma folder's timestamp, the Supabase file's version), never a
fresh one, so the histories written by pgshift, the Supabase CLI and Prisma agree. The checksum is Prisma's:
SHA-256 hex of the script's bytes.

Paths never escape: every file read resolves (symbolic links followed) inside the folder it was found in, a
discovered folder inside the directory the search started from (never its parents), and a path with a NUL byte
or that cannot be resolved is a ConfigError. A refused file is never opened.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from pgshift.tools.errors import ConfigError
from pgshift.tools.options import DIRECTORY

PRISMA_SCRIPT = "migration.sql"
PRISMA_LOCK = "migration_lock.toml"
_LEADING_VERSION = re.compile(r"^(\d+)(?:[_\- ](.*))?$", re.DOTALL)
_SUPABASE_FILE = re.compile(r"^(\d+)_(.*)\.sql$", re.DOTALL)

Source = Literal["prisma", "supabase", "sql"]


class Migration(BaseModel):
    """One migration script with the identity every history table records."""

    model_config = ConfigDict(frozen=True)

    version: str
    name: str
    source: Source
    sql: str
    checksum: str
    path: str | None = None
    prisma_name: str | None = None
    """The folder name Prisma records in `_prisma_migrations.migration_name` (Prisma sources only)."""

    @property
    def label(self) -> str:
        return self.prisma_name or f"{self.version}_{self.name}"


class MigrationFolder(BaseModel):
    model_config = ConfigDict(frozen=True)

    directory: str
    kind: Literal["prisma", "supabase"]
    migrations: list[Migration]
    warnings: list[str] = []


def checksum(script: bytes | str) -> str:
    """Prisma's checksum: SHA-256 hex of the script exactly as stored."""
    data = script.encode() if isinstance(script, str) else script
    return hashlib.sha256(data).hexdigest()


def checksum_matches(script: str, recorded: str) -> bool:
    """Like Prisma, accept the same script with LF or CRLF line endings (git may convert them)."""
    lf = script.replace("\r\n", "\n")
    return recorded in {checksum(script), checksum(lf), checksum(lf.replace("\n", "\r\n"))}


def checked_path(path: str | Path) -> Path:
    """A caller's path as a Path; ConfigError for a NUL byte (the OS cannot name such a file)."""
    text = str(path)
    if "\x00" in text:
        raise ConfigError(f"invalid path {text!r}: it contains a NUL byte; nothing was read")
    return Path(text)


def contained(path: Path, root: Path) -> Path:
    """`path` with symbolic links resolved; ConfigError unless it lies inside `root` (resolved too)."""
    try:
        resolved, base = checked_path(path).resolve(), checked_path(root).resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"invalid path {str(path)!r} ({type(exc).__name__}): nothing was read") from None
    if not resolved.is_relative_to(base):
        raise ConfigError(f"{path} resolves outside {base} (a symbolic link?): refused, nothing was read from it")
    return resolved


def _read(path: Path, root: Path) -> tuple[str, bytes]:
    """The script at `path` (which must resolve inside `root`): its text and its bytes."""
    data = contained(path, root).read_bytes()
    try:
        text = data.decode("utf-8-sig") if data.startswith(b"\xef\xbb\xbf") else data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"migration {path} is not valid UTF-8: fix its encoding, nothing was read") from None
    return text, data


def script_file(reference: str | Path) -> Path:
    """The script a path names: a .sql file itself, or a folder's migration.sql (resolving inside that folder)."""
    path = checked_path(reference)
    if path.is_dir():
        contained(path / PRISMA_SCRIPT, path)
        return path / PRISMA_SCRIPT
    return path


def split_label(label: str) -> tuple[str, str]:
    """`20230406064219_init` -> ("20230406064219", "init"); a label without leading digits is its own version."""
    match = _LEADING_VERSION.fullmatch(label)
    if match is None:
        return label, label
    return match.group(1), match.group(2) or ""


def _unique_versions(migrations: list[Migration]) -> list[Migration]:
    """Two Prisma folders may share a timestamp (8-digit dates): those use the full folder name as version."""
    counts = Counter(m.version for m in migrations)
    return [
        m.model_copy(update={"version": m.prisma_name}) if counts[m.version] > 1 and m.prisma_name else m
        for m in migrations
    ]


def read_prisma_folder(directory: Path) -> MigrationFolder:
    """Every `<folder>/migration.sql`, ordered by folder name as Prisma does (byte order, any name)."""
    warnings: list[str] = []
    migrations: list[Migration] = []
    folders = sorted((p for p in directory.iterdir() if p.is_dir()), key=lambda p: p.name.encode())
    for folder in folders:
        script = folder / PRISMA_SCRIPT
        if not script.is_file():
            warnings.append(f"folder '{folder.name}' has no {PRISMA_SCRIPT}: skipped (Prisma would refuse it)")
            continue
        sql, data = _read(script, directory)
        version, name = split_label(folder.name)
        migrations.append(
            Migration(
                version=version,
                name=name,
                source="prisma",
                sql=sql,
                checksum=checksum(data),
                path=str(script),
                prisma_name=folder.name,
            )
        )
    return MigrationFolder(
        directory=str(directory), kind="prisma", migrations=_unique_versions(migrations), warnings=warnings
    )


def read_supabase_folder(directory: Path) -> MigrationFolder:
    """Every `<version>_<name>.sql`, ordered by version like the Supabase CLI."""
    warnings: list[str] = []
    found: list[Migration] = []
    for path in sorted(p for p in directory.iterdir() if p.is_file() and p.suffix == ".sql"):
        match = _SUPABASE_FILE.fullmatch(path.name)
        if match is None:
            warnings.append(
                f"file '{path.name}' is not named <version>_<name>.sql: skipped (the Supabase CLI skips it)"
            )
            continue
        sql, data = _read(path, directory)
        found.append(
            Migration(
                version=match.group(1),
                name=match.group(2),
                source="supabase",
                sql=sql,
                checksum=checksum(data),
                path=str(path),
            )
        )
    duplicates = sorted(v for v, n in Counter(m.version for m in found).items() if n > 1)
    if duplicates:
        raise ConfigError(
            f"{directory}: several files share version {', '.join(duplicates)}; the Supabase CLI refuses this too. "
            "Rename one so every version is unique."
        )
    found.sort(key=lambda m: (int(m.version), m.version))
    return MigrationFolder(directory=str(directory), kind="supabase", migrations=found, warnings=warnings)


def _looks_like_prisma(directory: Path) -> bool:
    if (directory / PRISMA_LOCK).is_file():
        return True
    return any(p.is_dir() and (p / PRISMA_SCRIPT).is_file() for p in directory.iterdir())


def _looks_like_supabase(directory: Path) -> bool:
    return any(p.is_file() and _SUPABASE_FILE.fullmatch(p.name) for p in directory.iterdir())


def find_migrations_dir(start: Path | None = None) -> Path:
    """The migrations folder: `start` itself, or `start/prisma/migrations` or `start/supabase/migrations`.

    Without `start`, the current directory (the project) is searched, never its parents; a folder found there
    must resolve inside it (a symbolic link out of the project is refused).
    """
    if start is not None and not checked_path(start).is_dir():
        raise ConfigError(f"migrations directory {start} does not exist (or is not a directory)")
    base = start or Path.cwd()
    origin = contained(base, base)  # resolved
    if _looks_like_prisma(origin) or _looks_like_supabase(origin):
        return origin
    candidates = [d for d in (origin / "prisma" / "migrations", origin / "supabase" / "migrations") if d.is_dir()]
    if len(candidates) == 2:
        raise ConfigError(
            f"{origin} has both prisma/migrations and supabase/migrations: pass the one to use as {DIRECTORY}"
        )
    if candidates:
        return contained(candidates[0], origin)
    raise ConfigError(
        f"no migrations folder found in {origin}: expected prisma/migrations or supabase/migrations there "
        f"(the search does not leave this directory; pass {DIRECTORY} explicitly)"
    )


def read_migrations(directory: str | Path | None = None) -> MigrationFolder:
    """Read the migrations folder (found automatically when `directory` is None)."""
    path = find_migrations_dir(checked_path(directory) if directory is not None else None)
    if _looks_like_prisma(path):
        return read_prisma_folder(path)
    return read_supabase_folder(path)


def read_migration(reference: str, directory: str | Path | None = None) -> Migration:
    """One migration from a path (Prisma folder, its migration.sql, a Supabase file) or a folder name/version
    looked up in the migrations folder."""
    path = checked_path(reference)
    if path.is_file() and path.name == PRISMA_SCRIPT:
        path = path.parent
    if path.is_dir() and (path / PRISMA_SCRIPT).is_file():
        folder = read_prisma_folder(path.parent)
        return _pick(folder, lambda m: m.prisma_name == path.name, reference)
    if path.is_file():
        folder = read_supabase_folder(path.parent)
        if _SUPABASE_FILE.fullmatch(path.name):
            return _pick(folder, lambda m: m.path is not None and Path(m.path).name == path.name, reference)
        sql, data = _read(path, path)  # a file named explicitly is read as named (the caller vetted the path)
        version, name = split_label(path.stem)
        return Migration(version=version, name=name, source="sql", sql=sql, checksum=checksum(data), path=str(path))
    folder = read_migrations(directory)
    return _pick(folder, lambda m: reference in (m.version, m.prisma_name, m.label, m.name), reference)


def _pick(folder: MigrationFolder, pred: Callable[[Migration], bool], reference: str) -> Migration:
    matches = [m for m in folder.migrations if pred(m)]
    if len(matches) != 1:
        what = "no migration" if not matches else f"{len(matches)} migrations"
        raise ConfigError(f"{what} in {folder.directory} match '{reference}': pass a path or a full folder name")
    return matches[0]
