"""Status of every environment side by side: the migrations folder against each database's history, drift, the
last apply, snapshots and the pending approvals, in one answer (MCP, `pgshift status`, the dashboard, watch).

The history columns are `tools.deploy.list_migrations` (its states, not recomputed); the last apply is the newest
row of our ledger (`tools.ledger.read_history`); pending approvals are read from the approval store without
changing it. Drift and snapshots come from provider callables (`DriftProvider`, `SnapshotProvider`) so the engines
that know them plug in here; without a provider the column is left out (None), not guessed.

An environment that cannot be reached, or whose provider fails, is a row that says so (scrubbed of secrets); it
never fails the whole status. Everything read from a database (migration names, the last apply's name, version,
user and error, provider details) is fenced as untrusted data.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from pgshift.tools import ledger
from pgshift.tools.approval import ApprovalRequest, ApprovalStore
from pgshift.tools.databases import Databases
from pgshift.tools.deploy import (
    EnvironmentSummary,
    MigrationRow,
    MigrationStatus,
    environment_prisma_schema,
    list_migrations,
)
from pgshift.tools.errors import PgshiftError
from pgshift.tools.untrusted import Untrusted, fence

DriftState = Literal["none", "drift", "unknown"]
# What a provider may raise that is the environment's problem, not a bug: a row says it, the status goes on.
PROVIDER_ERRORS = (PgshiftError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class DriftReport(Protocol):
    """What a drift engine answers (tools/watch/drift.py's DriftSummary has these fields). `objects` and
    `history_problems` may be counts or lists of findings."""

    @property
    def state(self) -> str: ...
    @property
    def objects(self) -> object: ...
    @property
    def history_problems(self) -> object: ...
    @property
    def from_fast_path(self) -> bool: ...
    @property
    def detail(self) -> str | None: ...


class DriftProvider(Protocol):
    """`async def drift_summary(db, environment, directory=None) -> DriftSummary`."""

    def __call__(self, db: Databases, environment: str, directory: str | None = None, /) -> Awaitable[DriftReport]: ...


class SnapshotCell(Frozen):
    """Schema snapshots kept for an environment (issue 10's `pgshift.snapshots`)."""

    count: int = 0
    latest_at: datetime | None = None
    latest_label: str | None = Field(None, description="The newest snapshot's label or migration, as recorded")
    error: str | None = Field(None, description="Why the snapshots could not be read (the rest of the row stands)")


class SnapshotProvider(Protocol):
    """`async def snapshots(db, environment) -> SnapshotCell`."""

    def __call__(self, db: Databases, environment: str, /) -> Awaitable[SnapshotCell]: ...


@dataclass(frozen=True)
class Providers:
    """The optional columns' engines; None leaves the column out."""

    drift: DriftProvider | None = None
    snapshots: SnapshotProvider | None = None


class DriftCell(Frozen):
    state: DriftState
    objects: int = Field(0, description="Objects that differ from what the applied migrations explain")
    history_problems: int = Field(0, description="Edited, out-of-order or unknown migrations in the history")
    from_fast_path: bool = False
    detail: str | None = None


class LastApply(Frozen):
    """The newest attempt in `pgshift.migrations` (applied or failed)."""

    version: str
    name: str
    outcome: Literal["applied", "failed"]
    applied_by: str
    client: str
    finished_at: datetime
    duration_ms: int
    error: str | None = None


class ApprovalSummary(Frozen):
    """A pending approval request, without its statements (`pgshift approve ID` shows them)."""

    id: str
    action: str
    environment: str
    statements: int
    hazards: int
    created_at: datetime
    expires_at: datetime


class EnvironmentStatus(Frozen):
    environment: str
    url: str = Field(description="The URL with the password masked")
    protected: bool
    reachable: bool
    error: str | None = None
    applied: int = 0
    pending: int = 0
    failed: int = 0
    edited: int = 0
    missing_locally: int = 0
    in_sync: bool = Field(False, description="Every local migration applied unchanged and nothing unknown recorded")
    drift: DriftCell | None = Field(None, description="None: drift was not checked")
    last_apply: Untrusted[LastApply] | None = Field(None, description="None: pgshift never applied anything here")
    snapshots: SnapshotCell | None = Field(None, description="None: snapshots were not checked")
    pending_approvals: int = 0
    problems: list[str] = Field(description="What keeps this environment from clean (empty: clean)")


class Status(Frozen):
    checked_at: datetime
    directory: str
    kind: Literal["prisma", "supabase"]
    clean: bool = Field(description="No environment has a problem (pending approvals are not problems)")
    environments: list[EnvironmentStatus]
    migrations: Untrusted[list[MigrationRow]] = Field(description="Each migration's state in each environment")
    approvals: list[ApprovalSummary] = Field(description="Pending approval requests, oldest first")
    warnings: list[str] = []


# --- the pure core -------------------------------------------------------------------------------------------


def count_of(value: object) -> int:
    """A provider's `objects` / `history_problems`: a count, or a list of findings."""
    if isinstance(value, bool) or value is None:
        return int(bool(value))
    if isinstance(value, int):
        return value
    if isinstance(value, Sequence | set | dict):
        return len(value)
    return 0


def drift_cell(report: DriftReport) -> DriftCell:
    state: DriftState = "none" if report.state == "none" else "drift" if report.state == "drift" else "unknown"
    return DriftCell(
        state=state,
        objects=count_of(report.objects),
        history_problems=count_of(report.history_problems),
        from_fast_path=bool(report.from_fast_path),
        detail=report.detail,
    )


def last_apply(history: ledger.History) -> LastApply | None:
    if not history.ledger:
        return None
    row = max(history.ledger, key=lambda r: r.finished_at)
    return LastApply(
        version=row.version,
        name=row.name,
        outcome=row.outcome,
        applied_by=row.applied_by,
        client=row.client,
        finished_at=row.finished_at,
        duration_ms=row.duration_ms,
        error=row.error,
    )


def problems_of(summary: EnvironmentSummary, drift: DriftCell | None, *, allow_pending: bool = False) -> list[str]:
    """What keeps an environment from clean, in words. Drift 'unknown' is not a problem: nothing was found."""
    if not summary.reachable:
        return ["unreachable"]
    counts = [
        ("pending", summary.pending, not allow_pending),
        ("failed", summary.failed, True),
        ("edited after apply", summary.edited, True),
        ("missing locally", summary.missing_locally, True),
    ]
    found = [f"{n} {what}" for what, n, counted in counts if n and counted]
    if drift is not None and drift.state == "drift":
        found.append(f"drift ({drift.objects} object(s), {drift.history_problems} history problem(s))")
    return found


def approval_summary(request: ApprovalRequest) -> ApprovalSummary:
    return ApprovalSummary(
        id=request.id,
        action=request.action,
        environment=request.environment,
        statements=len(request.statements),
        hazards=len(request.hazards),
        created_at=datetime.fromtimestamp(request.created_at).astimezone(),
        expires_at=datetime.fromtimestamp(request.expires_at).astimezone(),
    )


@dataclass(frozen=True)
class Extras:
    """What was read for one environment beside its history counts."""

    drift: DriftCell | None = None
    snapshots: SnapshotCell | None = None
    last_apply: LastApply | None = None
    error: str | None = None


def assemble(
    migrations: MigrationStatus,
    extras: dict[str, Extras],
    db: Databases,
    approvals: Sequence[ApprovalRequest],
    *,
    allow_pending: bool = False,
    checked_at: datetime | None = None,
) -> Status:
    """The status from what was read (pure). Approvals are those for the environments shown."""
    shown = {s.environment for s in migrations.environments}
    approvals = [a for a in approvals if a.environment in shown]
    rows: list[EnvironmentStatus] = []
    for summary in migrations.environments:
        env = db.environment(summary.environment)
        extra = extras.get(summary.environment, Extras())
        reachable = summary.reachable and extra.error is None
        problems = problems_of(summary, extra.drift, allow_pending=allow_pending) if reachable else ["unreachable"]
        rows.append(
            EnvironmentStatus(
                **summary.model_dump(exclude={"reachable", "error"}),
                url=env.redacted_url,
                protected=env.protected,
                reachable=reachable,
                error=summary.error or extra.error,
                drift=extra.drift,
                snapshots=extra.snapshots,
                last_apply=fence(extra.last_apply) if extra.last_apply is not None else None,
                pending_approvals=sum(1 for a in approvals if a.environment == summary.environment),
                problems=problems,
            )
        )
    return Status(
        checked_at=checked_at or datetime.now().astimezone(),
        directory=migrations.directory,
        kind=migrations.kind,
        clean=not any(r.problems for r in rows),
        environments=rows,
        migrations=migrations.migrations,
        approvals=[approval_summary(a) for a in approvals],
        warnings=migrations.warnings,
    )


def digest(status: Status) -> dict[str, Any]:
    """The status in counts and states only (no database text, no timestamps): one `pgshift watch` line, and
    what tells one check from the next."""
    return {
        "clean": status.clean,
        "migrations": len([m for m in status.migrations.data if m.local]),
        "environments": {
            e.environment: {
                "reachable": e.reachable,
                "applied": e.applied,
                "pending": e.pending,
                "failed": e.failed,
                "edited": e.edited,
                "missing_locally": e.missing_locally,
                "drift": e.drift.state if e.drift is not None else None,
                "drift_objects": e.drift.objects if e.drift is not None else None,
                "snapshots": e.snapshots.count if e.snapshots is not None else None,
                "last_apply": _last_apply_key(e),
                "pending_approvals": e.pending_approvals,
                "problems": e.problems,
            }
            for e in status.environments
        },
        "pending_approvals": len(status.approvals),
    }


def _last_apply_key(e: EnvironmentStatus) -> str | None:
    """Changes when a new apply lands, without quoting the database's text."""
    if e.last_apply is None:
        return None
    return f"{e.last_apply.data.outcome} at {e.last_apply.data.finished_at.isoformat()}"


# --- the I/O edge ----------------------------------------------------------------------------------------------


async def _read_extras(
    db: Databases, environment: str, directory: str | None, providers: Providers, prisma_schema: str | None
) -> Extras:
    async def history() -> LastApply | None:
        async with db.read_only(environment, snapshot=True) as conn:
            read = await ledger.read_history(conn, environment_prisma_schema(db, environment, prisma_schema))
        return last_apply(read)

    async def drift() -> DriftCell | None:
        if providers.drift is None:
            return None
        try:
            return drift_cell(await providers.drift(db, environment, directory))
        except PROVIDER_ERRORS as exc:
            return DriftCell(state="unknown", detail=db.scrub(f"drift could not be checked: {exc}"))

    async def snapshots() -> SnapshotCell | None:
        if providers.snapshots is None:
            return None
        try:
            return await providers.snapshots(db, environment)
        except PROVIDER_ERRORS as exc:
            return SnapshotCell(error=db.scrub(f"snapshots could not be read: {exc}"))

    try:
        applied, drifted, kept = await asyncio.gather(history(), drift(), snapshots())
    except PgshiftError as exc:  # lost between the history read and this one
        return Extras(error=db.scrub(str(exc)))
    return Extras(drift=drifted, snapshots=kept, last_apply=applied)


async def gather_status(
    db: Databases,
    directory: str | None = None,
    *,
    environments: list[str] | None = None,
    providers: Providers | None = None,
    approvals: ApprovalStore | None = None,
    allow_pending: bool = False,
    prisma_schema: str | None = None,
) -> Status:
    """Every environment (or those named) side by side. Read-only: history and catalog reads run in READ ONLY
    transactions, approvals are listed without being touched."""
    providers = providers or Providers()
    migrations = await list_migrations(db, directory, environments, prisma_schema=prisma_schema)
    reachable = [s.environment for s in migrations.environments if s.reachable]
    read = await asyncio.gather(*(_read_extras(db, name, directory, providers, prisma_schema) for name in reachable))
    requests = (approvals or ApprovalStore()).listed()
    return assemble(migrations, dict(zip(reachable, read, strict=True)), db, requests, allow_pending=allow_pending)


def default_providers() -> Providers:
    """The drift and snapshot engines `pgshift status`, the MCP tool and the dashboard use."""
    from pgshift.tools.watch.drift import drift_summary  # drift imports the engines status reads: imported when used

    return Providers(drift=drift_summary, snapshots=recorded_snapshots)


async def recorded_snapshots(db: Databases, environment: str) -> SnapshotCell:
    """The snapshots undo keeps in the environment's `pgshift.snapshots` (none when the table does not exist)."""
    from pgshift.tools.undo.snapshots import list_snapshots

    rows = (await list_snapshots(db, environment)).snapshots.data
    newest = max(rows, key=lambda r: r.taken_at, default=None)
    if newest is None:
        return SnapshotCell()
    return SnapshotCell(
        count=len(rows), latest_at=newest.taken_at, latest_label=newest.label or newest.precedes_version
    )


class StatusCache:
    """One status at most every `max_age_s` seconds, however many readers ask (the dashboard's tabs)."""

    def __init__(self, read: Callable[[], Awaitable[Status]], max_age_s: float) -> None:
        self._read = read
        self._max_age_s = max_age_s
        self._lock = asyncio.Lock()
        self._value: Status | None = None
        self._at = 0.0

    async def get(self) -> Status:
        async with self._lock:
            if self._value is None or time.monotonic() - self._at >= self._max_age_s:
                self._value = await self._read()
                self._at = time.monotonic()
            return self._value


# --- rendering (pure) ------------------------------------------------------------------------------------------


def _drift_text(cell: DriftCell | None) -> str:
    if cell is None:
        return "-"
    return f"drift: {cell.objects}" if cell.state == "drift" else cell.state


def _last_apply_text(e: EnvironmentStatus) -> str:
    if e.last_apply is None:
        return "-"
    a = e.last_apply.data
    return f"{a.outcome} {a.version} by {a.applied_by} {a.finished_at:%Y-%m-%d %H:%M} ({a.duration_ms} ms)"


def _snapshots_text(cell: SnapshotCell | None) -> str:
    if cell is None:
        return "-"
    return "error" if cell.error else str(cell.count)


def overview_rows(status: Status) -> tuple[list[str], list[list[str]]]:
    """One row per environment (header, rows): what the terminal and the Markdown summary show."""
    header = ["environment", "state", "applied", "pending", "failed", "edited", "missing", "drift", "last apply"]
    header += ["snapshots", "approvals"]
    rows = [
        [
            e.environment + (" (protected)" if e.protected else ""),
            "clean" if not e.problems else "; ".join(e.problems),
            *(str(n) for n in (e.applied, e.pending, e.failed, e.edited, e.missing_locally)),
            _drift_text(e.drift),
            _last_apply_text(e),
            _snapshots_text(e.snapshots),
            str(e.pending_approvals),
        ]
        for e in status.environments
    ]
    return header, rows


def _notes(status: Status) -> list[str]:
    notes = [f"{e.environment}: {e.error}" for e in status.environments if e.error]
    notes += [f"{e.environment}: drift: {e.drift.detail}" for e in status.environments if e.drift and e.drift.detail]
    notes += [
        f"{e.environment}: last apply failed: {e.last_apply.data.error}"
        for e in status.environments
        if e.last_apply is not None and e.last_apply.data.error
    ]
    notes += [f"{e.environment}: {e.snapshots.error}" for e in status.environments if e.snapshots and e.snapshots.error]
    notes += [
        f"approval {a.id}: {a.action} on '{a.environment}', {a.statements} statement(s); pgshift approve {a.id}"
        for a in status.approvals
    ]
    return notes + [f"warning: {w}" for w in status.warnings]


def render_text(status: Status) -> str:
    """The terminal view: environments side by side, then each migration's state in each environment."""
    from pgshift.tools.deploy import render_status

    header, rows = overview_rows(status)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"status at {status.checked_at:%Y-%m-%d %H:%M:%S %Z}: " + ("clean" if status.clean else "NOT clean")]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    lines += _notes(status)
    summaries = [
        EnvironmentSummary(**e.model_dump(include=set(EnvironmentSummary.model_fields))) for e in status.environments
    ]
    grid = MigrationStatus(
        directory=status.directory, kind=status.kind, environments=summaries, migrations=status.migrations
    )
    return "\n".join([*lines, "", render_status(grid)])


_MARKDOWN_SPECIAL = str.maketrans({c: f"&#{ord(c)};" for c in "\\`*_{}[]<>#|&~"} | {"\n": " ", "\r": " "})


def md(text: object) -> str:
    """Text as inert Markdown inside a line or table cell: every character Markdown or HTML gives a meaning to there
    becomes an HTML entity, line breaks become spaces (callers never start a line with it)."""
    return str(text).translate(_MARKDOWN_SPECIAL)


def code_block(text: str, language: str = "") -> list[str]:
    """A fenced code block whose fence is longer than any run of backticks inside `text` (it cannot be closed
    early)."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return [f"{fence}{language}", text.rstrip("\n"), fence]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(md(h) for h in header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(md(c) for c in r) + " |" for r in rows]


def render_markdown(status: Status) -> str:
    """The status as Markdown (a CI job summary, `$GITHUB_STEP_SUMMARY`). Database text is escaped, never
    interpreted."""
    verdict = "clean" if status.clean else "**not clean**"
    out = [f"## pgshift status: {verdict}", "", f"{md(status.kind)} migrations in {md(status.directory)}", ""]
    out += markdown_table(*overview_rows(status))
    notes = _notes(status)
    if notes:
        out += ["", *(f"- {md(n)}" for n in notes)]
    envs = [e.environment for e in status.environments]
    grid = [
        [m.version, m.name if m.local else f"{m.name} (not in folder)", *(m.states.get(e, "-") for e in envs)]
        for m in status.migrations.data
        if not all(m.states.get(e) == "applied" for e in envs)
    ]
    if grid:
        out += ["", "### Migrations not applied everywhere", "", *markdown_table(["version", "name", *envs], grid)]
    return "\n".join(out) + "\n"
