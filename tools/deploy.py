"""list_migrations and deploy: a migrations folder against each environment's history.

`list_migrations` reads the three history tables of every environment (read-only, side by side) and says
for each migration: applied, pending, failed, edited after apply (checksum differs) or in the database but
missing locally. The folder's own ecosystem decides (`ledger.History.is_applied`): `_prisma_migrations` for a
Prisma folder, Supabase's table for a Supabase folder; our ledger never makes a migration applied (a migration
reverted with the Supabase CLI or rolled back with Prisma is pending again). `deploy` applies every pending
migration in folder order under one apply lock and stops at the first failure: that migration is fully undone, the
earlier ones stay recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pgshift.tools import ledger
from pgshift.tools.approval import ApprovalStore, instruction
from pgshift.tools.compare import _end, _sizes
from pgshift.tools.databases import Databases
from pgshift.tools.errors import ConfigError, NotAllowed, PgshiftError
from pgshift.tools.migrations.folder import (
    Migration,
    MigrationFolder,
    checksum,
    checksum_matches,
    read_migrations,
    split_label,
)
from pgshift.tools.migrations.runner import (
    ApplyResult,
    ConnectionLost,
    Timeouts,
    apply_session,
    execute_migration,
    preflight,
    prepare_for,
    refuse_forbidden,
    refuse_lock_conflicts,
    target_fingerprint,
    verified_loss,
)
from pgshift.tools.migrations.steps import Statement, plan_steps, split_statements
from pgshift.tools.progress import Progress, no_progress
from pgshift.tools.undo.capture import options_for as undo_options
from pgshift.tools.untrusted import Untrusted, fence

State = Literal["applied", "pending", "failed", "edited", "missing_locally"]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class MigrationRow(Frozen):
    version: str
    name: str
    local: bool = Field(description="False when only a database's history knows this migration")
    checksum: str | None = None
    states: dict[str, State] = Field(description="Environment name -> state of this migration there")


class EnvironmentSummary(Frozen):
    environment: str
    reachable: bool
    error: str | None = None
    applied: int = 0
    pending: int = 0
    failed: int = 0
    edited: int = 0
    missing_locally: int = 0
    in_sync: bool = Field(False, description="Every local migration applied unchanged and nothing unknown recorded")


class MigrationStatus(Frozen):
    directory: str
    kind: Literal["prisma", "supabase"]
    environments: list[EnvironmentSummary]
    migrations: Untrusted[list[MigrationRow]] = Field(
        description="Fenced as untrusted data: migrations missing locally are named by the databases' history"
    )
    warnings: list[str] = []


class DeployResult(Frozen):
    environment: str
    directory: str
    status: Literal["up_to_date", "deployed", "failed", "confirmation_required"]
    applied: list[ApplyResult] = Field(default_factory=list, description="Migrations applied by this call, in order")
    pending: list[str] = Field(default_factory=list, description="Pending migrations (labels) when the call began")
    failed: str | None = Field(None, description="The migration that failed (fully undone unless the error says)")
    error: str | None = None
    not_run: list[str] = Field(default_factory=list, description="Pending migrations after the failed one")
    target_fingerprint: str | None = None
    approval_id: str | None = Field(
        None, description="Approval request a person must approve (pgshift approve <id>) before this deploy runs"
    )
    warnings: list[str] = []
    message: str = ""


def migration_state(history: ledger.History, migration: Migration) -> State:
    if history.is_applied(migration):
        recorded = history.recorded_checksum(migration)
        return "edited" if recorded is not None and not checksum_matches(migration.sql, recorded) else "applied"
    return "failed" if history.is_failed(migration) else "pending"


def unknown_to_folder(history: ledger.History, folder: MigrationFolder) -> list[tuple[str, str]]:
    """(version, name) of applied migrations the folder lacks, by the table that decides for each: the folder's
    ecosystem table, and Supabase's table for loose scripts pgshift applied (`apply_migration` with `sql`)."""
    versions = {m.version for m in folder.migrations}
    supabase = {s.version: s.name or "" for s in history.supabase if s.version not in versions}
    if folder.kind == "supabase":
        return sorted(supabase.items())
    names = {m.prisma_name for m in folder.migrations if m.prisma_name}
    found: dict[str, str] = {}
    for p in history.applied_prisma_rows():
        version, name = split_label(p.migration_name)
        if p.migration_name not in names and version not in versions:
            found.setdefault(version, name)
    for r in history.ledger:
        if r.source == "sql" and r.version in supabase:
            found.setdefault(r.version, supabase[r.version] or r.name)
    return sorted(found.items())


