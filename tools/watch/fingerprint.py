"""A cheap catalog fingerprint, and the on-disk cache of the last full drift result keyed by it.

Any DDL inserts, updates or deletes rows of the system catalogs, and every row version a transaction writes
carries that transaction's id in `xmin`. So the row count and the sum of `xmin` over the catalogs the
introspection reads change with any DDL: between two reads, the rows a DDL left all carry xids newer than every
row that was there before, so if as many rows came as went their sum is larger, else the count differs. Reading
rows, writing table data, sequences advancing and autovacuum's in-place statistics updates leave them alone.

One pass (`CATALOG_FINGERPRINT`: a sequential scan of each catalog, no joins, one sum over all of them),
measured in `bench/bench_drift.py`. pg_attribute is by far the largest catalog (six system columns per table);
its rows with `attnum <= 0` are written and removed only with their relation's pg_class row, so only user
columns are summed. xids are read through age() (see `CATALOG_FINGERPRINT`), which counts them modulo 2^32 from
the present, so wraparound does not reorder them. Caveats, each only a false alarm (a full read), never a hidden
change: VACUUM FREEZE moves a row to the frozen count; a DDL on an object drift does not look at; a plain ANALYZE
that clears a parent's stale relhassubclass rewrites its pg_class row; the anchor's wrap twice per 2^32 xids.

The cache is a file per target and migrations folder under the state directory
(`tools.approval.default_state_dir()`/drift, 0700, files 0600), never module state and never the database:
its first line the fingerprint, then the result, so a miss reads one line and a hit parses the result once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from pgshift.tools.approval import default_state_dir
from pgshift.tools.errors import PgshiftError
from pgshift.tools.files import private_dir

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

# Only user columns of pg_attribute (see the module's docstring).
_ROWS_OF = {"pg_attribute": " WHERE attnum > 0"}

# age(xmin) is an int4 computed without text: xmin's own number would need `xmin::text::bigint`, about a third
# of the query's time. age() is `now - xmin` with `now` fixed per transaction, so the sum of ages minus
# count * age('3') (an anchor read at the same `now`) is the sum of (3 - xmin): the same for the same rows
# whatever `now` is. Rows frozen or from initdb have no number (age() answers INT_MAX): they are counted apart.
# age('3') wraps when `now` passes 2^31 + 3 and again when xids wrap: each time, one false alarm.
_NO_XID = "2147483647"
CATALOG_FINGERPRINT = (
    f"SELECT count(*), count(*) FILTER (WHERE a = {_NO_XID}), "
    f"coalesce(sum(a::bigint) FILTER (WHERE a < {_NO_XID}), 0) "
    f"- count(*) FILTER (WHERE a < {_NO_XID}) * age('3'::xid)::bigint FROM ("
    + " UNION ALL ".join(
        f"SELECT age(xmin) AS a FROM pg_catalog.{c}{_ROWS_OF.get(c, '')}" for c in FINGERPRINTED_CATALOGS
    )
    + ") AS catalog_rows"
)

CACHE_FOLDER = "drift"
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


async def catalog_fingerprint(conn: asyncpg.Connection) -> str:
    """sha256 over the catalogs' row count, frozen row count and xmin sum (one query; read-only)."""
    row = await conn.fetchrow(CATALOG_FINGERPRINT)
    assert row is not None
    return hashlib.sha256("\x1f".join(str(v) for v in row).encode()).hexdigest()


def cache_key(*parts: str) -> str:
    """The file name of a cache entry: sha256 over its parts (the target's redacted URL, the folder's checksum)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """The fingerprint a full result was computed at, and that result (as JSON, unfenced: fenced per answer)."""

    fingerprint: str
    result: str


@dataclass(frozen=True)
class DriftCache:
    """Last full drift results on disk, one file per key (the fingerprint on the first line, then the result);
    unreadable or foreign files read as a miss."""

    directory: Path

    @classmethod
    def default(cls, state_dir: Path | None = None) -> DriftCache:
        return cls((state_dir or default_state_dir()) / CACHE_FOLDER)

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def hit(self, key: str, fingerprint: str) -> str | None:
        """The result cached at `fingerprint`, else None (a different fingerprint costs one line's read)."""
        try:
            with self._path(key).open() as f:
                if f.readline() != fingerprint + "\n":
                    return None
                return f.read()
        except (OSError, ValueError):
            return None

    def store(self, key: str, entry: CacheEntry) -> None:
        """Write atomically (a temporary file renamed over the old one), the folder 0700 and the file 0600."""
        if not _FINGERPRINT.fullmatch(entry.fingerprint):
            raise PgshiftError("a drift cache fingerprint is a sha256 hex digest (the file's first line)")
        private_dir(self.directory)  # 0700, ours; the rename below replaces a planted link, never follows it
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(f"{entry.fingerprint}\n{entry.result}")
            os.replace(tmp, self._path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def digest(value: object) -> str:
    """sha256 of a JSON-able value (history rows, folder identity), keys sorted."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
