"""Undo tools: snapshot_schema, list_snapshots, verify_snapshot and rollback (tools/undo), thin over the engine.

Annotations are honest: snapshot_schema writes a row to the ledger schema (not read-only, not destructive);
list_snapshots and verify_snapshot only read the environment (verify loads the snapshot into a throw-away local
PostgreSQL); rollback changes the schema and can drop what was created since the snapshot (destructive). On a
protected environment, rollback uses the one approval path of apply_migration (`server.registry.settle`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from mcp.server.elicitation import ElicitationResult
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp.types import ToolAnnotations
from pydantic import Field

from pgshift.server.app import AppState
from pgshift.server.progress import mcp_progress
from pgshift.server.registry import (
    _DRAFTING_ERRORS,
    APPROVAL_ID,
    READ,
    WRITE,
    Approval,
    Draft,
    Env,
    ask_person,
    can_elicit,
    drafted,
    guarded,
    settle,
    state,
)
from pgshift.tools.approval import Drafts
from pgshift.tools.progress import reported
from pgshift.tools.undo.rollback import RollbackResult, rollback
from pgshift.tools.undo.snapshots import SnapshotList, SnapshotResult, VerifyResult, list_snapshots, snapshot_schema
from pgshift.tools.undo.snapshots import verify_snapshot as verify

# Adds a row to pgshift.snapshots: a write, but it changes no schema object and destroys nothing.
RECORD = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)

Migration = Annotated[str | None, Field(description="Roll back this migration version (to the snapshot before it)")]
ToVersion = Annotated[str | None, Field(description="Roll back every migration applied after this version")]
SnapshotId = Annotated[int | None, Field(description="Roll back to this snapshot id (see list_snapshots)")]
AcceptLoss = Annotated[
    bool, Field(description="Allow dropping data written since the snapshot that nothing kept (else a blocker)")
]


async def draft_rollback(
    ctx: Context,
    environment: str,
    migration: str | None,
    to_version: str | None,
    snapshot: int | None,
    accept_data_loss: bool,
    approval_id: str | None,
    dry_run: bool,
) -> Draft[Any] | None:
    if approval_id is not None or dry_run or not can_elicit(ctx):
        return None
    st, drafts = state(ctx), Drafts()
    try:
        if not st.db.environment(environment).protected:
            return None
        first = await rollback(st.db, environment, migration, to_version, snapshot, accept_data_loss, approvals=drafts)
        return drafted(first, drafts)
    except _DRAFTING_ERRORS:
        return None


def ask_rollback(first: Annotated[Draft[Any] | None, Resolve(draft_rollback)]) -> Elicit[Approval] | None:
    return ask_person(first)


def register_undo_tools(app: MCPServer[AppState]) -> None:
    """Register snapshot_schema, list_snapshots, verify_snapshot and rollback."""

    async def snapshot_schema_tool(
        environment: Env,
        ctx: Context,
        label: Annotated[str | None, Field(description="A label for the snapshot")] = None,
        to_file: Annotated[
            bool,
            Field(
                description="Also write the DDL to a new file .pgshift/snapshots/<environment>/<id>.sql (never "
                "overwritten, never through a link)"
            ),
        ] = False,
    ) -> SnapshotResult:
        """Record the environment's schema now: its fingerprint and a loadable DDL form (pg_dump --schema-only) in
        the database's own pgshift.snapshots table, so a rollback can return to it. pgshift also takes one
        automatically before every apply_migration and deploy migration. Reuses the last snapshot's DDL when the
        schema has not changed. Writes one row; changes no schema object."""
        return await snapshot_schema(state(ctx).db, environment, label, project=Path.cwd() if to_file else None)

    async def list_snapshots_tool(
        environment: Env,
        ctx: Context,
        limit: Annotated[int, Field(description="Most snapshots per page", ge=1, le=500)] = 50,
        offset: Annotated[int, Field(description="next_offset of the previous page", ge=0)] = 0,
    ) -> SnapshotList:
        """The environment's snapshots, newest first and paged: id, age, DDL size, fingerprint, the migration each
        was taken before, and the size of the data kept with it (data that migration destroyed, restorable by
        rollback). Read-only."""
        return await list_snapshots(state(ctx).db, environment, limit, offset)

    async def verify_snapshot(
        environment: Env,
        snapshot: Annotated[int, Field(description="Snapshot id (see list_snapshots)")],
        ctx: Context,
    ) -> VerifyResult:
        """Test a restore: load the snapshot's DDL into a throw-away local PostgreSQL and prove it reaches the
        fingerprint recorded when it was taken. The environment is only read."""
        return await reported(mcp_progress(ctx), "verifying the snapshot", verify(state(ctx).db, environment, snapshot))

    async def rollback_tool(
        environment: Env,
        ctx: Context,
        migration: Migration = None,
        to_version: ToVersion = None,
        snapshot: SnapshotId = None,
        accept_data_loss: AcceptLoss = False,
        approval_id: Annotated[str | None, Field(description=APPROVAL_ID)] = None,
        dry_run: Annotated[bool, Field(description="Plan and verify in a rolled-back transaction only")] = False,
        first: Annotated[Draft[Any] | None, Resolve(draft_rollback)] = None,
        answer: Annotated[ElicitationResult[Approval], Resolve(ask_rollback)] = None,  # type: ignore[assignment]
    ) -> RollbackResult:
        """Return the environment's schema to a snapshot (pass one of migration, to_version, snapshot): planned from
        the live schema, renames undone, kept data written back, verified against the snapshot's fingerprint in a
        dry run and in the real run (or nothing commits). Dropping data nothing kept is a blocker unless
        accept_data_loss. Afterwards the migration is pending again in every history. A protected environment needs
        a person's approval."""
        st = state(ctx)

        async def run(request_id: str | None) -> RollbackResult:
            work = rollback(
                st.db,
                environment,
                migration,
                to_version,
                snapshot,
                accept_data_loss,
                request_id,
                dry_run,
                approvals=st.approvals,
            )
            return await reported(mcp_progress(ctx), "rolling back", work)

        if first is not None:
            return await settle(ctx, first, answer, run)
        return await run(approval_id)

    tools = (
        (snapshot_schema_tool, "snapshot_schema", "Snapshot schema", RECORD),
        (list_snapshots_tool, "list_snapshots", "List snapshots", READ),
        (verify_snapshot, "verify_snapshot", "Verify snapshot", READ),
        (rollback_tool, "rollback", "Roll back", WRITE),
    )
    for fn, name, title, hints in tools:
        app.add_tool(
            guarded(fn),
            name=name,
            title=title,
            description=fn.__doc__,
            annotations=hints.model_copy(update={"title": title}),
            structured_output=True,
        )
