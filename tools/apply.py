"""apply_migration: run one migration on an environment and record it in the three history tables.

The migration is inline SQL or a file of the project's migrations folder (its own version is kept). On a
protected environment the first call returns the checked plan (statements, lint findings, the target's
schema fingerprint) and files an approval request bound to exactly those statements and that fingerprint
(`tools.approval`); only a call with that request's id, after a person approved it, applies, and it is refused
if the target changed in between. `dry_run` runs the script
in a transaction that is rolled back and reports the schema change. The running itself is in
`tools.migrations.runner`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

import asyncpg

from pgshift.tools import ledger
from pgshift.tools.approval import ApprovalStore, instruction
from pgshift.tools.databases import Databases
from pgshift.tools.errors import ConfigError, PgshiftError
from pgshift.tools.migrations.check import RewriteProof, check_migration, prepare_proven, prepared_from
from pgshift.tools.migrations.folder import Migration, checksum, checksum_matches, read_migration, read_migrations
from pgshift.tools.migrations.lint import lint
from pgshift.tools.migrations.runner import (
    ApplyResult,
    ConnectionLost,
    PlannedStatement,
    Timeouts,
    already_applied,
    apply_session,
    execute_migration,
    existing_tables,
    planned_statements,
    preflight,
    refuse_lock_conflicts,
    statements_digest,
    target_fingerprint,
    verified_loss,
)
from pgshift.tools.migrations.steps import Prepared, Statement, body, plan_steps, split_statements
from pgshift.tools.undo.capture import estimate_kept, kept_note
from pgshift.tools.undo.capture import options_for as undo_options
from pgshift.tools.untrusted import fence

__all__ = ["ApplyResult", "PlannedStatement", "Timeouts", "apply_migration"]


def resolve_migration(name: str, sql: str | None, migration: str | None, version: str | None) -> Migration:
    """The migration to apply: a file/folder reference, or inline SQL.

    Inline SQL without a version takes the version of the local migration file holding the same script (so
    local and remote histories agree); only a script no migration file holds gets a fresh UTC timestamp.
    """
    if (sql is None) == (migration is None):
        raise ConfigError("pass exactly one of sql (the script) or migration (a migration folder, file or version)")
    if migration is not None:
        found = read_migration(migration)
        return found.model_copy(update={"version": version}) if version else found
    assert sql is not None
    if not sql.strip():
        raise ConfigError("sql is empty: nothing to apply")
    if not version:
        local = _local_file_with(sql)
        if local is not None:
            return local
        version = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return Migration(version=version, name=name, source="sql", sql=sql, checksum=checksum(sql))


def _local_file_with(sql: str) -> Migration | None:
    """The migration of the project's folder (found from the working directory) whose script is `sql`."""
    try:
        folder = read_migrations()
    except ConfigError:
        return None
    return next((m for m in folder.migrations if checksum_matches(sql, m.checksum)), None)


def _bind(
    environment: str, migration: Migration, planned: Sequence[PlannedStatement], fingerprint: str, generated: bool
) -> tuple[str, ...]:
    """What an approval is bound to (a version we generate is not: it differs between the two calls)."""
    version = "" if generated else migration.version
    return ("apply_migration", environment, version, migration.name, statements_digest(planned), fingerprint)


