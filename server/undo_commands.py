"""The undo commands of the CLI: snapshot, snapshots, rollback.

Exit codes: `snapshot` 0 recorded; `snapshots` 0; `rollback` 0 rolled back (or nothing to do, or a dry run that
verified), 2 confirmation needed (protected target without --yes) or blocked (data loss without
--accept-data-loss), 1 error (nothing was committed); `discard-kept` 0 dropped, 2 protected target without --yes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from pgshift.server.cli import add_data_loss_argument
from pgshift.server.commands import EXIT_OK, EXIT_PENDING, _confirmed, _emit, _run, _target_db, named
from pgshift.server.progress import TerminalProgress
from pgshift.tools.progress import reported
from pgshift.tools.undo.rollback import RollbackResult, rollback
from pgshift.tools.undo.snapshots import (
    DiscardResult,
    SnapshotList,
    SnapshotResult,
    discard_kept_data,
    list_snapshots,
    snapshot_schema,
)


def render_snapshot(result: SnapshotResult) -> str:
    where = f"\nDDL written to {result.file}" if result.file else ""
    return f"{result.message}{where}"


def render_snapshots(result: SnapshotList) -> str:
    lines = ["id  age_s  ddl_bytes  kept_bytes  precedes  label"]
    for s in result.snapshots.data:
        precedes = f"{s.precedes_version} ({s.precedes_name})" if s.precedes_version else "-"
        lines.append(f"{s.id}  {s.age_seconds}  {s.ddl_bytes}  {s.kept_bytes}  {precedes}  {s.label or ''}")
    return "\n".join(lines)


def render_rollback(result: RollbackResult) -> str:
    plan = result.plan.data
    lines = [f"  {i}. {s.sql}" for i, s in enumerate(plan.statements, 1)]
    lines += [f"  restore {r.object}: {r.kept_rows} kept row(s)" for r in plan.restores]
    lines += [f"  blocker: {b}" for b in plan.blockers]
    return "\n".join([*lines, result.message])


def _snapshot(args: argparse.Namespace) -> int:
    db, name = _target_db(args.target, writes=True)
    project = Path.cwd() if args.file else None
    result = _run(db, lambda: snapshot_schema(db, name, args.label, project=project))
    _emit(result, args.json, render_snapshot)
    return EXIT_OK


def _snapshots(args: argparse.Namespace) -> int:
    db, name = _target_db(args.target)
    result = _run(db, lambda: list_snapshots(db, name))
    _emit(result, args.json, render_snapshots)
    return EXIT_OK


def _rollback(args: argparse.Namespace) -> int:
    db, name = _target_db(args.target, writes=True)
    line = TerminalProgress("rollback")

    def call(token: str | None) -> Awaitable[Any]:
        work = rollback(
            db,
            name,
            migration=args.migration,
            to_version=args.to_version,
            snapshot=args.snapshot,
            accept_data_loss=args.accept_data_loss,
            approval_id=token,
            dry_run=args.dry_run,
        )
        return reported(line, "planning, verifying and rolling back", work)

    try:
        first = _run(db, lambda: call(None))
        result = _confirmed(first, args.yes, call, db)
    finally:
        line.close()
    _emit(result, args.json, render_rollback)
    if result.status == "confirmation_required":
        print(f"pgshift rollback: {named(name)} is protected: re-run with --yes to roll back.", file=sys.stderr)
        return EXIT_PENDING
    return EXIT_PENDING if result.status == "blocked" else EXIT_OK


def _discard(args: argparse.Namespace) -> int:
    db, name = _target_db(args.target, writes=True)
    if db.environment(name).protected and not args.yes:
        print(
            f"pgshift discard-kept: {named(name)} is protected: nothing was dropped. Re-run with --yes to drop the "
            "kept data (a rollback can then no longer restore it).",
            file=sys.stderr,
        )
        return EXIT_PENDING
    result: DiscardResult = _run(db, lambda: discard_kept_data(db, name, args.snapshot))
    _emit(result, args.json, lambda r: r.message)
    return EXIT_OK


def add_undo_commands(sub: Any) -> None:
    snapshot = sub.add_parser("snapshot", help="record the target's schema (fingerprint + DDL) in pgshift.snapshots")
    snapshot.add_argument("--target", required=True, help="URL or environment name")
    snapshot.add_argument("--label", help="a label for the snapshot")
    snapshot.add_argument("--file", action="store_true", help="also write .pgshift/snapshots/<env>/<id>.sql here")
    snapshot.add_argument("--json", action="store_true", help="print the result as JSON")
    snapshot.set_defaults(func=_snapshot)

    snapshots = sub.add_parser("snapshots", help="list the target's snapshots and the data kept with them")
    snapshots.add_argument("--target", required=True, help="URL or environment name")
    snapshots.add_argument("--json", action="store_true", help="print the result as JSON")
    snapshots.set_defaults(func=_snapshots)

    back = sub.add_parser("rollback", help="return the target to a snapshot, verified, with kept data restored")
    back.add_argument("--target", required=True, help="URL or environment name")
    which = back.add_mutually_exclusive_group(required=True)
    which.add_argument("--migration", help="roll back this migration version (to the snapshot taken before it)")
    which.add_argument("--to-version", help="roll back every migration after this version")
    which.add_argument("--snapshot", type=int, help="roll back to this snapshot id")
    add_data_loss_argument(back, "lose data written since that nothing kept", dest="accept_data_loss")
    back.add_argument("--dry-run", action="store_true", help="plan and verify in a rolled-back transaction only")
    back.add_argument("--yes", action="store_true", help="confirm on a protected target")
    back.add_argument("--json", action="store_true", help="print the result as JSON")
    back.set_defaults(func=_rollback)

    discard = sub.add_parser("discard-kept", help="drop data kept for rollback (all, or one snapshot's) to free space")
    discard.add_argument("--target", required=True, help="URL or environment name")
    discard.add_argument("--snapshot", type=int, help="only the data kept with this snapshot")
    discard.add_argument("--yes", action="store_true", help="confirm on a protected target")
    discard.add_argument("--json", action="store_true", help="print the result as JSON")
    discard.set_defaults(func=_discard)
