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
from pgshift.tools.approval import ApprovalRequest, ApprovalStore, statement_count
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
# How the drift check got its expected schema (tools/watch/drift.py's DriftPath), cheapest first.
DriftPath = Literal["fingerprint", "kept-expected", "replay"]
DRIFT_PATHS: tuple[DriftPath, ...] = ("fingerprint", "kept-expected", "replay")
# Every outcome the ledger records (tools/ledger.py: `LedgerRow.outcome` and its CHECK constraint).
Outcome = Literal["applied", "failed", "rolled_back"]
OUTCOME_WORDS: dict[str, str] = {"applied": "applied", "failed": "failed", "rolled_back": "rolled back"}
DRIFT_NAMES_SHOWN = 5  # the drifted objects a status names (then a count of the rest)
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
    kept_bytes: int = Field(0, description="Data destroyed by migrations and kept for rollback, in bytes")
    kept: str | None = Field(None, description="What undo keeps, in words: 'kept: 3 tables, 12 MB, until 2027-01-07'")


class SnapshotProvider(Protocol):
    """`async def snapshots(db, environment) -> SnapshotCell`."""

    def __call__(self, db: Databases, environment: str, /) -> Awaitable[SnapshotCell]: ...


@dataclass(frozen=True)
class Providers:
    """The optional columns' engines; None leaves the column out."""

    drift: DriftProvider | None = None
    snapshots: SnapshotProvider | None = None


class DriftCell(Frozen):
    state: DriftState = Field(description="none: matches its migrations; drift: differs; unknown: could not be told")
    objects: int = Field(0, description="Objects that differ from what the applied migrations explain")
    history_problems: int = Field(0, description="Edited, out-of-order or unknown migrations in the history")
    from_fast_path: bool = False
    drift_path: DriftPath | None = Field(
        None,
        description="fingerprint: nothing changed since the last full check here; kept-expected: compared with the "
        "expected schema kept for this history (no replay); replay: the migrations were replayed (then kept)",
    )
    detail: str | None = Field(None, description="With state unknown: why drift could not be determined")
    names: Untrusted[list[str]] | None = Field(
        None, description=f"Fenced: the first {DRIFT_NAMES_SHOWN} drifted objects ('table public.t added by hand')"
    )


class LastApply(Frozen):
    """The newest row of `pgshift.migrations`: an apply, a failed attempt or a rollback."""

    version: str
    name: str
    outcome: Outcome = Field(description="applied, failed, or rolled_back (a rollback reverted this migration)")
    applied_by: str
    client: str
    finished_at: datetime
    duration_ms: int
    error: str | None = Field(None, description="failed: PostgreSQL's error; rolled_back: the rollback's note")


class ApprovalSummary(Frozen):
    """A pending approval request, without its statements (`pgshift approve ID` shows them)."""

    id: str
    action: str
    environment: str
    statements: int = Field(description="Statements that will run, counted by PostgreSQL's parser")
    project: str | None = Field(None, description="The folder the write was asked from")
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
    if isinstance(report, DriftCell):
        return report
    state: DriftState = "none" if report.state == "none" else "drift" if report.state == "drift" else "unknown"
    found = report.objects if isinstance(report.objects, list | tuple) else []
    names = [str(o) for o in found[:DRIFT_NAMES_SHOWN]]
    return DriftCell(
        state=state,
        objects=count_of(report.objects),
        history_problems=count_of(report.history_problems),
        from_fast_path=bool(report.from_fast_path),
        drift_path=_path_of(report),
        detail=report.detail or None,
        names=fence(names) if names else None,
    )


def _path_of(report: object) -> DriftPath | None:
    """The drift path a provider reports, when it reports one (an older or test provider may not)."""
    path = getattr(report, "drift_path", None)
    return next((p for p in DRIFT_PATHS if p == path), None)


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
    """What keeps an environment from clean, in words. Drift that could not be determined is a problem: unknown is
    never clean (a gate that cannot see must not pass)."""
    if not summary.reachable:
        return ["unreachable"]
    counts = [
        ("pending", summary.pending, not allow_pending),
        ("failed", summary.failed, True),
        ("edited after apply", summary.edited, True),
        ("missing locally", summary.missing_locally, True),
    ]
    found = [f"{n} {what}" for what, n, counted in counts if n and counted]
    if drift is not None:
        found += drift_problems(drift)
    return found


def drift_problems(drift: DriftCell) -> list[str]:
    if drift.state == "unknown":
        return [f"drift unknown: {drift.detail or 'the drift check gave no reason'}"]
    if drift.state != "drift":
        return []
    parts = [f"{drift.objects} object(s)"] if drift.objects else []
    parts += [f"{drift.history_problems} history problem(s)"] if drift.history_problems else []
    return [f"drift ({', '.join(parts) or 'see pgshift drift'})"]