def environment_prisma_schema(db: Databases, environment: str, requested: str | None = None) -> str:
    """Where `_prisma_migrations` lives: the schema asked for, else the environment URL's `?schema=` (as Prisma
    reads it), else `public`."""
    return requested or db.environment(environment).prisma_schema or ledger.DEFAULT_PRISMA_SCHEMA


async def _history(db: Databases, environment: str, prisma_schema: str | None) -> ledger.History:
    async with db.read_only(environment, snapshot=True) as conn:
        return await ledger.read_history(conn, environment_prisma_schema(db, environment, prisma_schema))


async def list_migrations(
    db: Databases,
    directory: str | None = None,
    environments: list[str] | None = None,
    *,
    prisma_schema: str | None = None,
) -> MigrationStatus:
    """The migrations folder against every environment's history, side by side (read-only)."""
    folder = read_migrations(directory)
    names = environments if environments is not None else db.names()
    for name in names:
        db.environment(name)
    results = await asyncio.gather(*(_history(db, n, prisma_schema) for n in names), return_exceptions=True)
    summaries: list[EnvironmentSummary] = []
    states: dict[str, dict[str, State]] = {m.label: {} for m in folder.migrations}
    extra: dict[str, dict[str, State]] = {}
    extra_names: dict[str, str] = {}
    for env_name, result in zip(names, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, PgshiftError):
                raise result
            summaries.append(EnvironmentSummary(environment=env_name, reachable=False, error=db.scrub(str(result))))
            continue
        counts: dict[State, int] = {"applied": 0, "pending": 0, "failed": 0, "edited": 0, "missing_locally": 0}
        for m in folder.migrations:
            state = migration_state(result, m)
            states[m.label][env_name] = state
            counts[state] += 1
        for version, name in unknown_to_folder(result, folder):
            extra.setdefault(version, {})[env_name] = "missing_locally"
            extra_names[version] = name
            counts["missing_locally"] += 1
        summaries.append(
            EnvironmentSummary(
                environment=env_name,
                reachable=True,
                **counts,
                in_sync=counts["applied"] == len(folder.migrations) and counts["missing_locally"] == 0,
            )
        )
    rows = [
        MigrationRow(version=m.version, name=m.name, local=True, checksum=m.checksum, states=states[m.label])
        for m in folder.migrations
    ]
    rows += [MigrationRow(version=v, name=extra_names[v], local=False, states=extra[v]) for v in sorted(extra)]
    return MigrationStatus(
        directory=folder.directory,
        kind=folder.kind,
        environments=summaries,
        migrations=fence(rows),
        warnings=folder.warnings,
    )


