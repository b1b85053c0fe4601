"""detect_drift: does a live database still match its migrations folder, and if not, how to repair it?

Expected schema: the folder's migrations that the target's history says are applied (`tools.deploy`'s states,
each ecosystem's own table deciding), replayed in folder order into a throw-away database on a scratch server
(`tools.scratch`: the environment's shadow_url, else a local install of the target's major version, else the
embedded PostgreSQL 18, what it cannot reproduce said), through the migration runner that `deploy` uses; a
Supabase target gets a Supabase-shaped database (`tools/sample/supabase_shape.sql`) first. The replay runs as the
scratch database's sandboxed owner (`tools.scratch.sandboxed_database`: created without superuser, server files
or programs, never promoted). Drift: the live schema against that expected schema with the
compare diff (`tools.diff`), each object added, removed or changed by hand with its field-level difference,
plus the history problems (edited after apply, failed, applied out of order, in the database but not in the
folder).

Repair is data: `adopt` is the plan that turns the expected schema into the live one (the SQL of a new
migration file, written by `adopt_drift` only when asked), `revert` the plan that turns the live schema back
into the expected one, which the assistant applies through `apply_migration` and its approval path.

Read-only on the target. The fast path (`tools.watch.fingerprint`): a catalog fingerprint plus the history,
read in the same snapshot; when both match the last full result cached for this target and folder, that
result is the answer, without introspecting or replaying (`drift_path: "fingerprint"`). Otherwise the expected
schema kept for this history (`tools.watch.expected_store`: keyed by the applied migrations' checksum chain and
what the replay takes from the target; in the state directory under a keyed MAC, and in the project's
`.pgshift/expected/` for a fresh CI runner) stands in for the replay (`"kept-expected"`); only a history not
seen before is replayed (`"replay"`), once, and then kept.

Since the last apply: undo records a snapshot (fingerprint + DDL) *before* each migration it applies, none after.
So the newest snapshot S, taken before migration M, is the schema before M; the schema the last apply left is S
with M replayed. `since_last_apply` always compares fingerprints (live against S: cheap, read from the cache on
the fast path) and, when asked, builds S + M in a shadow (S's DDL loaded by `tools.script_loader` as undo's
loader does, M replayed from the folder as the sandboxed role) and diffs the live schema against it. A snapshot taken by
`snapshot_schema` (before no migration) is its own reference.

`answer_page` cuts a report into MCP pages with compare's paging functions; the CLI prints the whole report.
"""

from __future__ import annotations

import contextlib
import gc
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from pgshift.tools import ledger
from pgshift.tools.compare import (
    SCRIPT_BYTES,
    BriefDifference,
    CompareSummary,
    Difference,
    KindCounts,
    NotCompared,
    PageInfo,
    PageRequest,
    PlanSummary,
    build_result,
    cut_page,
    not_compared,
    page_differences,
    plan_summary,
)
from pgshift.tools.databases import Databases
from pgshift.tools.deploy import environment_prisma_schema, migration_state, unknown_to_folder
from pgshift.tools.diff import diff_schemas, with_platform_state_of
from pgshift.tools.errors import ConfigError, DatabaseError, PgshiftError
from pgshift.tools.files import write_new
from pgshift.tools.introspect import introspect
from pgshift.tools.introspect.platform import platform_role_setting, without_internal_roles
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.migrations.folder import Migration, MigrationFolder, checked_path, read_migrations
from pgshift.tools.migrations.parse import SqlStatement
from pgshift.tools.migrations.runner import Timeouts, execute_migration, prepare_for, refuse_forbidden
from pgshift.tools.migrations.steps import split_statements
from pgshift.tools.model import Schema
from pgshift.tools.options import ALLOW_DATA_LOSS, SINCE_LAST_APPLY
from pgshift.tools.plan.statement import ClientPlan, Plan, Statement
from pgshift.tools.scratch import Sandboxed, create_extensions, read_target, sandboxed_database
from pgshift.tools.script_loader import load_pieces, pieces, roles_acted_for
from pgshift.tools.sql import quote_ident
from pgshift.tools.undo.store import SnapshotRow, list_rows, read_snapshot
from pgshift.tools.untrusted import Untrusted, fence, fence_text
from pgshift.tools.watch.expected_store import ExpectedStore, chain_key, project_of
from pgshift.tools.watch.fingerprint import CacheEntry, DriftCache, cache_key, catalog_fingerprint, digest

SUPABASE_SHAPE = Path(__file__).resolve().parents[1] / "sample" / "supabase_shape.sql"
SUPABASE_PLATFORM = Path(__file__).resolve().parents[1] / "sample" / "supabase_platform.sql"
SHADOW_CLIENT = "pgshift drift (shadow)"
_NAME = re.compile(r"[A-Za-z0-9_]{1,100}")  # always fullmatch: `$` would let "evil\n" through