def approval_summary(request: ApprovalRequest) -> ApprovalSummary:
    return ApprovalSummary(
        id=request.id,
        action=request.action,
        environment=request.environment,
        statements=statement_count(request),
        project=request.project,
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
    return Providers(drift=named_drift, snapshots=recorded_snapshots)


CHANGE_WORDS = {"added": "added by hand", "removed": "dropped by hand", "changed": "changed by hand"}


async def named_drift(db: Databases, environment: str, directory: str | None = None) -> DriftCell:
    """The drift verdict with the first few drifted objects named (the fast path when nothing changed). A check
    that cannot finish is `unknown` with its reason, never `none`."""
    from pgshift.tools.watch.drift import detect_drift  # drift imports the engines status reads: imported when used

    try:
        r = await detect_drift(db, environment, directory, plans=False)  # the verdict: no repair plans
    except PgshiftError as exc:
        return DriftCell(state="unknown", detail=db.scrub(str(exc)))
    if r.state == "unknown":
        return DriftCell(
            state="unknown",
            from_fast_path=r.from_fast_path,
            drift_path=r.drift_path,
            detail=db.scrub(r.error or "the drift check gave no reason"),
        )
    names = [f"{d.kind} {d.name} {CHANGE_WORDS.get(d.change, d.change)}" for d in r.differences.data]
    names += [f"migration {p.version} {p.problem.replace('_', ' ')}" for p in r.history_problems.data]
    return DriftCell(
        state=r.state,
        objects=r.summary.total,
        history_problems=r.history_problem_count,
        from_fast_path=r.from_fast_path,
        drift_path=r.drift_path,
        names=fence(names[:DRIFT_NAMES_SHOWN]) if names else None,
    )


async def recorded_snapshots(db: Databases, environment: str) -> SnapshotCell:
    """The snapshots undo keeps in the environment's `pgshift.snapshots` (none when the table does not exist)."""
    from pgshift.tools.undo.snapshots import list_snapshots

    rows = (await list_snapshots(db, environment)).snapshots.data
    newest = max(rows, key=lambda r: r.taken_at, default=None)
    if newest is None:
        return SnapshotCell()
    kept = await _kept(db, environment)
    return SnapshotCell(
        count=len(rows),
        latest_at=newest.taken_at,
        latest_label=newest.label or newest.precedes_version,
        kept_bytes=kept.bytes if kept is not None else 0,
        kept=kept.text if kept is not None and kept.tables else None,
    )


async def _kept(db: Databases, environment: str) -> Any:
    """undo's kept-data summary (tools/undo/retention.py), or None when it cannot be read (the count stands)."""
    from pgshift.tools.undo.snapshots import kept_data_summary

    try:
        return await kept_data_summary(db, environment)
    except PROVIDER_ERRORS:
        return None


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


def ago(when: datetime, now: datetime) -> str:
    """A relative time in words: "just now", "5 min ago", "3 h ago", "2 days ago" ("in ..." when ahead)."""
    seconds = int((now - when).total_seconds())
    later, seconds = seconds < 0, abs(seconds)
    if seconds < 45:
        return "just now"
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size or unit == "min":
            n = max(1, round(seconds / size))
            words = f"{n} {unit}{'s' if unit == 'day' and n != 1 else ''}"
            return f"in {words}" if later else f"{words} ago"
    raise AssertionError("unreachable")


def drifted_names(cell: DriftCell) -> str:
    """The first drifted objects, then how many more ("table public.t added by hand, ... and 3 more")."""
    shown = cell.names.data if cell.names is not None else []
    rest = cell.objects + cell.history_problems - len(shown)
    return ", ".join(shown) + (f" and {rest} more" if rest > 0 and shown else "")


def _drift_text(cell: DriftCell | None) -> str:
    if cell is None:
        return "-"
    path = f" ({cell.drift_path})" if cell.drift_path is not None else ""
    if cell.state == "drift":
        return (
            f"drift: {cell.objects} object(s)"
            + (f", {cell.history_problems} history" if cell.history_problems else "")
            + path
        )
    return ("unknown" if cell.state == "unknown" else "none") + path


def last_apply_words(a: LastApply, now: datetime) -> str:
    """ "rolled back 20240101_init 5 min ago by alice (120 ms)" """
    when = ago(a.finished_at, now)
    return f"{OUTCOME_WORDS[a.outcome]} {a.version}_{a.name} {when} by {a.applied_by} ({a.duration_ms} ms)"


def _last_apply_text(e: EnvironmentStatus, now: datetime) -> str:
    return "-" if e.last_apply is None else last_apply_words(e.last_apply.data, now)


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
            _last_apply_text(e, status.checked_at),
            _snapshots_text(e.snapshots),
            str(e.pending_approvals),
        ]
        for e in status.environments
    ]
    return header, rows


def _notes(status: Status) -> list[str]:
    notes = [f"{e.environment}: {e.error}" for e in status.environments if e.error]
    for e in status.environments:
        if e.drift is not None and e.drift.state == "unknown":
            notes.append(
                f"{e.environment}: drift unknown: {e.drift.detail or 'no reason given'}. The status is not clean "
                f"until drift can be determined. Next step: run `pgshift drift --target {e.environment} --refresh` "
                "for the whole error, fix its cause (a migration the replay cannot run, a missing permission), "
                "and check again"
            )
        elif e.drift is not None and e.drift.state == "drift" and e.drift.names is not None:
            notes.append(f"{e.environment}: drifted: {drifted_names(e.drift)} (pgshift drift --target {e.environment})")
        if e.last_apply is not None and e.last_apply.data.error:
            what = "rolled back" if e.last_apply.data.outcome == "rolled_back" else "last apply failed"
            notes.append(f"{e.environment}: {what}: {e.last_apply.data.error}")
    notes += [f"{e.environment}: {e.snapshots.error}" for e in status.environments if e.snapshots and e.snapshots.error]
    notes += [
        f"{e.environment}: {e.snapshots.kept} (pgshift snapshots --target {e.environment})"
        for e in status.environments
        if e.snapshots and e.snapshots.kept
    ]
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