def _pending(history: ledger.History, folder: MigrationFolder, environment: str) -> tuple[list[Migration], list[str]]:
    pending: list[Migration] = []
    warnings: list[str] = []
    failed = [m.label for m in folder.migrations if migration_state(history, m) == "failed"]
    if failed:
        raise NotAllowed(
            f"'{environment}' records failed migration(s) {', '.join(failed)}: their statements that ran stay in the "
            "database. Nothing was run. Fix the cause and re-apply each with apply_migration (its statements are "
            "rewritten to be re-runnable, and Prisma's failed row is then marked rolled back), or finish them by "
            "hand and mark them resolved (`prisma migrate resolve`); then deploy again."
        )
    seen_applied = False
    for m in reversed(folder.migrations):
        state = migration_state(history, m)
        if state == "edited":
            warnings.append(f"{m.label} was edited after it was applied (checksum differs): not re-applied")
        if state in ("applied", "edited"):
            seen_applied = True
        elif state == "pending":
            if seen_applied:
                warnings.append(f"{m.label} is older than migrations already applied: applied out of order")
            pending.append(m)
    pending.reverse()
    return pending, warnings


def _parse(pending: list[Migration]) -> dict[str, list[Statement]]:
    """Every pending migration split, its steps planned (its own transaction control checked) and checked for what
    no migration may do, up front: a malformed or forbidden one stops the deploy before anything runs."""
    parsed: dict[str, list[Statement]] = {}
    for m in pending:
        try:
            parsed[m.label] = split_statements(m.sql)
            plan_steps(parsed[m.label])
        except ConfigError as exc:
            raise ConfigError(f"migration {m.label}: {exc}") from None
        refuse_forbidden(m, parsed[m.label])
    return parsed


def _deploy_binding(environment: str, pending: list[Migration], fingerprint: str) -> tuple[str, ...]:
    plan = checksum("\x1e".join(f"{m.version}:{m.checksum}" for m in pending))
    return ("deploy", environment, plan, fingerprint)


