"""What the runner does for undo around one migration: the snapshot before it, and the data its steps destroy.

`prepare` runs before the migration's transaction (it reads, estimates what keeping would take and refuses past the
environment's limit, and dumps the schema unless the last snapshot has the same fingerprint); `save` writes the
snapshot row, inside the migration's transaction when the migration is one transaction (it fails with it, and then
nothing needs rolling back) or committed before it when the migration runs step by step (a half-applied migration can
then be rolled back); `keep_for` copies what a statement is about to destroy, right before it, in its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from pgshift.tools.databases import Databases
from pgshift.tools.errors import NotAllowed
from pgshift.tools.localpg import embedded_bin_dir
from pgshift.tools.migrations.folder import Migration
from pgshift.tools.migrations.parse import SqlStatement
from pgshift.tools.undo.keep import estimate_bytes, keep, unkeepable
from pgshift.tools.undo.losses import Loss, migration_losses
from pgshift.tools.undo.retention import enforce, human_bytes, until_from_now
from pgshift.tools.undo.store import (
    DEFAULT_KEEP_SNAPSHOTS,
    DEFAULT_KEPT_RETENTION_DAYS,
    KeptData,
    SnapshotOptions,
    Taken,
    prepare_snapshot,
    save_snapshot,
)


@dataclass
class Capture:
    """Undo state of one migration run (mutable: filled in as the migration runs, then read into its result)."""

    taken: Taken
    losses: tuple[Loss, ...]
    estimated_bytes: int
    snapshot_id: int | None = None
    kept: list[KeptData] = field(default_factory=list)
    unkept: list[str] = field(default_factory=list)  # columns destroyed that have no key to be kept by

    def losses_of(self, statement: int) -> list[Loss]:
        return [loss for loss in self.losses if loss.statement == statement]


def options_for(db: Databases, environment: str) -> SnapshotOptions:
    """How snapshots of `environment` are taken: its libpq URL, the embedded PostgreSQL 18 pg_dump (which dumps
    servers back to 9.2), its `max_kept_bytes` limit when the configuration sets one, and its retention
    (`kept_retention_days`, `keep_snapshots`)."""
    env = db.environment(environment)
    limit = getattr(env, "max_kept_bytes", None)
    days = getattr(env, "kept_retention_days", None)
    snapshots = getattr(env, "keep_snapshots", None)
    return SnapshotOptions(
        dump_url=env.libpq_url,
        bin_dir=embedded_bin_dir(),
        secrets=tuple(db.secrets()),
        max_kept_bytes=limit if isinstance(limit, int) else None,
        environment=environment,
        kept_retention_days=days if isinstance(days, int) else DEFAULT_KEPT_RETENTION_DAYS,
        keep_snapshots=snapshots if isinstance(snapshots, int) else DEFAULT_KEEP_SNAPSHOTS,
    )


def kept_note(db: Databases, environment: str, estimated: int) -> list[str]:
    """For an approval prompt: what a migration's destroyed data will take once kept, and until when."""
    if not estimated:
        return []
    days = options_for(db, environment).kept_retention_days
    return [
        f"kept for undo: about {human_bytes(estimated)} of destroyed data, until {until_from_now(days):%Y-%m-%d} "
        f"(kept_retention_days = {days}; discarded by pgshift's first write after that)"
    ]


def over_limit(migration: Migration, estimated: int, limit: int | None) -> str | None:
    """The blocker when keeping this migration's lost data would exceed the environment's limit."""
    if limit is None or estimated <= limit:
        return None
    return (
        f"migration {migration.version} ({migration.name}) destroys data that pgshift would keep for undo: about "
        f"{estimated} bytes, over this environment's max_kept_bytes ({limit}). Nothing was run. Free space with "
        "discard_kept_data, raise the limit, or split the migration."
    )


async def estimate_kept(
    conn: asyncpg.Connection, options: SnapshotOptions, migration: Migration, statements: Sequence[SqlStatement]
) -> int:
    """Bytes the data this migration destroys would take once kept, read before anything runs (shown before a
    person approves); NotAllowed when over the environment's `max_kept_bytes`. Table names resolve with the
    session's search_path: call it before anything in the same transaction reads the catalog (introspection sets
    search_path for its transaction)."""
    losses = migration_losses(statements)
    estimated = await estimate_bytes(conn, losses) if losses else 0
    blocker = over_limit(migration, estimated, options.max_kept_bytes)
    if blocker is not None:
        raise NotAllowed(blocker)
    return estimated


async def prepare(
    conn: asyncpg.Connection,
    options: SnapshotOptions,
    migration: Migration,
    statements: Sequence[SqlStatement],
    lock_timeout_ms: int,
) -> Capture:
    losses = tuple(migration_losses(statements))
    estimated = await estimate_kept(conn, options, migration, statements)
    unkept = await unkeepable(conn, losses) if losses else []
    taken = await prepare_snapshot(conn, options, lock_timeout_ms)
    return Capture(taken, losses, estimated, unkept=unkept)


async def save(conn: asyncpg.Connection, capture: Capture, migration: Migration) -> int:
    """Write the snapshot, then apply the environment's retention (this is a write: expired kept data goes)."""
    capture.snapshot_id = await save_snapshot(
        conn, capture.taken, precedes_version=migration.version, precedes_name=migration.name
    )
    await enforce(
        conn, kept_retention_days=capture.taken.kept_retention_days, keep_snapshots=capture.taken.keep_snapshots
    )
    return capture.snapshot_id


async def keep_for(conn: asyncpg.Connection, capture: Capture, statement: int) -> None:
    """Copy what statement number `statement` is about to destroy (inside its transaction)."""
    assert capture.snapshot_id is not None
    for n, loss in enumerate(capture.losses_of(statement), start=1):
        kept = await keep(conn, capture.snapshot_id, loss, n, retention_days=capture.taken.kept_retention_days)
        if kept is not None:
            capture.kept.append(kept)
