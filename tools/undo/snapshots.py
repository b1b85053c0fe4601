"""snapshot_schema, list_snapshots, verify_snapshot and discard_kept_data: the engine behind the undo tools."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from pgshift.tools.databases import Databases
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.migrations.runner import Timeouts, apply_session
from pgshift.tools.undo.capture import options_for
from pgshift.tools.undo.keep import discard
from pgshift.tools.undo.retention import KeptSummary, enforce, kept_summary
from pgshift.tools.undo.shadow import load_ddl, not_reached
from pgshift.tools.undo.store import (
    INTEGRITY_DESCRIPTION,
    Integrity,
    KeptData,
    SnapshotRow,
    list_rows,
    prepare_snapshot,
    read_kept,
    read_snapshot,
    save_snapshot,
    write_file,
)
from pgshift.tools.untrusted import Untrusted, fence


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class SnapshotInfo(Frozen):
    id: int
    label: str | None = None
    taken_at: datetime
    age_seconds: int
    ddl_bytes: int = Field(description="Size of the snapshot's DDL")
    fingerprint: str
    server_version: str
    precedes_version: str | None = Field(None, description="The migration this snapshot was taken before")
    precedes_name: str | None = None
    kept_bytes: int = Field(0, description="Data kept with this snapshot (destroyed by the migration it precedes)")
    kept_rows: int = 0
    integrity: Integrity = Field("ok", description=INTEGRITY_DESCRIPTION)


class SnapshotResult(Frozen):
    environment: str
    snapshot: Untrusted[SnapshotInfo]
    file: str | None = Field(None, description="Where the DDL was written under the project, when asked")
    message: str


class SnapshotList(Frozen):
    environment: str
    total: int = Field(description="Snapshots recorded in all")
    total_kept_bytes: int
    next_offset: int | None = Field(None, description="Pass as offset for the next (older) page; None at the end")
    snapshots: Untrusted[list[SnapshotInfo]] = Field(description="This page, newest first")
    kept: Untrusted[KeptSummary] = Field(description="What undo keeps here, its size and until when")
    kept_text: str = Field("", description="The same in one line: 'kept: 3 tables, 12 MB, until 2027-01-07'")
    unverified: int = Field(0, description="Snapshots whose integrity check fails or that have no MAC (never loaded)")


class VerifyResult(Frozen):
    environment: str
    snapshot_id: int
    verified: bool = Field(
        description="The DDL loads into a throw-away PostgreSQL and reaches the recorded fingerprint"
    )
    recorded_fingerprint: str
    loaded_fingerprint: str
    load_errors: list[str] = Field(default_factory=list, description="Errors while loading, with their line (fenced)")
    scratch_server: str = Field("", description="The throw-away server the DDL was loaded on")
    fidelity_lost: list[str] = Field(
        default_factory=list,
        description="What that server cannot reproduce of the target (major version, extensions): a failure then "
        "says nothing against the snapshot",
    )
    message: str


class DiscardResult(Frozen):
    environment: str
    discarded: int = Field(description="Kept copies dropped")
    freed_bytes: int
    message: str


def _info(row: SnapshotRow, kept: list[KeptData], now: datetime) -> SnapshotInfo:
    mine = [k for k in kept if k.snapshot_id == row.id]
    return SnapshotInfo(
        id=row.id,
        label=row.label,
        taken_at=row.taken_at,
        ddl_bytes=row.ddl_bytes,
        fingerprint=row.fingerprint,
        server_version=row.server_version,
        age_seconds=max(0, int((now - row.taken_at).total_seconds())),
        precedes_version=row.precedes_version,
        precedes_name=row.precedes_name,
        kept_bytes=sum(k.bytes for k in mine),
        kept_rows=sum(k.rows for k in mine),
        integrity=row.integrity,
    )


async def snapshot_schema(
    db: Databases,
    environment: str,
    label: str | None = None,
    *,
    project: Path | None = None,
    timeouts: Timeouts | None = None,
) -> SnapshotResult:
    """Record the environment's schema now (fingerprint + DDL) in its `pgshift.snapshots`; with `project`, also
    write it to `.pgshift/snapshots/<environment>/<id>.sql` there. Runs under the apply lock."""
    db.require_writable(environment)
    timeouts = timeouts or Timeouts()
    options = options_for(db, environment)
    async with apply_session(db, environment, timeouts) as conn:
        taken = await prepare_snapshot(conn, options, timeouts.lock_ms)
        async with conn.transaction():
            snapshot_id = await save_snapshot(conn, taken, label=label)
            await enforce(conn, kept_retention_days=options.kept_retention_days, keep_snapshots=options.keep_snapshots)
        rows = [r for r in await list_rows(conn) if r.id == snapshot_id]
        _, ddl = await read_snapshot(conn, snapshot_id) if project is not None else (None, "")
    path = write_file(project, environment, snapshot_id, ddl) if project is not None else None
    reused = " (same schema as the last snapshot: its DDL was reused, no dump)" if taken.ddl is None else ""
    return SnapshotResult(
        environment=environment,
        snapshot=fence(_info(rows[0], [], datetime.now(UTC))),
        file=str(path) if path else None,
        message=f"snapshot {snapshot_id} of '{environment}' recorded in pgshift.snapshots{reused}.",
    )


async def list_snapshots(db: Databases, environment: str, limit: int | None = None, offset: int = 0) -> SnapshotList:
    """Newest first; `limit` snapshots from `offset` (all when None)."""
    async with db.read_only(environment) as conn:
        rows = await list_rows(conn)
        kept = await read_kept(conn, verified=False)
        summary = await kept_summary(conn)
    now = datetime.now(UTC)
    newest = list(reversed(rows))
    end = len(newest) if limit is None else min(len(newest), offset + limit)
    return SnapshotList(
        environment=environment,
        total=len(newest),
        total_kept_bytes=sum(k.bytes for k in kept),
        next_offset=end if end < len(newest) else None,
        snapshots=fence([_info(r, kept, now) for r in newest[offset:end]]),
        kept=fence(summary),
        kept_text=summary.text,
        unverified=sum(r.integrity != "ok" for r in rows),
    )


async def kept_data_summary(db: Databases, environment: str) -> KeptSummary:
    """What undo keeps on `environment` (count, bytes, oldest, until when, each copy); read only, nothing expires."""
    async with db.read_only(environment) as conn:
        return await kept_summary(conn)


async def verify_snapshot(
    db: Databases, environment: str, snapshot: int, *, shadow: LocalPostgres | None = None
) -> VerifyResult:
    """Load the snapshot's DDL into a throw-away database on a scratch server (`tools.scratch`: the target's major
    and extensions when it can) and prove it reaches the recorded fingerprint. The environment is only read."""
    async with db.read_only(environment) as conn:
        row, ddl = await read_snapshot(conn, snapshot)
        shadow_url = db.environment(environment).shadow_url
        loaded = await load_ddl(ddl, conn, shadow=shadow, shadow_url=shadow_url, secrets_=db.secrets())
    ok = loaded.fingerprint == row.fingerprint
    if ok:
        message = f"snapshot {snapshot} loads and reaches its recorded fingerprint: a rollback to it can be planned."
    elif loaded.fidelity_lost:
        message = f"{not_reached(snapshot, loaded)}: verify it again on a scratch server that matches the target."
    else:
        message = f"{not_reached(snapshot, loaded)}: do not roll back to it."
    return VerifyResult(
        environment=environment,
        snapshot_id=snapshot,
        verified=ok,
        recorded_fingerprint=row.fingerprint,
        loaded_fingerprint=loaded.fingerprint,
        load_errors=list(loaded.errors),
        scratch_server=loaded.scratch_server,
        fidelity_lost=list(loaded.fidelity_lost),
        message=message,
    )


async def discard_kept_data(
    db: Databases, environment: str, snapshot: int | None = None, *, timeouts: Timeouts | None = None
) -> DiscardResult:
    """Drop the data kept for undo (of one snapshot, or all). A rollback past it can then no longer restore it."""
    db.require_writable(environment)
    options = options_for(db, environment)
    async with apply_session(db, environment, timeouts or Timeouts()) as conn:
        kept = [k for k in await read_kept(conn, verified=False) if snapshot is None or k.snapshot_id == snapshot]
        async with conn.transaction():
            freed = await discard(conn, kept)
            await enforce(conn, kept_retention_days=options.kept_retention_days, keep_snapshots=options.keep_snapshots)
    return DiscardResult(
        environment=environment,
        discarded=len(kept),
        freed_bytes=freed,
        message=f"{len(kept)} kept cop{'y' if len(kept) == 1 else 'ies'} dropped from '{environment}', "
        f"{freed} bytes freed.",
    )
