"""The expected schema of a migration history, kept: the replay of one history is paid once, not per check.

`detect_drift` replays the applied migrations into a throw-away database to learn the schema they build. That
result depends only on what the replay is given, so it is kept under a key over exactly that (`chain_key`):

- the applied migrations in order, each as version, name, checksum and the sha256 of the text replayed;
- the folder's kind and whether the target is Supabase-shaped (then also pgshift's own start files,
  `tools/sample/supabase_shape.sql` and `supabase_platform.sql`, by content);
- what the scratch copy takes from the target (`tools.scratch.read_target`): its major version (which server
  replays), its roles (a migration may hand objects to them), its search_path (where unqualified names go) and
  its extensions;
- this file's format and pgshift's version (the introspection that reads the replay's result).

A later check whose key matches reads the schema back instead of replaying (`drift_path: "kept-expected"`); an
edited, added or removed migration, or a change to any other input above, is a new key and one replay.

Two copies, each `<key>.json.gz`: a header line (format, key, sha256 of the schema's JSON, MAC) then the schema
as JSON (`tools.model.Schema` through pydantic; it reads back equal, with the same fingerprint), gzip-compressed.
Never in the database: the database could rewrite both a record and a digest stored beside it.

- The state directory (`tools.approval.default_state_dir()`/expected, 0700, files 0600): the header's MAC is a
  keyed HMAC (`tools.integrity`, key in the state directory) over the key and the schema's sha256, so a file
  changed by anyone without the key is refused (and replaced by the next replay's result).
- The project (`.pgshift/expected/`, beside `.pgshift/snapshots/`), written when the project is known: the
  current folder when the migrations folder lies inside it (pgshift run from the project). Commit it: a fresh CI
  runner (empty state directory) then finds it. It is derived from the repository's own migration files, so its
  trust root is the repository, like the migrations themselves (whoever may change it may change the
  migrations); the header's key and sha256 are checked, so a corrupted, truncated or renamed file is refused.
  Created exclusively, never through a symbolic link, never over an existing file (`files.write_new`'s rules).

Retention: after each write the newest `KEEP_IN_STATE` copies stay in the state directory and the newest
`KEEP_IN_PROJECT` in the project (by modification time; only files named `<64 hex>.json.gz` are ever removed), so
a folder holds the recent histories, not every one since the first.

A refused file is never loaded: the check replays instead and says why in `expected_note`. Only a faithful
replay is kept (run on a server of the target's major version), so a copy is what any faithful replay of the
same history builds, whichever scratch server (shadow_url, a local install) made it.

Not kept: the expected schema of each prefix. A changed history could start from the last known prefix only by
loading that prefix's schema into a database, which means generating DDL from the model; the model leaves out
what a replay carries on (rows a migration inserts that a later one reads or alters, kinds pgshift does not
compare, extension-created objects, owners), so the result would not be what the folder builds. A changed
history replays whole, once, then is kept.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path, PurePath
from typing import Literal

from pydantic import TypeAdapter, ValidationError

from pgshift.tools import integrity
from pgshift.tools.approval import default_state_dir
from pgshift.tools.errors import PgshiftError
from pgshift.tools.files import write_new, write_private
from pgshift.tools.migrations.folder import Migration
from pgshift.tools.model import Schema
from pgshift.tools.scratch import TargetFacts

FORMAT = "pgshift-expected-schema:v1"
MAC_KIND = "expected_schema"
STATE_FOLDER = "expected"
PROJECT_FOLDER = (".pgshift", "expected")
SAMPLES = Path(__file__).resolve().parents[1] / "sample"
START_FILES = ("supabase_shape.sql", "supabase_platform.sql")
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_KEPT_NAME = re.compile(r"[0-9a-f]{64}\.json\.gz")
KEEP_IN_STATE = 20
KEEP_IN_PROJECT = 3

Source = Literal["state", "project"]


@cache
def _adapter() -> TypeAdapter[Schema]:
    return TypeAdapter(Schema)


def _pgshift_version() -> str:
    try:
        return metadata.version("pgshift")
    except metadata.PackageNotFoundError:
        return "unknown"


def chain_key(migrations: Sequence[Migration], *, kind: str, supabase: bool, facts: TargetFacts) -> str:
    """sha256 over everything the replay's result depends on (see the module's docstring)."""
    starts = [hashlib.sha256((SAMPLES / f).read_bytes()).hexdigest() for f in START_FILES] if supabase else []
    parts = {
        "format": FORMAT,
        "pgshift": _pgshift_version(),
        "kind": kind,
        "supabase": supabase,
        "start": starts,
        "major": facts.major,
        "roles": sorted(facts.roles),
        "search_path": list(facts.search_path),
        "extensions": sorted([e.name, e.schema, e.version] for e in facts.extensions),
        "chain": [[m.version, m.name, m.checksum, hashlib.sha256(m.sql.encode()).hexdigest()] for m in migrations],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=True).encode()).hexdigest()


def dump(schema: Schema) -> bytes:
    """The schema as JSON (every field, the ones left out of comparisons too)."""
    return _adapter().dump_json(schema)


def load(data: bytes) -> Schema:
    return _adapter().validate_json(data)


@dataclass(frozen=True)
class Lookup:
    """What `ExpectedStore.find` found: the schema and where from, and every copy refused (with why)."""

    schema: Schema | None = None
    source: Source | None = None
    path: Path | None = None
    refused: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExpectedStore:
    """The kept expected schemas: `state_dir`/expected (MAC-checked) and, when known, `project`/.pgshift/expected."""

    state_dir: Path
    project: Path | None = None

    @classmethod
    def default(cls, state_dir: Path | None = None, project: Path | None = None) -> ExpectedStore:
        return cls(state_dir or default_state_dir(), project)

    @property
    def state_folder(self) -> Path:
        return self.state_dir / STATE_FOLDER

    @property
    def project_folder(self) -> Path | None:
        return self.project.joinpath(*PROJECT_FOLDER) if self.project is not None else None

    def find(self, key: str) -> Lookup:
        """The schema kept under `key`: the state directory's copy (its MAC checked), else the project's (its key
        and digest checked). A copy that fails is refused, never loaded."""
        refused: list[str] = []
        places: list[tuple[Source, Path]] = [("state", self.state_folder)]
        if self.project_folder is not None:
            places.append(("project", self.project_folder))
        for source, folder in places:
            path = folder / f"{key}.json.gz"
            try:
                data = _read_file(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                refused.append(f"{path} could not be read ({exc.strerror or exc}): refused")
                continue
            try:
                schema = self._verified(source, key, data)
            except _Refused as exc:
                refused.append(f"{path} {exc}: refused, not loaded")
                continue
            return Lookup(schema=schema, source=source, path=path, refused=tuple(refused))
        return Lookup(refused=tuple(refused))

    def _verified(self, source: Source, key: str, data: bytes) -> Schema:
        try:
            raw = gzip.decompress(data)
        except (OSError, EOFError, ValueError):
            raise _Refused("is not a gzip file") from None
        head, sep, body = raw.partition(b"\n")
        try:
            header = json.loads(head) if sep else None
        except ValueError:
            header = None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise _Refused(f"has no {FORMAT} header")
        if header.get("key") != key:
            raise _Refused("was kept for another history (its recorded key differs from its name)")
        digest = hashlib.sha256(body).hexdigest()
        if header.get("sha256") != digest:
            raise _Refused("does not match its recorded digest (changed or truncated)")
        if source == "state":
            mac = header.get("mac")
            if not integrity.check(
                MAC_KIND,
                {"key": key, "sha256": digest},
                mac if isinstance(mac, str) else None,
                integrity.load_key(self.state_dir),
            ):
                raise _Refused("fails its integrity check (changed outside pgshift, or signed with another key)")
        try:
            return load(body)
        except ValidationError:
            raise _Refused("does not hold a schema this pgshift reads") from None

    def keep(self, key: str, schema: Schema) -> list[str]:
        """Keep `schema` under `key` in the state directory (replacing a copy there) and, when the project is known,
        in the project (created new: an existing file is left alone). Returns what was written or why not; a file
        that cannot be written never fails the check."""
        body = dump(schema)
        digest = hashlib.sha256(body).hexdigest()
        notes: list[str] = []
        try:
            mac = integrity.mac(MAC_KIND, {"key": key, "sha256": digest}, integrity.load_key(self.state_dir))
            path = write_private(self.state_folder, f"{key}.json.gz", _packed(key, digest, mac, body), replace=True)
            notes.append(f"kept in {path}")
            _prune(self.state_folder, KEEP_IN_STATE)
        except (PgshiftError, OSError) as exc:
            notes.append(f"not kept in the state directory: {exc}")
        folder = self.project_folder
        if folder is not None and self.project is not None:
            name = f"{key}.json.gz"
            if os.path.lexists(folder / name):
                return notes
            try:
                path = write_new(self.project, PurePath(*PROJECT_FOLDER, name), _packed(key, digest, None, body))
                notes.append(f"kept in {path} (commit it: a fresh CI runner then skips the replay)")
                _prune(folder, KEEP_IN_PROJECT)
            except (PgshiftError, OSError) as exc:
                notes.append(f"not kept in the project: {exc}")
        return notes


def _prune(folder: Path, keep: int) -> None:
    """Remove all but the newest `keep` kept copies in `folder` (links are removed, never followed)."""
    try:
        with os.scandir(folder) as entries:
            found = [
                (e.stat(follow_symlinks=False).st_mtime_ns, e.name) for e in entries if _KEPT_NAME.fullmatch(e.name)
            ]
    except OSError:
        return
    for _, name in sorted(found, reverse=True)[keep:]:
        with contextlib.suppress(OSError):
            os.unlink(folder / name)


class _Refused(Exception):
    pass


def _packed(key: str, digest: str, mac: str | None, body: bytes) -> bytes:
    header = json.dumps({"format": FORMAT, "key": key, "sha256": digest, "mac": mac}, sort_keys=True)
    return gzip.compress(header.encode() + b"\n" + body, compresslevel=6, mtime=0)


def _read_file(path: Path) -> bytes:
    fd = os.open(path, _READ_FLAGS)  # a planted link is an error (ELOOP), never followed
    with os.fdopen(fd, "rb") as f:
        return f.read()


def project_of(folder_directory: str, cwd: Path | None = None) -> Path | None:
    """The project a migrations folder belongs to: the current folder when the migrations folder lies inside it
    (pgshift run from the project, as for snapshot files), else unknown (None: no project copy)."""
    here = (cwd or Path.cwd()).resolve()
    try:
        resolved = Path(folder_directory).resolve()
    except (OSError, RuntimeError):
        return None
    return here if resolved.is_relative_to(here) and resolved != here else None