async def deploy(
    db: Databases,
    environment: str,
    directory: str | None,
    approval_id: str | None = None,
    *,
    approvals: ApprovalStore | None = None,
    timeouts: Timeouts | None = None,
    prisma_schema: str | None = None,
    client: str = "pgshift",
    rewrite: bool = True,
    progress: Progress = no_progress,
) -> DeployResult:
    """Apply every pending migration of `directory` to `environment`, in order; stop at the first failure.
    `progress` hears of each migration as it starts, and of the end.

    Each migration runs as `check_migration` prepares it for the target (`rewrite=False`: as written).
    `prisma_schema` defaults to the environment URL's `?schema=` (see `environment_prisma_schema`).
    """
    approvals = approvals or ApprovalStore()
    timeouts = timeouts or Timeouts()
    env = db.require_writable(environment)
    prisma_schema = environment_prisma_schema(db, environment, prisma_schema)
    folder = read_migrations(directory)
    if not folder.migrations:
        raise ConfigError(f"{folder.directory} holds no migrations: nothing to deploy")

    if env.protected and approval_id is None:
        async with db.read_only(environment, snapshot=True) as ro:
            history = await ledger.read_history(ro, prisma_schema)
            pending, warnings = _pending(history, folder, environment)
            _parse(pending)
            fingerprint = await target_fingerprint(ro)
        if not pending:
            return DeployResult(
                environment=environment,
                directory=folder.directory,
                status="up_to_date",
                warnings=warnings,
                message=f"'{environment}' has every migration of {folder.directory}: nothing to do.",
            )
        request = approvals.file(
            "deploy",
            environment,
            env.redacted_url,
            [f"-- migration {m.label}\n{m.sql.strip()}" for m in pending],
            _deploy_binding(environment, pending, fingerprint),
            target_fingerprint=fingerprint,
        )
        return DeployResult(
            environment=environment,
            directory=folder.directory,
            status="confirmation_required",
            pending=[m.label for m in pending],
            target_fingerprint=fingerprint,
            approval_id=request.id,
            warnings=warnings,
            message=instruction(request, f"the {len(pending)} pending migration(s) (send the same directory)"),
        )

    applied: list[ApplyResult] = []
    failure: tuple[int, Migration, PgshiftError] | None = None
    try:
        async with apply_session(db, environment, timeouts) as conn:
            history = await ledger.read_history(conn, prisma_schema)
            pending, warnings = _pending(history, folder, environment)
            parsed = _parse(pending)  # pending is set before any ConnectionLost can be raised
            supabase: bool | None = None  # detected once, with the first migration
            every = [s for m in pending for s in parsed[m.label]]
            what = f"deploying {len(pending)} migration(s)"
            await refuse_lock_conflicts(conn, environment, what, every, timeouts.lock_ms)
            if env.protected:
                assert approval_id is not None
                fingerprint = await target_fingerprint(conn)
                binding = _deploy_binding(environment, pending, fingerprint)
                approvals.consume(approval_id, env.redacted_url, binding, "this deploy")
            for i, m in enumerate(pending):
                await progress(i, len(pending), f"applying {m.label} ({i + 1} of {len(pending)})")
                try:
                    prepared = await prepare_for(conn, parsed[m.label], rewrite=rewrite, supabase=supabase)
                    supabase = prepared.supabase
                    await preflight(conn, environment, m, prepared.statements)
                    applied.append(
                        await execute_migration(
                            conn,
                            environment,
                            m,
                            prepared,
                            timeouts,
                            client=client,
                            prisma_schema=prisma_schema,
                            snapshots=undo_options(db, environment),
                        )
                    )
                except ConnectionLost:
                    raise
                except PgshiftError as exc:
                    failure = (i, m, exc)
                    break
            await progress(len(applied), len(pending), f"{len(applied)} of {len(pending)} migration(s) applied")
    except ConnectionLost as lost:
        i = len(applied)
        failure = (i, pending[i], await verified_loss(db, environment, lost, prisma_schema))
    if not pending:
        return DeployResult(
            environment=environment,
            directory=folder.directory,
            status="up_to_date",
            warnings=warnings,
            message=f"'{environment}' has every migration of {folder.directory}: nothing to do.",
        )
    if failure is not None:
        i, m, cause = failure
        done = ", ".join(a.version for a in applied) or "none"
        error = db.scrub(str(cause))
        return DeployResult(
            environment=environment,
            directory=folder.directory,
            status="failed",
            applied=applied,
            pending=[p.label for p in pending],
            failed=m.label,
            error=error,
            not_run=[p.label for p in pending[i + 1 :]],
            warnings=warnings,
            message=f"deploy stopped at {m.label}: {error} Applied and recorded before it: {done}.",
        )
    return DeployResult(
        environment=environment,
        directory=folder.directory,
        status="deployed",
        applied=applied,
        pending=[p.label for p in pending],
        warnings=warnings,
        message=f"applied {len(applied)} migration(s) to '{environment}', each recorded in the history tables.",
    )


# The MCP answer of `deploy`: the summary first, then one compact row per migration; statements only for the failed
# migration (and, with detail=true, for applied ones within a byte budget). The engine's DeployResult stays whole
# (`pgshift deploy --json` prints all of it).

ANSWER_BYTES = 76_000
"""Statements and rows per answer: about 19,000 tokens. Compact rows are about 135 bytes: 500 fit with room."""
STATEMENTS_BYTES = 16_000
"""The failed migration's statements, and with detail=true the applied migrations in full: each at most this."""

RowStatus = Literal["applied", "failed", "not_run", "pending"]


class DeployedMigration(Frozen):
    version: str
    name: str
    status: RowStatus
    statements: int | None = Field(None, description="Statements it ran (applied) or holds (failed)")
    duration_ms: int | None = None
    snapshot_id: int | None = Field(None, description="Snapshot taken before it: rollback(snapshot=...) returns there")
    kept_bytes: int | None = Field(None, description="Data it destroyed, kept for rollback")


class FailedStatement(Frozen):
    index: int = Field(description="1-based position in the migration")
    line: int
    sql: str


class DeployCounts(Frozen):
    pending: int = Field(description="Pending migrations when the call began")
    applied: int
    failed: int
    not_run: int