Problem = Literal["edited", "failed", "out_of_order", "missing_locally"]
State = Literal["none", "drift", "unknown"]
# How a check got its expected schema: the fingerprint cache (nothing changed), the schema kept for this history,
# or a replay of the migrations.
DriftPath = Literal["fingerprint", "kept-expected", "replay"]
DRIFT_PATH_HELP = (
    "fingerprint: unchanged since the last check (reused); kept-expected: compared with the kept expected schema; "
    "replay: migrations replayed (then kept)"
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class HistoryProblem(_Frozen):
    problem: Problem = Field(
        description="edited: the file changed after it was applied; failed: its last attempt failed; out_of_order: "
        "pending but older than an applied one; missing_locally: applied but not in the folder"
    )
    version: str
    name: str
    detail: str


class DriftFindings(_Frozen):
    """One full drift check, unfenced: what the cache keeps (each answer fences it anew)."""

    state: State
    kind: Literal["prisma", "supabase"]
    directory: str
    replayed: list[str] = Field(description="Labels of the migrations replayed into the expected schema, in order")
    pending: list[str] = Field(default_factory=list, description="Migrations the target has not applied (not expected)")
    loose_scripts: list[str] = Field(
        default_factory=list, description="Scripts applied with apply_migration(sql=...) outside the folder"
    )
    differences: list[Difference] = Field(default_factory=list)
    uncompared: list[NotCompared] = Field(default_factory=list)
    history_problems: list[HistoryProblem] = Field(default_factory=list)
    adopt: Plan | None = None
    revert: Plan | None = None
    error: str | None = Field(None, description="Why the state is unknown (the replay failed)")
    checked_at: str
    timings_ms: dict[str, float] = Field(default_factory=dict)
    live_fingerprint: str = Field("", description="The live schema's fingerprint (the one snapshots record)")
    planned: bool = Field(True, description="False: adopt and revert were not planned (asked without plans)")


SinceState = Literal["no_snapshot", "unchanged", "changed", "not_compared", "unknown"]


class SnapshotRef(_Frozen):
    id: int
    taken_at: str
    precedes: str | None = Field(None, description="version_name of the migration it was taken before")


class SinceLastApply(_Frozen):
    """The live schema against the one the last apply left, from the snapshot undo records before each apply."""

    state: SinceState = Field(
        description="unchanged / changed: the live schema against `compared`; not_compared: only the cheap check "
        "ran (ask since_last_apply=true); no_snapshot: nothing recorded; unknown: the reference could not be built"
    )
    compared: str = Field(description="Exactly what the live schema was compared with")
    snapshot: Untrusted[SnapshotRef] | None = None
    live_fingerprint: str | None = None
    snapshot_fingerprint: str | None = None
    matches_snapshot: bool | None = Field(
        None, description="Cheap (no shadow): the live fingerprint equals the snapshot's own"
    )
    reference_fingerprint: str | None = Field(None, description="The fingerprint of the schema the last apply left")
    summary: CompareSummary | None = None
    differences: Untrusted[list[Difference | BriefDifference]] | None = Field(
        None, description="Fenced: the first page of what changed since (added: on the live database only)"
    )
    note: str | None = None


class DriftReport(_Frozen):
    # Field order is answer order: the verdict and counts first, the long lists last.
    environment: str
    state: State = Field(description="none: matches its migrations; drift: objects or history differ; unknown: error")
    from_fast_path: bool = Field(description="True when the catalogs and history were unchanged since the last check")
    drift_path: DriftPath = Field("replay", description=DRIFT_PATH_HELP)
    expected_note: str | None = Field(
        None, description="Where the expected schema came from or was kept, and any kept copy refused (and why)"
    )
    checked_at: str = Field(description="When the full check this answer comes from ran (UTC)")
    summary: CompareSummary = Field(description="Objects added / removed / changed on the live database by hand")
    history_problem_count: int
    directory: str
    kind: Literal["prisma", "supabase"]
    replayed: int = Field(description="Migrations replayed into the expected schema (what the history says applied)")
    pending: list[str] = Field(default_factory=list, description="Folder migrations the target has not applied")
    next_steps: list[str] = Field(default_factory=list, description="How to repair the drift")
    error: str | None = None
    uncompared_note: str | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
    since_last_apply: SinceLastApply | None = Field(
        None, description="The live schema against the schema its last apply left (from undo's snapshots)"
    )
    differences: Untrusted[list[Difference]] = Field(
        description="Fenced: each object the live database has that the migrations do not explain. added: on the live "
        "database only; removed: in the migrations only; changed: fields with before (expected) and after (live)"
    )
    history_problems: Untrusted[list[HistoryProblem]] = Field(description="Fenced: names come from the history")
    loose_scripts: Untrusted[list[str]] | None = None
    uncompared: Untrusted[list[NotCompared]] | None = Field(
        None, description="Fenced: objects of kinds pgshift does not compare that differ (in_source: live only)"
    )
    adopt: Untrusted[ClientPlan] | None = Field(
        None,
        description="Fenced: the SQL of a migration that makes the files explain the live database "
        "(adopt_drift writes it as a new migration file)",
    )
    revert: Untrusted[ClientPlan] | None = Field(
        None,
        description="Fenced: the plan that puts the live database back to what the migrations say, with hazards; "
        "apply it with apply_migration (a person approves it on a protected environment)",
    )


class DriftSummary(_Frozen):
    """For the status dashboard: the verdict in one line."""

    state: State
    objects: int = 0
    history_problems: int = 0
    from_fast_path: bool = False
    drift_path: DriftPath | None = Field(None, description=DRIFT_PATH_HELP)
    detail: str = ""


class AdoptResult(_Frozen):
    environment: str
    status: Literal["written", "nothing_to_adopt"]
    path: str | None = None
    statements: int = 0
    hazards: list[str] = Field(default_factory=list, description="Hazards of the adopted statements, one line each")
    next_steps: list[str] = Field(default_factory=list)
    message: str


# ---------------------------------------------------------------------------------------------- pure core


def applied_migrations(history: ledger.History, folder: MigrationFolder) -> list[Migration]:
    """The folder's migrations the target's history says are applied (edited ones too), in folder order."""
    return [m for m in folder.migrations if migration_state(history, m) in ("applied", "edited")]


def history_problems(history: ledger.History, folder: MigrationFolder) -> list[HistoryProblem]:
    """Edited, failed, out-of-order and missing-locally migrations (loose scripts aside: see `loose_scripts`)."""
    problems: list[HistoryProblem] = []
    states = [(m, migration_state(history, m)) for m in folder.migrations]
    last_applied = max((i for i, (_, s) in enumerate(states) if s in ("applied", "edited")), default=-1)
    for i, (m, state) in enumerate(states):
        if state == "edited":
            detail = "the file changed after it was applied (checksum differs); the expected schema uses the file"
            problems.append(HistoryProblem(problem="edited", version=m.version, name=m.name, detail=detail))
        elif state == "failed":
            detail = "its last attempt failed: what ran of it may be in the database; it is not replayed"
            problems.append(HistoryProblem(problem="failed", version=m.version, name=m.name, detail=detail))
        elif state == "pending" and i < last_applied:
            detail = "pending, but older than migrations already applied: deploy would apply it out of order"
            problems.append(HistoryProblem(problem="out_of_order", version=m.version, name=m.name, detail=detail))
    loose = set(loose_scripts(history, folder))
    for version, name in unknown_to_folder(history, folder):
        if f"{version}_{name}" not in loose:
            detail = "applied on the target, but not in the folder: its changes are not in the expected schema"
            problems.append(HistoryProblem(problem="missing_locally", version=version, name=name, detail=detail))
    return problems


def loose_scripts(history: ledger.History, folder: MigrationFolder) -> list[str]:
    """`version_name` of scripts pgshift applied from inline SQL (our ledger says `sql`), not from the folder."""
    inline = {r.version for r in history.ledger if r.source == "sql" and r.outcome == "applied"}
    return [f"{v}_{n}" for v, n in unknown_to_folder(history, folder) if v in inline]


def folder_identity(folder: MigrationFolder) -> str:
    """What the cache key needs of the folder: its place, layout and every migration's label and checksum."""
    return digest([folder.directory, folder.kind, [(m.label, m.checksum) for m in folder.migrations]])


def drift_findings(
    live: Schema,
    expected: Schema,
    folder: MigrationFolder,
    history: ledger.History,
    replayed: Sequence[Migration],
    timings: dict[str, float],
    role: str | None = None,
    *,
    plans: bool = True,
) -> DriftFindings:
    """Diff the live schema against the expected one (source = live: `added` means added by hand) and plan both
    repairs (pure).

    The expected schema is first read as the live database would hold it: the replay's own role (`pgshift_expected_
    <hex>`) as `role`, the target's connecting role (left out without one), and the platform's state
    (`tools.diff.with_platform_state_of`: Supabase's extensions, grants and default privileges) as the live database
    has it. So the drift list, the adopt script and the revert plan hold the same objects: the app's only."""
    from pgshift.tools.plan.planner import (
        plan_migration,  # on first use: the planner (and sqlglot) cost ~70 ms to import
    )

    expected = expected_as_live(live, expected, role)
    diff = diff_schemas(live, expected)
    compared = build_result(diff, "live", "expected", None, [], {}, uncompared=not_compared(live, expected))
    problems = history_problems(history, folder)
    adopt = plan_migration(live, expected) if plans and not diff.in_sync else None
    revert = plan_migration(expected, live) if plans and not diff.in_sync else None
    state: State = "drift" if compared.differences.data or problems else "none"
    return DriftFindings(
        state=state,
        kind=folder.kind,
        directory=folder.directory,
        replayed=[m.label for m in replayed],
        pending=[m.label for m in folder.migrations if migration_state(history, m) == "pending"],
        loose_scripts=loose_scripts(history, folder),
        differences=list(compared.differences.data),
        uncompared=[o for o in (compared.uncompared.data if compared.uncompared else []) if _differs(o)],
        history_problems=problems,
        adopt=adopt,
        revert=revert,
        checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
        timings_ms={k: round(v * 1000, 1) for k, v in timings.items()},
        live_fingerprint=schema_fingerprint(live),
        planned=plans or diff.in_sync,
    )


def expected_as_live(live: Schema, expected: Schema, role: str | None) -> Schema:
    """A replayed schema as the live database would hold it (see `drift_findings`): internal role names mapped to
    `role` (or left out), the platform's state taken from `live`."""
    return with_platform_state_of(live, without_internal_roles(expected, role))


def schema_fingerprint(schema: Schema) -> str:
    """The fingerprint snapshots and approvals record (`tools.migrations.runner.target_fingerprint`), of a schema
    introspected the same way (whole, with dependencies)."""
    return schema.fingerprint()


def _differs(o: NotCompared) -> bool:
    return o.differs or not (o.in_source and o.in_target)


def next_steps(f: DriftFindings, environment: str) -> list[str]:
    """What the assistant can do about it, in our words."""
    steps: list[str] = []
    if f.state == "unknown":
        steps.append(
            f"drift on '{environment}' is unknown, not clean: the expected schema could not be built (see error). "
            "Fix what the error names (a migration the replay cannot run, a missing extension on the scratch "
            "server), then check again; until then no gate should treat the environment as clean"
        )
    if f.differences:
        steps.append(
            f"adopt: adopt_drift(environment='{environment}', name=...) (CLI: pgshift drift --target {environment} "
            "--adopt NAME) writes `adopt` as a new migration file; then record it as applied on the target without "
            "running it ("
            + (
                "`prisma migrate resolve --applied <folder>`, and update schema.prisma with `prisma db pull`"
                if f.kind == "prisma"
                else "`supabase migration repair --status applied <version>`"
            )
            + ")"
        )
        steps.append(
            f"revert: apply_migration(environment='{environment}', name='revert_drift', sql=<revert script>) runs "
            "`revert` through the normal approval path (a person approves it on a protected environment)"
            + (
                f"; the script is withheld while it deletes data: ask again with {ALLOW_DATA_LOSS}"
                if _blocked(f)
                else ""
            )
            + (
                ""
                if f.planned
                else f" (this check left both plans out: `pgshift drift --target {environment} --json` or "
                "detect_drift plans them)"
            )
        )
    for p in f.history_problems:  # a version may come from a history table: fenced
        version = fence_text(p.version)
        if p.problem == "edited":
            steps.append(f"restore the applied script of {version} and put the change in a new migration")
        elif p.problem == "failed":
            steps.append(f"fix and re-apply {version}, or resolve it by hand (its partial changes may remain)")
        elif p.problem == "missing_locally":
            steps.append(f"get migration {version} into the folder (pull it from the branch that applied it)")
    if any(p.problem == "out_of_order" for p in f.history_problems):
        steps.append("check the out-of-order migrations still make sense after the newer ones, then deploy")
    if f.pending:
        steps.append(f"{len(f.pending)} folder migration(s) not applied yet: deploy applies them (not drift)")
    return steps


def _blocked(f: DriftFindings) -> bool:
    return f.revert is not None and f.revert.blocked_by_data_loss


def report(
    f: DriftFindings, environment: str, *, fast: bool, allow_data_loss: bool = False, timings: dict[str, float]
) -> DriftReport:
    """The answer for `f`, every database text fenced anew; `timings` (seconds) of this call join the full
    check's own (a fast answer has only this call's)."""
    counts = {"added": 0, "removed": 0, "changed": 0}
    by_kind: dict[str, dict[str, int]] = {}
    for d in f.differences:
        counts[d.change] += 1
        by_kind.setdefault(d.kind, {"added": 0, "removed": 0, "changed": 0})[d.change] += 1
    revert = f.revert.model_copy(update={"allow_data_loss": allow_data_loss}) if f.revert is not None else None
    timings_ms = {**({} if fast else f.timings_ms), **{k: round(v * 1000, 1) for k, v in timings.items()}}
    with_revert = f.model_copy(update={"revert": revert})
    return DriftReport(
        environment=environment,
        state=f.state,
        from_fast_path=fast,
        drift_path="fingerprint" if fast else "replay",
        checked_at=f.checked_at,
        summary=CompareSummary(
            **counts,
            total=len(f.differences),
            by_kind={k: KindCounts(**v) for k, v in by_kind.items()},
        ),
        history_problem_count=len(f.history_problems),
        directory=f.directory,
        kind=f.kind,
        replayed=len(f.replayed),
        pending=f.pending,
        next_steps=next_steps(with_revert, environment),
        error=f.error,
        uncompared_note=(
            f"{len(f.uncompared)} object(s) of kinds pgshift does not compare ("
            + ", ".join(sorted({o.kind for o in f.uncompared}))
            + ") are on one side only or defined differently: see uncompared"
            if f.uncompared
            else None
        ),
        timings_ms=timings_ms,
        differences=fence(f.differences),
        history_problems=fence(f.history_problems),
        loose_scripts=fence(f.loose_scripts) if f.loose_scripts else None,
        uncompared=fence(f.uncompared) if f.uncompared else None,
        adopt=fence(ClientPlan.of(f.adopt.model_copy(update={"allow_data_loss": True}))) if f.adopt else None,
        revert=fence(ClientPlan.of(revert)) if revert is not None else None,
    )


def adoption_path(folder: MigrationFolder, name: str, now: datetime) -> tuple[Path, str]:
    """Where a new migration goes in the folder's own layout, and its version (UTC YYYYMMDDHHMMSS, later than every
    version in the folder)."""
    if not _NAME.fullmatch(name):
        raise ConfigError(f"migration name {name!r} must be 1-100 letters, digits or underscores: nothing was written")
    version = now.strftime("%Y%m%d%H%M%S")
    latest = max((m.version for m in folder.migrations if m.version.isdigit()), default="0", key=int)
    if int(latest) >= int(version):
        version = str(int(latest) + 1)
    base = Path(folder.directory)
    if folder.kind == "prisma":
        return base / f"{version}_{name}" / "migration.sql", version
    return base / f"{version}_{name}.sql", version


def adoption_script(plan: Plan, environment: str, now: datetime) -> str:
    head = (
        f"-- Adopted from drift on '{environment}' by pgshift at {now.isoformat(timespec='seconds')}:\n"
        "-- the changes made there outside the migrations, so the files explain the database again.\n\n"
    )
    return head + plan.script


def _ref(row: SnapshotRow) -> SnapshotRef:
    precedes = f"{row.precedes_version}_{row.precedes_name}" if row.precedes_version is not None else None
    return SnapshotRef(id=row.id, taken_at=row.taken_at.isoformat(timespec="seconds"), precedes=precedes)


def since_cheap(row: SnapshotRow | None, live_fingerprint: str) -> SinceLastApply:
    """The verdict from fingerprints alone (pure). A snapshot taken by snapshot_schema is the reference itself; one
    taken before a migration M is the schema *before* M, so the schema the last apply left is that snapshot with M
    replayed, which only `since_last_apply=true` builds."""
    if row is None:
        return SinceLastApply(
            state="no_snapshot",
            compared="nothing: the target has no snapshot in pgshift.snapshots (apply_migration and deploy record one "
            "before each migration; snapshot_schema records one on request)",
            live_fingerprint=live_fingerprint,
        )
    if row.integrity != "ok":  # its fingerprint is not trusted either (tools.undo.store)
        return SinceLastApply(
            state="unknown",
            compared=f"nothing: snapshot {row.id} fails its integrity check (changed outside pgshift, written with "
            "another machine's key, or taken by an older pgshift without a MAC); take a new snapshot",
            live_fingerprint=live_fingerprint,
        )
    same = row.fingerprint == live_fingerprint
    base = {
        "snapshot": fence(_ref(row)),
        "live_fingerprint": live_fingerprint,
        "snapshot_fingerprint": row.fingerprint,
        "matches_snapshot": same,
    }
    if row.precedes_version is None:
        return SinceLastApply(
            state="unchanged" if same else "changed",
            compared=f"snapshot {row.id} itself (recorded by snapshot_schema, not before a migration)",
            reference_fingerprint=row.fingerprint,
            **base,
        )
    note = (
        "the live schema equals the schema before that migration: it was rolled back, or changed nothing compared"
        if same
        else "the live schema differs from the snapshot, as expected after the migration it precedes; whether "
        "anything changed since that migration ran needs the snapshot with the migration replayed on it: ask "
        f"again with {SINCE_LAST_APPLY} (a throw-away local database, a few seconds)"
    )
    return SinceLastApply(
        state="not_compared",
        compared=f"the schema the last apply left = snapshot {row.id} (taken just before that migration) with the "
        "migration it precedes replayed from the folder",
        note=note,
        **base,
    )


def since_compared(
    cheap: SinceLastApply, live: Schema, reference: Schema, load_errors: Sequence[str], role: str | None = None
) -> SinceLastApply:
    """The live schema against the reference built in a shadow (pure): the verdict and the first page of
    differences (source = live: `added` means on the live database only)."""
    reference_fp = schema_fingerprint(reference)
    diff = diff_schemas(live, expected_as_live(live, reference, role))
    differences = list(build_result(diff, "live", "last apply", None, [], {}).differences.data)
    page, _, _ = page_differences(differences, 0, len(differences) or 1, detail=False)
    counts = {"added": 0, "removed": 0, "changed": 0}
    by_kind: dict[str, dict[str, int]] = {}
    for d in differences:
        counts[d.change] += 1
        by_kind.setdefault(d.kind, {"added": 0, "removed": 0, "changed": 0})[d.change] += 1
    notes = [f"the first {len(page)} of {len(differences)} difference(s)" if len(page) < len(differences) else ""]
    if load_errors:
        notes.append(f"loading the snapshot printed {len(load_errors)} error(s): {'; '.join(load_errors[:3])}")
    return cheap.model_copy(
        update={
            "state": "unchanged" if not differences else "changed",
            "reference_fingerprint": reference_fp,
            "summary": CompareSummary(
                **counts, total=len(differences), by_kind={k: KindCounts(**v) for k, v in by_kind.items()}
            ),
            "differences": fence(page),
            "note": "; ".join(n for n in notes if n) or None,
        }
    )


# The MCP answer: the verdict and the repairs in figures first, then one page of each list (differences, the
# revert plan's statements, not-compared objects), cut by compare's paging functions. The CLI prints DriftReport.

PENDING_SHOWN = 50


class RepairSummary(_Frozen):
    adopt: PlanSummary | None = Field(None, description="The adopt migration in figures")
    adopt_file: str | None = Field(
        None, description="Where adopt_drift (pgshift drift --adopt NAME) writes it, NAME being yours"
    )
    revert: PlanSummary | None = Field(None, description="The revert plan in figures")


class DriftAnswer(_Frozen):
    """detect_drift as an MCP client receives it: one page, the verdict first."""

    environment: str
    state: State = Field(description="none: matches its migrations; drift: objects or history differ; unknown: error")
    from_fast_path: bool = Field(description="Catalogs and history unchanged since the last check")
    drift_path: DriftPath = Field("replay", description=DRIFT_PATH_HELP)
    expected_note: str | None = None
    checked_at: str
    summary: CompareSummary = Field(description="Objects added / removed / changed by hand")
    history_problem_count: int
    history_problems: Untrusted[list[HistoryProblem]]
    since_last_apply: SinceLastApply | None = None
    repair: RepairSummary | None = Field(None, description="Both repairs in figures")
    directory: str
    kind: Literal["prisma", "supabase"]
    replayed: int = Field(description="Migrations replayed into the expected schema")
    pending_count: int = 0
    pending: list[str] = Field(default_factory=list, description=f"The first {PENDING_SHOWN} pending migrations")
    next_steps: list[str] = Field(default_factory=list, description="How to repair the drift")
    next_step: str
    next_cursor: str | None = Field(None, description="Pass as cursor (same arguments) for the next page")
    page: PageInfo
    detail: bool
    error: str | None = None
    uncompared_note: str | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
    differences: Untrusted[list[Difference | BriefDifference]] = Field(
        description="This page. added: live only; removed: migrations only; changed: before (expected), after (live)"
    )
    revert_statements: Untrusted[list[Statement]] | None = Field(None, description="This page of revert's statements")
    revert_script: Untrusted[str] | None = Field(None, description="First page, when small and not blocked")
    adopt_script: Untrusted[str] | None = Field(None, description="First page, when small")
    loose_scripts: Untrusted[list[str]] | None = None
    uncompared: Untrusted[list[NotCompared]] | None = None


def _adopt_file(r: DriftReport) -> str:
    if r.kind == "prisma":
        return f"{r.directory}/<YYYYMMDDHHMMSS>_<NAME>/migration.sql"
    return f"{r.directory}/<YYYYMMDDHHMMSS>_<NAME>.sql"


def _withheld(what: str, size: int, command: str) -> str:
    return f"{what} not inlined ({size} bytes): {command} writes or prints it whole"


def _repair(r: DriftReport, revert_inline: bool, adopt_inline: bool) -> RepairSummary | None:
    adopt = r.adopt.data if r.adopt is not None else None
    revert = r.revert.data if r.revert is not None else None
    if (adopt is None or adopt.is_empty) and (revert is None or revert.is_empty):
        return None
    cli = f"pgshift drift --target {r.environment} --migrations {r.directory}"
    adopt_note = (
        None
        if adopt_inline
        else _withheld("adopt SQL", len(adopt.script) if adopt else 0, f"adopt_drift(name=...) / `{cli} --adopt NAME`")
    )
    revert_note = (
        None if revert_inline else _withheld("revert script", len(revert.script) if revert else 0, f"`{cli} --json`")
    )
    return RepairSummary(
        adopt=plan_summary(adopt, adopt_note) if adopt is not None else None,
        adopt_file=_adopt_file(r) if adopt is not None else None,
        revert=plan_summary(revert, revert_note) if revert is not None else None,
    )


def _paging_step(answer: DriftAnswer, paging: bool) -> str:
    steps = []
    if answer.next_cursor is not None:
        steps.append(
            f'More follows: call detect_drift again with the same arguments and cursor="{answer.next_cursor}".'
        )
    elif paging:
        steps.append("Last page.")
    if not answer.detail and any(d.change == "changed" for d in answer.differences.data):
        steps.append("Field-level before/after and definitions: detail=true (fewer differences per page).")
    return " ".join(steps) or "This page is the whole answer: act on next_steps."


def answer_page(r: DriftReport, request: PageRequest | None = None) -> DriftAnswer:
    """One page of a drift report for an MCP client: the verdict, history problems, since_last_apply and both
    repairs in figures first, then up to `limit` differences, revert statements and not-compared objects (each
    list cut at about compare's page size), and `next_cursor` while anything is left. The adopt SQL and the revert
    script are inlined on the first page only when small (and the revert only when not blocked by data loss)."""
    request = request or PageRequest()
    differences = r.differences.data
    revert = r.revert.data if r.revert is not None else None
    adopt = r.adopt.data if r.adopt is not None else None
    statements = list(revert.statements) if revert is not None else []
    uncompared = r.uncompared.data if r.uncompared is not None else []
    cut = cut_page(differences, statements, uncompared, request, with_statements=revert is not None)
    (s0, s1), (u0, u1) = cut.statements, cut.uncompared
    revert_script = revert.script if revert is not None else ""
    revert_inline = (
        revert is not None
        and not revert.blocked_by_data_loss
        and cut.statements_on_one_page
        and len(revert_script) <= SCRIPT_BYTES
    )
    adopt_script = adopt.script if adopt is not None else ""
    adopt_inline = adopt is not None and len(adopt_script) <= SCRIPT_BYTES
    first = request.cursor is None
    answer = DriftAnswer(
        environment=r.environment,
        state=r.state,
        from_fast_path=r.from_fast_path,
        drift_path=r.drift_path,
        expected_note=r.expected_note,
        checked_at=r.checked_at,
        summary=r.summary,
        history_problem_count=r.history_problem_count,
        history_problems=r.history_problems,
        since_last_apply=r.since_last_apply,
        repair=_repair(r, revert_inline, adopt_inline),
        directory=r.directory,
        kind=r.kind,
        replayed=r.replayed,
        pending_count=len(r.pending),
        pending=r.pending[:PENDING_SHOWN],
        next_steps=r.next_steps,
        next_step="",
        next_cursor=cut.next_cursor,
        page=cut.page,
        detail=cut.detail,
        error=r.error,
        uncompared_note=r.uncompared_note,
        timings_ms=r.timings_ms,
        differences=fence(cut.entries),
        revert_statements=fence(statements[s0:s1]) if revert is not None else None,
        revert_script=fence(revert_script) if revert_inline and first and revert_script else None,
        adopt_script=fence(adopt_script) if adopt_inline and first and adopt_script else None,
        loose_scripts=r.loose_scripts,
        uncompared=fence(uncompared[u0:u1]) if uncompared else None,
    )
    return answer.model_copy(update={"next_step": _paging_step(answer, not first)})


# ---------------------------------------------------------------------------------------------- I/O edges


async def _replay(url: str, migrations: Sequence[Migration], supabase: bool, *, admin_url: str | None = None) -> Schema:
    """Run the migrations into the shadow database at `url` (as its sandboxed owner) with the migration runner, as
    `deploy` runs them, and read the result. DatabaseError names the migration that failed.

    For a Supabase target the replay does what Supabase lets `postgres` do there: first the platform's grants and
    default privileges in public (`tools/sample/supabase_platform.sql`, as the replaying role, so every object a
    migration creates there gets what it gets on the project); and a migration's `ALTER ROLE <API role> SET|RESET
    <parameter>` (`tools.introspect.platform.platform_role_setting`: never a superuser, only a placeholder or
    user-settable parameter), which supautils allows `postgres` and the sandboxed role may not do, runs as the
    scratch server's admin (`admin_url`), scoped to the copy (`IN DATABASE`). Everything else runs as the
    sandboxed role."""
    conn = await asyncpg.connect(url)
    try:
        if supabase:
            await conn.execute(SUPABASE_PLATFORM.read_text())
        timeouts = Timeouts()
        for m in migrations:
            statements = split_statements(m.sql)
            refuse_forbidden(m, statements)
            if supabase and admin_url is not None:
                statements = await _run_role_settings(admin_url, m, statements)
            prepared = await prepare_for(conn, statements, rewrite=True, supabase=supabase)
            try:
                await execute_migration(conn, "expected", m, prepared, timeouts, client=SHADOW_CLIENT)
            except DatabaseError as exc:
                raise DatabaseError(
                    f"replaying {m.label} into the expected schema failed: {exc}", exc.sqlstate
                ) from None
        return await introspect(conn, with_dependencies=True)
    finally:
        await conn.close()


# A parameter a role may be given by ALTER ROLE ... SET without superuser: any session may set it.
_USER_SETTABLE = "SELECT context = 'user' FROM pg_catalog.pg_settings WHERE name = $1"
_NOT_SUPERUSER = "SELECT NOT rolsuper FROM pg_catalog.pg_roles WHERE rolname = $1"


async def _run_role_settings(admin_url: str, m: Migration, statements: list[SqlStatement]) -> list[SqlStatement]:
    """Run the migration's settings on platform roles (see `_replay`) as the scratch server's admin, each scoped to
    the copy's database; the statements left for the sandboxed role. A setting that does not qualify here (the
    role is a superuser on the scratch server, the parameter needs more than a user) stays with the sandboxed role,
    and fails there as it would on Supabase."""
    found = [(s, platform_role_setting(s.node_type, s.node)) for s in statements if s.node_type == "AlterRoleSetStmt"]
    wanted = [(s, setting) for s, setting in found if setting is not None]
    if not wanted:
        return statements
    admin = await asyncpg.connect(admin_url)
    try:
        database = await admin.fetchval("SELECT pg_catalog.current_database()")
        ran: set[int] = set()
        for s, setting in wanted:
            if not await admin.fetchval(_NOT_SUPERUSER, setting.role):
                continue
            if not setting.placeholder and not await admin.fetchval(_USER_SETTABLE, setting.parameter):
                continue
            try:
                await admin.execute(setting.in_database(s.node, database))
            except asyncpg.PostgresError as exc:
                raise DatabaseError(
                    f"replaying {m.label} into the expected schema failed at line {s.line} "
                    f"({fence_text(s.text[:120])}): {type(exc).__name__}: {fence_text(exc)}",
                    getattr(exc, "sqlstate", None),
                ) from None
            ran.add(id(s))
    finally:
        await admin.close()
    return [s for s in statements if id(s) not in ran]


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


# The roles supabase_shape.sql expects, created by the scratch server's admin (the sandboxed role may not create
# roles) when the target did not bring them.
SUPABASE_ROLES = (
    ("anon", "NOLOGIN NOINHERIT"),
    ("authenticated", "NOLOGIN NOINHERIT"),
    ("service_role", "NOLOGIN NOINHERIT"),
    ("supabase_admin", "NOLOGIN"),
)


async def _supabase_roles(box: Sandboxed) -> None:
    conn = await asyncpg.connect(box.admin_url)
    try:
        existing = {r["rolname"] for r in await conn.fetch("SELECT rolname FROM pg_catalog.pg_roles")}
        for name, attributes in SUPABASE_ROLES:
            if name not in existing:
                await conn.execute(f"CREATE ROLE {quote_ident(name)} {attributes}")
                await conn.execute(f"GRANT {quote_ident(name)} TO {quote_ident(box.name)}")
    finally:
        await conn.close()


def _acted_for(migrations: Sequence[Migration]) -> frozenset[str]:
    """The roles the migrations' ALTER DEFAULT PRIVILEGES act for (a migration that does not parse acts for none:
    the replay reports it)."""
    found: set[str] = set()
    for m in migrations:
        try:
            found |= roles_acted_for(pieces(m.sql))
        except PgshiftError:
            continue
    return frozenset(found)


@dataclass(frozen=True)
class ShadowStart:
    """What the shadow database holds before the migrations run as its sandboxed owner: the Supabase shape, or a
    snapshot's DDL (loaded by `tools.script_loader`; its errors are kept)."""

    supabase_shape: bool = False
    ddl: str | None = None


async def shadow_schema(
    target: asyncpg.Connection,
    migrations: Sequence[Migration],
    *,
    supabase: bool,
    server_version_num: int,
    start: ShadowStart = ShadowStart(),
    shadow: LocalPostgres | None = None,
    shadow_url: str | None = None,
) -> tuple[Schema, list[str]]:
    """The schema `migrations` build on a throw-away database (dropped afterwards) and what limited it: the scratch
    server's fidelity losses first, then the load's errors. The server is `tools.scratch`'s (`shadow`, a running
    local server; else `shadow_url`; else a local install of the target's major; else the embedded 18).

    Set up as `tools.scratch.sandboxed_database` sets it up (the target's roles and search_path, a login role of its
    own owning the database, created without superuser, file or program rights, never promoted): the Supabase
    shape (pgshift's own file), the snapshot's DDL and every replayed migration run as that role, so none of them
    can reach the machine (COPY ... PROGRAM, server files, untrusted languages). `server_version_num` is the
    target's (the scratch server is chosen from the target's own catalog)."""
    ddl_pieces = pieces(start.ddl, what="the snapshot's DDL") if start.ddl is not None else []
    acts_for = roles_acted_for(ddl_pieces) | _acted_for(migrations)
    async with sandboxed_database(target, "pgshift_expected", shadow, shadow_url=shadow_url, acts_for=acts_for) as box:
        notes = list(box.fidelity_lost)
        if start.supabase_shape:
            await _supabase_roles(box)
            await _execute(box.url, SUPABASE_SHAPE.read_text())
        if start.ddl is not None:
            prepared = await create_extensions(box, {p.extension for p in ddl_pieces if p.extension})
            notes.extend(prepared.fidelity_lost)
            conn = await box.connect()
            try:
                loaded = await load_pieces(conn, ddl_pieces, secrets_=box.secrets, prepared=prepared.done)
            finally:
                await conn.close()
            notes.extend(str(e) for e in loaded.errors)
        try:
            return await _replay(box.url, migrations, supabase, admin_url=box.admin_url), notes
        except DatabaseError as exc:
            if not box.fidelity_lost:
                raise
            raise DatabaseError(f"{exc} ({'; '.join(box.fidelity_lost)})", exc.sqlstate) from None


async def expected_schema(
    target: asyncpg.Connection,
    migrations: Sequence[Migration],
    *,
    supabase: bool,
    server_version_num: int,
    shadow: LocalPostgres | None = None,
    shadow_url: str | None = None,
) -> Schema:
    """The schema `migrations` build from nothing (on a Supabase-shaped database for a Supabase target)."""
    schema, _ = await shadow_schema(
        target,
        migrations,
        supabase=supabase,
        server_version_num=server_version_num,
        start=ShadowStart(supabase_shape=supabase),
        shadow=shadow,
        shadow_url=shadow_url,
    )
    return schema


@dataclass(frozen=True)
class _Live:
    fingerprint: str
    history: ledger.History
    schema: Schema


async def _fingerprint(conn: asyncpg.Connection, prisma_schema: str) -> tuple[str, ledger.History]:
    """The catalog fingerprint and the history, digested together (a history change alone is a change too)."""
    history = await ledger.read_history(conn, prisma_schema)
    return digest([await catalog_fingerprint(conn), history.model_dump(mode="json")]), history


async def _current_fingerprint(db: Databases, environment: str, prisma_schema: str) -> str:
    async with db.read_only(environment, snapshot=True) as conn:
        return (await _fingerprint(conn, prisma_schema))[0]


async def _read_live(db: Databases, environment: str, prisma_schema: str) -> _Live:
    """Fingerprint, history and the live schema, in one snapshot (the fingerprint cached describes the schema)."""
    async with db.read_only_with_helpers(environment, helpers=1) as (conn, helpers):
        fingerprint, history = await _fingerprint(conn, prisma_schema)
        schema = await introspect(conn, helpers=helpers, with_dependencies=True)
    return _Live(fingerprint=fingerprint, history=history, schema=schema)


async def since_last_apply(
    db: Databases,
    environment: str,
    folder: MigrationFolder,
    live_fingerprint: str,
    *,
    compare: bool,
    live: Schema | None = None,
    shadow: LocalPostgres | None = None,
) -> SinceLastApply:
    """The live schema against the newest snapshot (cheap), and with `compare` against the schema the last apply
    left, built in a shadow: the snapshot's DDL loaded (as undo's loader does), then the migration it precedes
    replayed from the folder as the sandboxed role. Read-only on the target."""
    async with db.read_only(environment) as conn:
        role = await conn.fetchval("SELECT current_user")  # what the shadow's own role stands for
        try:
            rows = await list_rows(conn)
        except asyncpg.InsufficientPrivilegeError:
            return SinceLastApply(
                state="unknown",
                compared="nothing: this connection may not read pgshift.snapshots",
                live_fingerprint=live_fingerprint,
            )
        row = rows[-1] if rows else None
        cheap = since_cheap(row, live_fingerprint)
        if not compare or row is None or cheap.state == "unchanged":
            return cheap
        replay = [m for m in folder.migrations if m.version == row.precedes_version]
        if row.precedes_version is not None and not replay:
            missing = fence_text(f"{row.precedes_version}_{row.precedes_name}")
            return cheap.model_copy(
                update={
                    "state": "unknown",
                    "note": f"the migration snapshot {row.id} precedes ({missing}) is not in "
                    f"{folder.directory}, so the schema it left cannot be rebuilt",
                }
            )
        _, ddl = await read_snapshot(conn, row.id)
        if live is None:
            current = await introspect(conn)
            await conn.execute("SET LOCAL search_path TO DEFAULT")  # introspection set pg_catalog; sandbox copies it
        else:
            current = live
        try:
            reference, errors = await shadow_schema(
                conn,
                replay,
                supabase=current.supabase,
                server_version_num=current.server_version_num,
                start=ShadowStart(ddl=ddl),
                shadow=shadow,
                shadow_url=db.environment(environment).shadow_url,
            )
        except PgshiftError as exc:
            return cheap.model_copy(update={"state": "unknown", "note": db.scrub(str(exc))})
    return since_compared(cheap, current, reference, [fence_text(db.scrub(e)) for e in errors], role)


async def detect_drift(
    db: Databases,
    environment: str,
    directory: str | None = None,
    *,
    allow_data_loss: bool = False,
    refresh: bool = False,
    since: bool = False,
    shadow: LocalPostgres | None = None,
    state_dir: Path | None = None,
    project: Path | None = None,
    plans: bool = True,
) -> DriftReport:
    """The live `environment` against its migrations folder (read-only on the target), and against the schema its
    last apply left (`since_last_apply`: from fingerprints; with `since`, object by object through a shadow).

    Three paths, the cheapest that holds (`drift_path` says which): the catalog fingerprint and history unchanged
    since the last full check here ("fingerprint"); else the live schema against the expected schema kept for
    this history (`tools.watch.expected_store`: "kept-expected", no replay); else the replay ("replay"), whose
    result is then kept. `refresh` skips the fingerprint; `shadow` is a running local server for a replay (else
    one is started); `state_dir` holds the caches (default: the state directory); `project` the project whose
    `.pgshift/expected/` keeps a copy a fresh CI runner finds (default: the current folder when the migrations
    folder is inside it). `plans=False` leaves out the adopt and revert plans (the verdict alone, as status needs:
    planning both repairs is most of a check's time on a large drift); a cached result without them answers only
    such calls."""
    started = time.perf_counter()
    env = db.environment(environment)
    folder = read_migrations(checked_path(directory) if directory is not None else None)
    cache = DriftCache.default(state_dir)
    key = cache_key(env.redacted_url, folder_identity(folder))
    prisma_schema = environment_prisma_schema(db, environment)
    if not refresh:
        fingerprint = await _current_fingerprint(db, environment, prisma_schema)
        read = time.perf_counter()
        findings = _cached_findings(cache, key, fingerprint)
        if findings is not None and (findings.planned or not plans):
            loaded = time.perf_counter()
            since_part = await since_last_apply(
                db, environment, folder, findings.live_fingerprint, compare=since, shadow=shadow
            )
            done = time.perf_counter()
            timings = {
                "fingerprint": read - started,
                "cache": loaded - read,
                "since_last_apply": done - loaded,
                "total": done - started,
            }
            answer = report(findings, environment, fast=True, allow_data_loss=allow_data_loss, timings=timings)
            return answer.model_copy(update={"since_last_apply": since_part, "drift_path": "fingerprint"})
    store = ExpectedStore.default(state_dir, project if project is not None else project_of(folder.directory))
    live = await _read_live(db, environment, prisma_schema)
    read_done = time.perf_counter()
    replayed = applied_migrations(live.history, folder)
    try:
        async with db.read_only(environment) as target:  # the sandbox copies its roles and search_path
            role = await target.fetchval("SELECT current_user")  # what the replay's own role stands for
            kept = await _kept_expected(store, target, folder, replayed, live.schema)
            path: DriftPath = "kept-expected" if kept.schema is not None else "replay"
            if kept.schema is not None:
                expected = kept.schema
            else:
                expected = await expected_schema(
                    target,
                    replayed,
                    supabase=live.schema.supabase,
                    server_version_num=live.schema.server_version_num,
                    shadow=shadow,
                    shadow_url=env.shadow_url,
                )
    except PgshiftError as exc:
        return _unknown(folder, replayed, environment, db.scrub(str(exc)), started)
    replay_done = time.perf_counter()
    notes = list(kept.refused)
    if kept.schema is None and expected.server_version_num // 10000 == kept.major:
        notes += store.keep(kept.key, expected)
    elif kept.schema is None:  # what another scratch server builds is not what every faithful replay builds
        notes.append(
            f"not kept: replayed on PostgreSQL {expected.server_version_num // 10000} for a PostgreSQL "
            f"{kept.major} target (a faithful replay is kept: set shadow_url, or install PostgreSQL {kept.major})"
        )
    else:
        notes.append(f"expected schema read from {kept.path} (kept for this history: no replay)")
    stage = "kept_expected" if kept.schema is not None else "replay"
    timings = {"read_live": read_done - started, stage: replay_done - read_done}
    findings = drift_findings(live.schema, expected, folder, live.history, replayed, timings, role, plans=plans)
    findings = findings.model_copy(
        update={
            "timings_ms": {**findings.timings_ms, "diff_and_plan": round((time.perf_counter() - replay_done) * 1000, 1)}
        }
    )
    cache.store(key, CacheEntry(fingerprint=live.fingerprint, result=findings.model_dump_json(exclude=_DERIVED)))
    since_part = await since_last_apply(
        db, environment, folder, findings.live_fingerprint, compare=since, live=live.schema, shadow=shadow
    )
    total = {"total": time.perf_counter() - started}
    answer = report(findings, environment, fast=False, allow_data_loss=allow_data_loss, timings=total)
    return answer.model_copy(
        update={"since_last_apply": since_part, "drift_path": path, "expected_note": "; ".join(notes) or None}
    )


@dataclass(frozen=True)
class _Kept:
    key: str
    major: int
    schema: Schema | None
    path: Path | None
    refused: tuple[str, ...]


async def _kept_expected(
    store: ExpectedStore,
    target: asyncpg.Connection,
    folder: MigrationFolder,
    replayed: Sequence[Migration],
    live: Schema,
) -> _Kept:
    """The expected schema kept for this history and target (`expected_store.chain_key`), if a copy passes its
    checks. The target's facts are read as the scratch copy reads them."""
    facts = await read_target(target)
    key = chain_key(replayed, kind=folder.kind, supabase=live.supabase, facts=facts)
    found = store.find(key)
    return _Kept(key=key, major=facts.major, schema=found.schema, path=found.path, refused=found.refused)


# What a plan derives from its statements (computed fields): left out of the cache, built again on load.
_PLAN_DERIVED = {"script", "destructive", "blocked_by_data_loss"}
_DERIVED = {"adopt": _PLAN_DERIVED, "revert": _PLAN_DERIVED}


def _cached_findings(cache: DriftCache, key: str, fingerprint: str) -> DriftFindings | None:
    """The findings cached at this fingerprint (a stale entry is one line read; a foreign one is a miss)."""
    text = cache.hit(key, fingerprint)
    if text is None:
        return None
    try:
        with _no_cyclic_gc():
            return DriftFindings.model_validate_json(text)
    except ValueError:  # pydantic's ValidationError is one
        return None


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large result is built: its passes over the ~10^5 new objects
    cost more than the building itself (5,000 tables: 26 ms instead of 72; refcounting still frees memory, and
    nothing awaits inside, so no other task runs meanwhile)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _unknown(
    folder: MigrationFolder, replayed: Sequence[Migration], environment: str, error: str, started: float
) -> DriftReport:
    findings = DriftFindings(
        state="unknown",
        kind=folder.kind,
        directory=folder.directory,
        replayed=[m.label for m in replayed],
        error=f"the expected schema could not be built, so drift is unknown: {error}",
        checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return report(findings, environment, fast=False, timings={"total": time.perf_counter() - started})


async def drift_summary(db: Databases, environment: str, directory: str | None = None) -> DriftSummary:
    """The drift verdict for the status dashboard (fast path when nothing changed); errors read as unknown."""
    try:
        r = await detect_drift(db, environment, directory, plans=False)
    except PgshiftError as exc:
        return DriftSummary(state="unknown", detail=db.scrub(str(exc)))
    if r.state == "unknown":
        return DriftSummary(
            state="unknown", from_fast_path=r.from_fast_path, drift_path=r.drift_path, detail=r.error or ""
        )
    s = r.summary
    detail = (
        "matches its migrations"
        if r.state == "none"
        else f"{s.added} added, {s.removed} removed, {s.changed} changed by hand; "
        f"{r.history_problem_count} history problem(s)"
    )
    return DriftSummary(
        state=r.state,
        objects=s.total,
        history_problems=r.history_problem_count,
        from_fast_path=r.from_fast_path,
        drift_path=r.drift_path,
        detail=detail,
    )


async def adopt_drift(
    db: Databases,
    environment: str,
    name: str,
    directory: str | None = None,
    *,
    shadow: LocalPostgres | None = None,
    state_dir: Path | None = None,
    now: datetime | None = None,
) -> AdoptResult:
    """Write the drift of `environment` as a new migration file in the folder's layout (never overwriting);
    the database is only read."""
    when = now or datetime.now(UTC)
    folder = read_migrations(checked_path(directory) if directory is not None else None)
    path, version = adoption_path(folder, name, when)  # the name is checked before anything is read
    found = await detect_drift(db, environment, folder.directory, shadow=shadow, state_dir=state_dir)
    if found.state == "unknown":
        raise DatabaseError(f"drift on '{environment}' is unknown, nothing was written: {found.error}")
    if found.pending:
        raise ConfigError(
            f"{folder.directory} has {len(found.pending)} migration(s) '{environment}' has not applied "
            f"({', '.join(fence_text(p) for p in found.pending)}): a new file could repeat them. Deploy them, or "
            "record an adopted file as applied, then adopt again. Nothing was written."
        )
    plan = found.adopt.data if found.adopt is not None else None
    if plan is None or plan.is_empty:
        return AdoptResult(
            environment=environment,
            status="nothing_to_adopt",
            message=f"'{environment}' has no object drift against {folder.directory}: nothing was written.",
        )
    _write_new(path, adoption_script(plan, environment, when))
    mark = (
        f"`prisma migrate resolve --applied {path.parent.name}`"
        if folder.kind == "prisma"
        else f"`supabase migration repair --status applied {version}`"
    )
    steps = [f"record it as applied on '{environment}' without running it there: {mark}"]
    if folder.kind == "prisma":
        steps.append("update schema.prisma to match (`prisma db pull`), or the next `prisma migrate dev` undoes it")
    steps.append("review the file: it is what the live database has, now part of the migrations for every database")
    hazards = [
        f"{fence_text(s.object)}: {h.kind.value}: {h.message}" for s in plan.statements for h in s.hazards if s.object
    ]
    return AdoptResult(
        environment=environment,
        status="written",
        path=str(path),
        statements=len(plan.statements),
        hazards=hazards,
        next_steps=steps,
        message=f"wrote {path} ({len(plan.statements)} statement(s)) from the drift on '{environment}'. "
        "The database was not changed.",
    )


def _write_new(path: Path, text: str) -> None:
    """Create the file (and a Prisma migration's folder) inside the migrations folder: refused when either exists
    or is a symbolic link (`files.write_new`: exclusive, never through a link)."""
    if path.name == "migration.sql":
        write_new(path.parent.parent, PurePath(path.parent.name, path.name), text, new_folder=True)
    else:
        write_new(path.parent, PurePath(path.name), text)
