"""A keyed MAC over what pgshift stores in a database and later trusts (snapshots, kept-data records).

The database cannot vouch for its own rows: whoever may write a table may also rewrite a digest stored beside the
text. So every record pgshift reads back for a load or a restore carries an HMAC-SHA256 whose key never enters the
database: it lives in pgshift's state directory (`tools.approval.default_state_dir()`), in a file `key` created on
first use, exclusively, mode 0600, in a 0700 folder. Copy that file to another machine (same path under its state
directory) for that machine to trust the snapshots this one took; a record signed with another key is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from pgshift.tools.approval import default_state_dir
from pgshift.tools.errors import ConfigError
from pgshift.tools.files import private_dir

KEY_FILE = "key"
KEY_BYTES = 32
MAC_SCHEME = "hmac-sha256:v1"


def key_path(state_dir: Path | None = None) -> Path:
    return (state_dir or default_state_dir()) / KEY_FILE


def _create(path: Path) -> None:
    private_dir(path.parent)  # 0700, ours, reached through no link another user owns (tools/files.py)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return  # another process created it first: use theirs
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(KEY_BYTES) + "\n")


def load_key(state_dir: Path | None = None) -> bytes:
    """The MAC key (created on first use). Refused when it is a link, not ours, or readable by others."""
    path = key_path(state_dir)
    if not path.parent.exists() or not os.path.lexists(path):
        _create(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ConfigError(
            f"pgshift's integrity key {path} cannot be opened ({exc.strerror}); nothing was done"
        ) from None
    with os.fdopen(fd) as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise ConfigError(
                f"pgshift's integrity key {path} must be a regular file owned by you with mode 0600 "
                "(chmod 600 it, or remove it to start a new key: snapshots signed with the old one are then refused). "
                "Nothing was done."
            )
        text = f.read().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise ConfigError(f"pgshift's integrity key {path} is not a hex key of at least 16 bytes; nothing was done")
    return key


def _canonical(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def mac(kind: str, fields: Mapping[str, object], key: bytes) -> str:
    """`<scheme>:<hex>` over the record kind and its fields (canonical JSON: sorted keys, UTC timestamps)."""
    body = json.dumps(
        {"kind": kind, "fields": {k: _canonical(v) for k, v in fields.items()}}, sort_keys=True, ensure_ascii=True
    )
    digest = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    return f"{MAC_SCHEME}:{digest}"


def check(kind: str, fields: Mapping[str, object], recorded: str | None, key: bytes) -> bool:
    """True when `recorded` is the MAC of `fields` under `key` (constant-time compare); False when absent."""
    if not recorded:
        return False
    return hmac.compare_digest(mac(kind, fields, key), recorded)