class DeployAnswer(Frozen):
    """deploy as an MCP client receives it: the summary first, then one compact row per migration."""

    environment: str
    directory: str
    status: Literal["up_to_date", "deployed", "failed", "confirmation_required"]
    message: str
    counts: DeployCounts
    failed: str | None = Field(None, description="The migration that failed (fully undone unless the error says)")
    error: str | None = None
    approval_id: str | None = Field(
        None, description="Approval request a person must approve (pgshift approve <id>) before this deploy runs"
    )
    target_fingerprint: str | None = None
    first_snapshot_id: int | None = Field(
        None, description="Snapshot before the first migration applied: rollback(snapshot=...) undoes this deploy"
    )
    kept_bytes: int = Field(0, description="Data destroyed by this deploy and kept for rollback, in bytes")
    recorded_in: list[str] = Field(default_factory=list, description="History tables this deploy wrote")
    next_step: str = Field(description="Where the rest is: list_migrations, the ledger, pgshift deploy --json")
    rows_shown: int = Field(description="Migrations listed in `migrations` (all of them unless the budget cut it)")
    migrations: list[DeployedMigration] = Field(description="Every migration this call concerns, once, in order")
    failed_statements: list[FailedStatement] | None = Field(
        None, description="The failed migration's statements as written in the folder (the error names the one)"
    )
    detail: list[ApplyResult] | None = Field(
        None, description="With detail=true: applied migrations in full (statements, kept data), within a byte budget"
    )
    warnings: list[str] = []


def _applied_row(a: ApplyResult) -> DeployedMigration:
    return DeployedMigration(
        version=a.version,
        name=a.name,
        status="applied",
        statements=len(a.statements),
        duration_ms=a.duration_ms,
        snapshot_id=a.snapshot_id,
        kept_bytes=a.kept_bytes or None,
    )


def _label_row(label: str, status: RowStatus, statements: int | None = None) -> DeployedMigration:
    version, name = split_label(label)
    return DeployedMigration(version=version, name=name, status=status, statements=statements)


def _rows(result: DeployResult, failed_statements: list[Statement] | None) -> list[DeployedMigration]:
    if result.status == "confirmation_required":
        return [_label_row(label, "pending") for label in result.pending]
    rows = [_applied_row(a) for a in result.applied]
    if result.failed is not None:
        count = len(failed_statements) if failed_statements is not None else None
        rows.append(_label_row(result.failed, "failed", count))
    return rows + [_label_row(label, "not_run") for label in result.not_run]


def _within(items: Sequence[BaseModel], budget: int) -> int:
    """How many items from the first fit in `budget` bytes (at least one, when there is one)."""
    return _end(_sizes(items), 0, len(items), budget)


def _deploy_next_step(
    result: DeployResult, shown: int, total: int, detailed: int | None, failed_shown: tuple[int, int]
) -> str:
    steps = []
    if result.status == "confirmation_required":
        steps.append(
            f"Nothing ran: a person approves this deploy at a terminal with `pgshift approve {result.approval_id}`, "
            f'then call deploy again with approval_id="{result.approval_id}" (it runs these migrations once, before '
            "the request expires)."
        )
    if result.status == "failed":
        steps.append(
            f"Fix {result.failed} (see error and failed_statements), then deploy again: the ones after it did not run."
        )
    if failed_shown[0] < failed_shown[1]:
        steps.append(f"failed_statements lists the first {failed_shown[0]} of {failed_shown[1]}: the file has all.")
    if shown < total:
        steps.append(f"Only the first {shown} of {total} migrations are listed here.")
    if detailed is not None and detailed < len(result.applied):
        steps.append(f"detail covers the first {detailed} applied migration(s) of {len(result.applied)}.")
    steps.append(
        "Per-migration state: list_migrations; each applied migration's statements and snapshot: the "
        "pgshift.migrations ledger (rollback(migration=...) undoes one); everything at once: `pgshift deploy --json` "
        "at a terminal."
    )
    return " ".join(steps)


