"""A cheap catalog fingerprint, and the on-disk cache of the last full drift result keyed by it.

Any DDL inserts, updates or deletes rows of the system catalogs, and every row version a transaction writes
carries that transaction's id in `xmin`. So, per catalog, the row count and the sum of `xmin` change with any
DDL that touches it (an update replaces an older xid by a newer one, an insert or delete changes the count),
while reading rows, writing table data, sequences advancing and autovacuum's in-place statistics updates leave
them alone. One query reads it (`CATALOG_FINGERPRINT`: a sequential scan of each catalog, no joins); measured in
`bench/bench_drift.py`. A false alarm (VACUUM FREEZE on a catalog, a DDL on an object drift does not look at)
only costs a full read; the fingerprint never hides a schema change, because it covers every catalog the
introspection reads.

The cache is a file per target and migrations folder under the state directory
(`tools.approval.default_state_dir()`/drift, 0700, files 0600), never module state and never the database.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from pydantic import BaseModel, ConfigDict, ValidationError

from pgshift.tools.approval import default_state_dir

# Every catalog the introspection (compared and uncompared kinds) reads, and the ones whose rows DDL touches
# with them (pg_depend, pg_shdepend and pg_init_privs follow the objects above, so they add nothing but time).
FINGERPRINTED_CATALOGS: tuple[str, ...] = (
    "pg_namespace",
    "pg_class",
    "pg_attribute",
    "pg_attrdef",
    "pg_constraint",
    "pg_index",
    "pg_inherits",
    "pg_partitioned_table",
    "pg_sequence",
    "pg_proc",
    "pg_aggregate",
    "pg_type",
    "pg_enum",
    "pg_range",
    "pg_collation",
    "pg_rewrite",
    "pg_trigger",
    "pg_event_trigger",
    "pg_policy",
    "pg_extension",
    "pg_description",
    "pg_default_acl",
    "pg_statistic_ext",
    "pg_publication",
    "pg_publication_rel",
    "pg_foreign_data_wrapper",
    "pg_foreign_server",
    "pg_foreign_table",
    "pg_cast",
    "pg_operator",
)

CATALOG_FINGERPRINT = "SELECT " + ", ".join(
    f"(SELECT count(*)::text || ':' || coalesce(sum(xmin::text::bigint), 0)::text FROM pg_catalog.{c})"
    for c in FINGERPRINTED_CATALOGS
)

CACHE_FOLDER = "drift"


async def catalog_fingerprint(conn: asyncpg.Connection) -> str:
    """sha256 over each catalog's row count and xmin sum (one query; read-only)."""
    row = await conn.fetchrow(CATALOG_FINGERPRINT)
    assert row is not None
    return hashlib.sha256("\x1f".join(str(v) for v in row).encode()).hexdigest()


def cache_key(*parts: str) -> str:
    """The file name of a cache entry: sha256 over its parts (the target's redacted URL, the folder's checksum)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class CacheEntry(BaseModel):
    """The fingerprint a full result was computed at, and that result (as JSON, unfenced: fenced per answer)."""

    model_config = ConfigDict(frozen=True)

    fingerprint: str
    result: str


@dataclass(frozen=True)
class DriftCache:
    """Last full drift results on disk, one file per key; unreadable or foreign files read as a miss."""

    directory: Path

    @classmethod
    def default(cls, state_dir: Path | None = None) -> DriftCache:
        return cls((state_dir or default_state_dir()) / CACHE_FOLDER)

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def load(self, key: str) -> CacheEntry | None:
        try:
            return CacheEntry.model_validate_json(self._path(key).read_bytes())
        except (OSError, ValidationError, ValueError):
            return None

    def store(self, key: str, entry: CacheEntry) -> None:
        """Write atomically (a temporary file renamed over the old one), the folder 0700 and the file 0600."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(entry.model_dump_json())
            os.replace(tmp, self._path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def digest(value: object) -> str:
    """sha256 of a JSON-able value (history rows, folder identity), keys sorted."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
