"""Every file pgshift writes: inside its folder, created exclusively, never through a symbolic link.

Two places receive files:

- a project (snapshot DDL under `.pgshift/snapshots/`, adopted migrations): `write_new` walks the relative path one
  component at a time from a descriptor of the project folder (`dir_fd`), creating missing folders and opening each
  with `O_NOFOLLOW`, and creates the file with `O_CREAT | O_EXCL | O_NOFOLLOW`. A linked folder or file anywhere on
  the way, a `..` component or an absolute path is refused, and nothing that exists is ever overwritten;
- pgshift's state directory (approvals, drift cache, keys): `private_dir` makes it 0700 and refuses a symbolic link
  on its path that neither we nor root own, or a final folder owned by another user; `write_private` creates a 0600
  file in it the same exclusive way.

Names that come from arguments are checked with `re.fullmatch` (`NAME`), never with a `$`-anchored `re.match`,
which accepts a trailing newline.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path, PurePath

from pgshift.tools.errors import ConfigError

NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")  # a file or folder name from an argument (no leading dot)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def check_name(value: str, what: str) -> str:
    """`value` if it is a whole safe name (letters, digits, `_`, `.`, `-`; no leading dot; no newline), else a
    ConfigError saying so."""
    if not NAME.fullmatch(value):
        raise ConfigError(
            f"{what} {value[:60]!r} cannot name a file: use 1-100 letters, digits, '_', '.' or '-' "
            "(not starting with '.'); nothing was written"
        )
    return value


def _parts(relative: PurePath | str) -> list[str]:
    path = PurePath(relative)
    parts = list(path.parts)
    if path.is_absolute() or not parts or any(p in ("", ".", "..") for p in parts):
        raise ConfigError(f"{str(relative)!r} is not a path inside the project: nothing was written")
    return parts


def _why(exc: OSError, shown: Path) -> str:
    if exc.errno in (errno.ELOOP, errno.EMLINK) or (exc.errno == errno.ENOTDIR and os.path.islink(shown)):
        return f"{shown} is a symbolic link: pgshift never writes through a link; nothing was written"
    if exc.errno == errno.ENOTDIR:
        return f"{shown} is not a folder: nothing was written"
    if exc.errno == errno.EEXIST:
        return f"{shown} already exists: refused to overwrite, nothing was written"
    return f"cannot write {shown}: {exc.strerror}; nothing was written"


@contextlib.contextmanager
def _opened_dir(path: str | Path, dir_fd: int | None = None) -> Iterator[int]:
    fd = os.open(path, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def _create(dir_fd: int, name: str, data: str | bytes, mode: int, shown: Path, *, replace: bool = False) -> None:
    """Write `data` to a new temporary file in the folder, then give it `name`: a hard link (fails when anything,
    a link included, is there: nothing is overwritten) or, with `replace`, a rename over it (a planted link is
    replaced, never followed). Either way no reader ever sees a half-written file."""
    tmp = f".tmp-{secrets.token_hex(8)}"
    fd = os.open(tmp, _NEW_FILE_FLAGS, mode, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        if replace:
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        else:
            os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except OSError as exc:
        with contextlib.suppress(OSError):
            if stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode):
                raise ConfigError(_why(OSError(errno.ELOOP, "link"), shown)) from None
        raise ConfigError(_why(exc, shown)) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)


def write_new(
    project: Path, relative: PurePath | str, data: str | bytes, *, mode: int = 0o644, new_folder: bool = False
) -> Path:
    """Create `project/relative` holding `data` and return its path. Missing folders are created (0755); a folder
    or file on the way that is a symbolic link, a file where a folder should be, an existing target, `..` or an
    absolute path is a ConfigError that says which. `new_folder`: the file's own folder must not exist yet (a
    Prisma migration's folder). Use mode 0600 for anything secret."""
    *folders, name = _parts(relative)
    root = Path(os.path.realpath(project))
    shown = root
    try:
        with contextlib.ExitStack() as stack:
            fd = stack.enter_context(_opened_dir(root))
            for i, folder in enumerate(folders):
                shown = shown / folder
                last = i == len(folders) - 1
                try:
                    os.mkdir(folder, 0o755, dir_fd=fd)
                except FileExistsError:
                    if new_folder and last:
                        raise ConfigError(_why(OSError(errno.EEXIST, "exists"), shown)) from None
                fd = stack.enter_context(_opened_dir(folder, dir_fd=fd))
            _create(fd, name, data, mode, shown / name)
    except OSError as exc:
        raise ConfigError(_why(exc, shown)) from None
    return root.joinpath(*folders, name)


def private_dir(path: Path) -> Path:
    """Make `path` (pgshift's state directory or a folder in it) exist as a folder owned by us, mode 0700.

    Refused: a symbolic link on the way that neither we nor root own (whoever owns it decides where our approvals
    go), a folder on the way that another user may change (owned by another user other than root, or writable by
    everyone without the sticky bit: they could swap our folder), a final folder that is itself a link or is owned
    by another user, or anything that is not a folder."""
    me = os.geteuid()
    path = Path(os.path.abspath(path))
    current = Path(path.anchor)
    for part in path.parts[1:]:
        current = current / part
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            try:
                os.mkdir(current, 0o700)
            except FileExistsError:
                pass
            info = os.lstat(current)
        if stat.S_ISLNK(info.st_mode):
            if current == path:
                raise ConfigError(f"pgshift's state folder {current} is a symbolic link: refused; make it a folder")
            if info.st_uid not in (0, me):
                raise ConfigError(
                    f"{current} (on the way to pgshift's state folder {path}) is a symbolic link owned by uid "
                    f"{info.st_uid}, not by you or root: refused; set PGSHIFT_STATE_DIR to a folder you own"
                )
            continue
        if not stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"{current} is not a folder: pgshift's state folder {path} cannot be used")
        if current != path and (
            info.st_uid not in (0, me) or (info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX)
        ):
            raise ConfigError(
                f"{current} (on the way to pgshift's state folder {path}) can be changed by another user (owner uid "
                f"{info.st_uid}, mode {stat.S_IMODE(info.st_mode):o}): refused; set PGSHIFT_STATE_DIR to a folder "
                "only you can change"
            )
    final = os.lstat(path)
    if final.st_uid != me:
        raise ConfigError(
            f"pgshift's state folder {path} is owned by uid {final.st_uid}, not by you: refused; set "
            "PGSHIFT_STATE_DIR to a folder you own"
        )
    if stat.S_IMODE(final.st_mode) != 0o700:
        os.chmod(path, 0o700, follow_symlinks=False)
    return path


def write_private(directory: Path, name: str, data: str | bytes, *, replace: bool = False) -> Path:
    """Create `directory/name` (0600) holding `data` in pgshift's private state folder; never through a link and
    never over an existing file unless `replace` (then atomically, a planted link replaced, not followed)."""
    folder = private_dir(directory)
    try:
        with _opened_dir(folder) as fd:
            _create(fd, name, data, 0o600, folder / name, replace=replace)
    except OSError as exc:
        raise ConfigError(_why(exc, folder)) from None
    return folder / name
