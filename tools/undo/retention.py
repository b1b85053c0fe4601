"""How long undo's state stays on a target, and what it holds now.

- Kept data (`pgshift.kept_*`, personal data a migration dropped, among others) is kept `kept_retention_days` (30 by
  default, per environment in the configuration). Data past that is discarded by the next write pgshift makes to
  the environment (apply, deploy, snapshot, rollback, discard_kept_data), never by a read.
- Snapshots: the newest `keep_snapshots` (20 by default) stay; older ones go, except one that still has kept data
  (a rollback to it would restore that data). The newest is never removed. DDL chunks no snapshot uses any more go
  with them.

`kept_summary` is the one reading of what is kept ("kept: 3 tables, 12 MB, until 2027-01-07") that status, the
dashboard, the approval prompt and list_snapshots show.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from pgshift.tools.undo.keep import discard
from pgshift.tools.undo.store import (
    CHUNKS,
    DEFAULT_KEEP_SNAPSHOTS,
    DEFAULT_KEPT_RETENTION_DAYS,
    KEPT_DATA,
    SNAPSHOTS,
    SnapshotOptions,
    read_kept,
    stored_state,
)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class KeptEntry(Frozen):
    snapshot_id: int
    object: str = Field(description="The table or column whose data is kept")
    rows: int
    bytes: int
    kept_at: datetime | None = None
    keep_until: datetime | None = None


class KeptSummary(Frozen):
    """What undo keeps on one environment."""

    tables: int = Field(0, description="Kept copies (one per dropped table or column)")
    rows: int = 0
    bytes: int = 0
    oldest: datetime | None = Field(None, description="When the oldest copy was made")
    until: datetime | None = Field(None, description="When the last copy expires (discarded by the next write)")
    entries: list[KeptEntry] = Field(default_factory=list, description="Each copy, oldest first")

    @property
    def text(self) -> str:
        """`kept: 3 tables, 12 MB, until 2027-01-07` (or `kept: nothing`); no database text."""
        if not self.tables:
            return "kept: nothing"
        until = f", until {self.until:%Y-%m-%d}" if self.until is not None else ""
        return f"kept: {self.tables} table{'s' if self.tables != 1 else ''}, {human_bytes(self.bytes)}{until}"


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            if unit == "bytes":
                return f"{int(size)} bytes"
            return f"{size:.0f} {unit}" if size >= 10 else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"


def until_from_now(days: int, now: datetime | None = None) -> datetime:
    """When data kept now would expire under a retention of `days`."""
    return (now or datetime.now(UTC)) + timedelta(days=days)


async def kept_summary(conn: asyncpg.Connection) -> KeptSummary:
    """What is kept on `conn`'s database (a read: nothing expires here). NotAllowed when the `pgshift` schema is not
    pgshift's alone."""
    kept = await read_kept(conn, verified=False)
    if not kept:
        return KeptSummary()
    untils = [k.keep_until for k in kept if k.keep_until is not None]
    starts = [k.kept_at for k in kept if k.kept_at is not None]
    return KeptSummary(
        tables=len(kept),
        rows=sum(k.rows for k in kept),
        bytes=sum(k.bytes for k in kept),
        oldest=min(starts, default=None),
        until=max(untils, default=None),
        entries=[
            KeptEntry(
                snapshot_id=k.snapshot_id,
                object=k.object,
                rows=k.rows,
                bytes=k.bytes,
                kept_at=k.kept_at,
                keep_until=k.keep_until,
            )
            for k in kept
        ],
    )


class Enforced(Frozen):
    expired_kept: int = 0
    freed_kept_bytes: int = 0
    removed_snapshots: int = 0
    removed_chunks: int = 0


EXPIRED = f"""
SELECT kept_table FROM {KEPT_DATA}
WHERE least(coalesce(keep_until, 'infinity'), kept_at + pg_catalog.make_interval(days => $1)) < pg_catalog.now()
"""
PRUNE_SNAPSHOTS = f"""
DELETE FROM {SNAPSHOTS} s
WHERE s.id NOT IN (SELECT id FROM {SNAPSHOTS} ORDER BY id DESC LIMIT $1)
  AND NOT (s.id = ANY($2::bigint[]))
"""
UNUSED_CHUNKS = f"DELETE FROM {CHUNKS} c WHERE NOT EXISTS (SELECT FROM {SNAPSHOTS} s WHERE c.sha256 = ANY(s.chunks))"


async def enforce(
    conn: asyncpg.Connection,
    *,
    kept_retention_days: int = DEFAULT_KEPT_RETENTION_DAYS,
    keep_snapshots: int = DEFAULT_KEEP_SNAPSHOTS,
) -> Enforced:
    """Discard expired kept data and snapshots past the newest `keep_snapshots` (inside the caller's transaction, on a
    write only)."""
    snapshots, kept_data = await stored_state(conn)
    if not snapshots:
        return Enforced()
    expired_kept, freed = 0, 0
    with_kept: list[int] = []
    if kept_data:
        names = {r[0] for r in await conn.fetch(EXPIRED, max(0, int(kept_retention_days)))}
        if names:
            expired = [k for k in await read_kept(conn, verified=False) if k.kept_table in names]
            freed = await discard(conn, expired)
            expired_kept = len(expired)
        with_kept = [int(r[0]) for r in await conn.fetch(f"SELECT DISTINCT snapshot_id FROM {KEPT_DATA}")]
    status = await conn.execute(PRUNE_SNAPSHOTS, max(1, int(keep_snapshots)), with_kept)
    removed = int(status.rsplit(" ", 1)[-1])
    chunks = int((await conn.execute(UNUSED_CHUNKS)).rsplit(" ", 1)[-1]) if removed else 0
    return Enforced(expired_kept=expired_kept, freed_kept_bytes=freed, removed_snapshots=removed, removed_chunks=chunks)


async def enforce_options(conn: asyncpg.Connection, options: SnapshotOptions) -> Enforced:
    """`enforce` with an environment's configured retention (`tools.undo.capture.options_for`)."""
    return await enforce(conn, kept_retention_days=options.kept_retention_days, keep_snapshots=options.keep_snapshots)