async def apply_migration(
    db: Databases,
    environment: str,
    name: str,
    sql: str | None = None,
    migration: str | None = None,
    version: str | None = None,
    approval_id: str | None = None,
    dry_run: bool = False,
    *,
    approvals: ApprovalStore | None = None,
    timeouts: Timeouts | None = None,
    prisma_schema: str | None = None,
    client: str = "pgshift",
    rewrite: bool = True,
) -> ApplyResult:
    """Apply one migration (inline `sql`, or `migration`: a Prisma folder, a migration file or a version).

    The statements run as `check_migration` prepares them for the target (`rewrite=False`: as written); the
    history records them as applied, and Prisma's checksum is always that of the file.
    """
    approvals = approvals or ApprovalStore()
    timeouts = timeouts or Timeouts()
    env = db.environment(environment)
    prisma_schema = prisma_schema or env.prisma_schema or ledger.DEFAULT_PRISMA_SCHEMA  # the URL's ?schema=
    if not dry_run:
        db.require_writable(environment)
    target = resolve_migration(name, sql, migration, version)
    generated = target.source == "sql" and not version
    parsed = split_statements(target.sql)
    if not body(parsed):
        raise ConfigError(f"migration {target.version} ({target.name}) holds no statements: nothing to apply")
    mode: Literal["single_transaction", "stepwise"] = (
        "single_transaction" if len(plan_steps(parsed)) <= 1 else "stepwise"
    )

    if dry_run:
        return await _dry_run(db, environment, target, parsed, mode)

    if env.protected and approval_id is None:
        async with db.read_only(environment, snapshot=True) as ro:
            prepared, proof = await prepare_proven(db, environment, None, parsed, rewrite=rewrite)
            planned = planned_statements(prepared)
            await preflight(ro, environment, target, prepared.statements)
            history = await ledger.read_history(ro, prisma_schema)
            if already_applied(history, target, environment):
                return _already(environment, target, mode, planned)
            # Before the fingerprint: reading the catalog sets this transaction's search_path, and the migration's
            # table names resolve with the session's.
            kept = await estimate_kept(ro, undo_options(db, environment), target, prepared.statements)
            fingerprint = await target_fingerprint(ro)
            hazards = lint(parsed, existing_tables=await existing_tables(ro))
        request = approvals.file(
            "apply_migration",
            environment,
            env.redacted_url,
            [s.sql for s in planned],
            _bind(environment, target, planned, fingerprint, generated),
            hazards=[f"statement {h.statement}: {h.message}" for h in hazards] + kept_note(db, environment, kept),
            target_fingerprint=fingerprint,
        )
        return ApplyResult.of(
            target,
            environment,
            status="confirmation_required",
            mode=mode,
            statements=planned,
            target_fingerprint=fingerprint,
            approval_id=request.id,
            hazards=hazards,
            kept_bytes=kept,
            message=instruction(request, f"these {len(planned)} statement(s) (send the same migration)")
            + _unguarded_note(proof)
            + (f" Data it destroys is kept for rollback first: {kept_note(db, environment, kept)[0]}." if kept else ""),
        )

    try:
        async with apply_session(db, environment, timeouts) as conn:
            label = f"migration {target.version} ({target.name})"
            await refuse_lock_conflicts(conn, environment, label, parsed, timeouts.lock_ms)
            prepared, proof = await _prepare_on_session(db, environment, conn, parsed, rewrite, target)
            planned = planned_statements(prepared)
            if env.protected:
                assert approval_id is not None
                fingerprint = await target_fingerprint(conn)
                binding = _bind(environment, target, planned, fingerprint, generated)
                approvals.consume(approval_id, env.redacted_url, binding, "this migration")
            history = await ledger.read_history(conn, prisma_schema)
            if already_applied(history, target, environment):
                return _already(environment, target, mode, planned)
            await preflight(conn, environment, target, prepared.statements)
            result = await execute_migration(
                conn,
                environment,
                target,
                prepared,
                timeouts,
                client=client,
                prisma_schema=prisma_schema,
                snapshots=undo_options(db, environment),
            )
    except ConnectionLost as lost:
        raise await verified_loss(db, environment, lost, prisma_schema) from None
    result = result.model_copy(update={"message": result.message + _unguarded_note(proof)})
    if generated:
        note = (
            f" No migration file holds this script and no version was given, so it is recorded as version "
            f"{target.version}: save it as supabase/migrations/{target.version}_{target.name}.sql (or a Prisma "
            "migration folder) so the local and remote histories agree."
        )
        result = result.model_copy(update={"message": result.message + note})
    return result


async def _dry_run(
    db: Databases,
    environment: str,
    target: Migration,
    parsed: Sequence[Statement],
    mode: Literal["single_transaction", "stepwise"],
) -> ApplyResult:
    """`check_migration` with its dry run (in a rolled-back transaction, or on a shadow database for scripts that
    cannot run in one), reported as this migration's plan. Nothing lasts on the target."""
    check = await check_migration(db, environment, sql=target.sql, dry_run=True)
    prepared = prepared_from(parsed, check.statements, check.supabase_target)
    dry = check.dry_run
    sign = {"added": "+", "removed": "-", "changed": "~"}
    changes = fence([f"{sign[c.change]} {c.kind} {c.key}" for c in dry.changes.data]) if dry is not None else None
    return ApplyResult.of(
        target,
        environment,
        status="dry_run",
        mode=mode,
        statements=planned_statements(prepared),
        hazards=list(check.lint),
        changes=changes,
        blockers=list(check.blockers),
        message=f"dry run ({dry.mode if dry else 'not run'}), nothing lasts on '{environment}': {check.summary}"
        + _unguarded_note(check.rewrite_proof),
    )


async def _prepare_on_session(
    db: Databases,
    environment: str,
    conn: asyncpg.Connection,
    parsed: Sequence[Statement],
    rewrite: bool,
    target: Migration,
) -> tuple[Prepared, RewriteProof | None]:
    """`prepare_proven` on the apply session: a session lost during the proof's dry runs is a ConnectionLost."""
    try:
        return await prepare_proven(db, environment, conn, parsed, rewrite=rewrite)
    except (PgshiftError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        if not _session_lost(conn):
            raise
        raise ConnectionLost(
            f"migration {target.version} ({target.name}) failed before any of its statements ran: the connection was "
            f"lost during the dry run that proves its rewrite ({type(exc).__name__}). That dry run's transaction was "
            "rolled back: nothing of this migration remains and the history tables are unchanged.",
            getattr(exc, "sqlstate", None),
            target,
        ) from None


def _session_lost(conn: asyncpg.Connection) -> bool:
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:  # the pool took the dead connection back
        return True


def _unguarded_note(proof: RewriteProof | None) -> str:
    """Why the script ran without its idempotency guards ('' when they ran, or none were added)."""
    return "" if proof is None or proof.guarded else f" Without idempotency guards: {proof.reason}."


def _already(
    environment: str,
    target: Migration,
    mode: Literal["single_transaction", "stepwise"],
    planned: list[PlannedStatement],
) -> ApplyResult:
    return ApplyResult.of(
        target,
        environment,
        status="already_applied",
        mode=mode,
        statements=planned,
        message=f"migration {target.version} ({target.name}) is already recorded on '{environment}': nothing was run.",
    )