def deploy_answer(
    result: DeployResult, failed_statements: list[Statement] | None = None, detail: bool = False
) -> DeployAnswer:
    """The engine's result for an MCP client, under about 20,000 tokens whatever the number of migrations: every
    migration once as a compact row (some 500 fit; beyond, the rows are cut and next_step says so), statements only
    for the failed migration, and with `detail` the first applied migrations in full (each within STATEMENTS_BYTES,
    all within ANSWER_BYTES)."""
    rows = _rows(result, failed_statements)
    every = [FailedStatement(index=i, line=s.line, sql=s.text) for i, s in enumerate(failed_statements or [], start=1)]
    statements = every[: _within(every, STATEMENTS_BYTES)]
    detailed = _within(result.applied, STATEMENTS_BYTES) if detail else None
    used = sum(_sizes([*statements, *result.applied[: detailed or 0]]))
    shown = _within(rows, ANSWER_BYTES - used)
    kept = [a.kept_bytes for a in result.applied if a.kept_bytes]
    snapshots = [a.snapshot_id for a in result.applied if a.snapshot_id is not None]
    return DeployAnswer(
        environment=result.environment,
        directory=result.directory,
        status=result.status,
        message=result.message,
        counts=DeployCounts(
            pending=len(result.pending),
            applied=len(result.applied),
            failed=1 if result.failed else 0,
            not_run=len(result.not_run),
        ),
        failed=result.failed,
        error=result.error,
        approval_id=result.approval_id,
        target_fingerprint=result.target_fingerprint,
        first_snapshot_id=snapshots[0] if snapshots else None,
        kept_bytes=sum(kept),
        recorded_in=list(dict.fromkeys(t for a in result.applied for t in a.recorded_in)),
        next_step=_deploy_next_step(result, shown, len(rows), detailed, (len(statements), len(every))),
        rows_shown=shown,
        migrations=rows[:shown],
        failed_statements=statements if result.failed is not None and statements else None,
        detail=list(result.applied[:detailed]) if detailed is not None else None,
        warnings=result.warnings,
    )


def failed_migration_statements(result: DeployResult) -> list[Statement] | None:
    """The failed migration's statements as written in the folder (reads the folder again; None when it is gone)."""
    if result.failed is None:
        return None
    try:
        folder = read_migrations(result.directory)
        found = next((m for m in folder.migrations if m.label == result.failed), None)
        return split_statements(found.sql) if found is not None else None
    except ConfigError:
        return None


def render_status(status: MigrationStatus) -> str:
    """A plain-text table for the CLI: one row per migration, one column per environment."""
    envs = [s.environment for s in status.environments]
    header = ["version", "name", *envs]
    rows = [
        [m.version, m.name if m.local else f"{m.name} (not in folder)", *(m.states.get(e, "-") for e in envs)]
        for m in status.migrations.data
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"{status.kind} migrations in {status.directory}", ""]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    lines.append("")
    for s in status.environments:
        if not s.reachable:
            lines.append(f"{s.environment}: unreachable: {s.error}")
            continue
        sync = "in sync" if s.in_sync else "NOT in sync"
        lines.append(
            f"{s.environment}: {sync} (applied {s.applied}, pending {s.pending}, failed {s.failed}, "
            f"edited {s.edited}, missing locally {s.missing_locally})"
        )
    lines += [f"warning: {w}" for w in status.warnings]
    return "\n".join(lines)


def render_deploy(result: DeployResult) -> str:
    """A plain-text report of a deploy for the CLI."""
    lines = [result.message]
    lines += [f"  applied {a.version} {a.name} ({a.duration_ms} ms)" for a in result.applied]
    if result.failed:
        lines.append(f"  FAILED  {result.failed}")
    lines += [f"  not run {label}" for label in result.not_run]
    if result.status == "confirmation_required":
        lines += [f"  pending {label}" for label in result.pending]
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines)
