"""compare_schemas: does the target match the source, and if not, exactly how?

Both databases are read concurrently, each in one READ ONLY REPEATABLE READ transaction, then diffed
(`tools.diff`: the differences are what must change in the target to equal the source). The same
comparison backs the `pgshift compare` command, a drift gate for CI: exit 0 in sync, 2 different, 1 error.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from pgshift.tools.databases import Databases, Environment, snapshot_pair
from pgshift.tools.diff import Change, SchemaDiff, check_kinds, diff_schemas
from pgshift.tools.errors import ConfigError
from pgshift.tools.introspect import gc_paused, introspect
from pgshift.tools.model import KINDS, Schema, to_plain
from pgshift.tools.options import ALLOW_DATA_LOSS
from pgshift.tools.plan.rows import count_blockers
from pgshift.tools.plan.statement import Blocker, ClientPlan, Plan, Statement
from pgshift.tools.progress import Progress, no_progress
from pgshift.tools.untrusted import Untrusted, fence


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class FieldDifference(_Frozen):
    field: str
    before: Any = Field(description="The target's value")
    after: Any = Field(description="The source's value (what the target should have)")


class Difference(_Frozen):
    kind: str = Field(description=f"Object kind: one of {', '.join(KINDS)}")
    name: str = Field(description="Schema-qualified name (columns, constraints, triggers, policies: table.name)")
    change: Literal["added", "removed", "changed"] = Field(
        description="added: in the source only (missing from the target); removed: in the target only; "
        "changed: in both, with the fields that differ"
    )
    table: str | None = Field(default=None, description="For a column: its table")
    fields: list[FieldDifference] = Field(default_factory=list, description="For a change: field-level before/after")
    definition: dict[str, Any] | None = Field(
        default=None, description="For an added or removed object: the object as read from the side that has it"
    )


class KindCounts(_Frozen):
    added: int = 0
    removed: int = 0
    changed: int = 0


class CompareSummary(_Frozen):
    added: int
    removed: int
    changed: int
    total: int
    by_kind: dict[str, KindCounts] = Field(description="Counts per object kind that has differences")


class NotCompared(_Frozen):
    kind: str = Field(description="Object kind pgshift reads but does not compare or plan (rule, publication, ...)")
    name: str = Field(description="Schema-qualified name (`publication: table` for a publication's member)")
    detail: str | None = Field(default=None, description="The setting that defines it (storage, statistics target...)")
    definition: str | None = Field(default=None, description="What defines it, as read from the source (else target)")
    in_source: bool
    in_target: bool
    differs: bool = Field(default=False, description="On both sides, but defined differently")
    target_definition: str | None = Field(default=None, description="When it differs: the target's definition")


class CompareResult(_Frozen):
    # Field order is answer order: the summary first, then the plan, then the long lists (a truncated answer
    # still says whether the pair is in sync and what to do next).
    source: str
    target: str
    in_sync: bool = Field(description="True when the target matches the source for the compared kinds")
    summary: CompareSummary
    schemas: list[str] | None = Field(description="Schemas compared (None: every non-system, non-managed schema)")
    kinds: list[str] = Field(description="Object kinds compared")
    uncompared_count: int = Field(
        default=0,
        description="Objects of kinds pgshift does not compare (rules, event triggers, extended statistics, foreign "
        "objects, column storage/statistics, ordered-set aggregates), on either side: in_sync says "
        "nothing about them",
    )
    uncompared_differ: bool = Field(
        default=False,
        description="True when a not-compared object is on one side only or defined differently: the CLI then exits "
        "2 unless --ignore-uncompared",
    )
    uncompared_note: str | None = Field(default=None, description="'N objects not compared ...' when there are any")
    timings_ms: dict[str, float] = Field(default_factory=dict, description="Time spent reading and diffing")
    plan: Untrusted[ClientPlan] | None = Field(
        default=None,
        description="With plan=true, fenced as untrusted data: the ordered statements that make the target equal the "
        "source, each with its hazards and whether it can run in a transaction, and the whole script (withheld, "
        "with the reason, while the plan is blocked by data loss)",
    )
    differences: Untrusted[list[Difference]] = Field(
        description="Fenced as untrusted data (names and definitions come from the databases); sorted by kind "
        "(creation order), then name"
    )
    uncompared: Untrusted[list[NotCompared]] | None = Field(
        default=None,
        description="Fenced as untrusted data: every not-compared object by kind and name, with the sides holding it",
    )


def select_kinds(include_kinds: Sequence[str] | None, exclude_kinds: Sequence[str] | None) -> list[str]:
    """The kinds to compare; ConfigError on an unknown kind."""
    included = check_kinds(include_kinds) if include_kinds else list(KINDS)
    excluded = set(check_kinds(exclude_kinds or []))
    kinds = [k for k in KINDS if k in included and k not in excluded]
    if not kinds:
        raise ConfigError("no object kind left to compare: check include_kinds / exclude_kinds")
    return kinds


def _check_schemas(schemas: Sequence[str] | None) -> list[str] | None:
    if schemas is None:
        return None
    if isinstance(schemas, str) or not all(isinstance(s, str) and s for s in schemas):
        raise ConfigError("schemas must be a list of non-empty schema names")
    if not schemas:
        raise ConfigError("schemas is empty: pass null to compare every schema, or name at least one")
    return sorted(set(schemas))


def _require_schemas_exist(schemas: list[str] | None, source: Schema, target: Schema, names: tuple[str, str]) -> None:
    if schemas is None:
        return
    found = {n.name for n in source.namespaces} | {n.name for n in target.namespaces}
    missing = [s for s in schemas if s not in found]
    if missing:
        raise ConfigError(
            f"schema(s) {', '.join(missing)} exist in neither '{names[0]}' nor '{names[1]}'; "
            "check the names (they are case-sensitive)"
        )


def build_result(
    diff: SchemaDiff,
    source: str,
    target: str,
    schemas: list[str] | None,
    kinds: list[str],
    timings: dict[str, float],
    plan: Plan | None = None,
    uncompared: list[NotCompared] | None = None,
) -> CompareResult:
    by_kind: dict[str, dict[str, int]] = {}
    for c in diff.changes:
        counts = by_kind.setdefault(c.kind, {"added": 0, "removed": 0, "changed": 0})
        counts[c.change] += 1
    summary = diff.summary()
    return CompareResult(
        source=source,
        target=target,
        in_sync=diff.in_sync,
        summary=CompareSummary(
            added=summary["added"],
            removed=summary["removed"],
            changed=summary["changed"],
            total=len(diff.changes),
            by_kind={k: KindCounts(**v) for k, v in by_kind.items()},
        ),
        differences=fence([_difference(c) for c in diff.changes]),
        schemas=schemas,
        kinds=kinds,
        timings_ms={k: round(v * 1000, 1) for k, v in timings.items()},
        plan=fence(ClientPlan.of(plan)) if plan is not None else None,
        **_uncompared_fields(uncompared or []),
    )


def not_compared(source: Schema, target: Schema) -> list[NotCompared]:
    """Every object of a kind not compared, on either side, sorted by kind then name."""
    src = {o.key: o for o in source.uncompared}
    tgt = {o.key: o for o in target.uncompared}
    out = []
    for key in sorted(src.keys() | tgt.keys()):
        o, other = src.get(key) or tgt[key], tgt.get(key)
        differs = key in src and other is not None and other.definition != o.definition
        out.append(
            NotCompared(
                kind=o.kind,
                name=o.name,
                detail=o.detail,
                definition=o.definition,
                in_source=key in src,
                in_target=other is not None,
                differs=differs,
                target_definition=other.definition if differs and other is not None else None,
            )
        )
    return out


def _uncompared_fields(objects: list[NotCompared]) -> dict[str, Any]:
    if not objects:
        return {}
    one_side = sum(1 for o in objects if not (o.in_source and o.in_target))
    differ = sum(1 for o in objects if o.differs)
    kinds = ", ".join(sorted({o.kind for o in objects}))
    note = f"{len(objects)} object{'s' if len(objects) > 1 else ''} not compared ({kinds})"
    if one_side or differ:
        note += f"; {one_side} on one side only, {differ} defined differently"
    else:
        note += "; the same on both sides"
    return {
        "uncompared_count": len(objects),
        "uncompared_differ": one_side + differ > 0,
        "uncompared_note": note,
        "uncompared": fence(objects),
    }


def _difference(c: Change) -> Difference:
    obj = c.source if c.change == "added" else c.target if c.change == "removed" else None
    return Difference(
        kind=c.kind,
        name=c.key,
        change=c.change,
        table=c.table,
        fields=[FieldDifference(field=f.field, before=to_plain(f.before), after=to_plain(f.after)) for f in c.fields],
        definition=to_plain(obj) if obj is not None else None,
    )


class PlanOptions(_Frozen):
    """Whether to plan the migration too, and how (see tools.plan)."""

    allow_data_loss: bool = False
    online: bool = False


async def _timed_read(
    conn: asyncpg.Connection,
    helpers: Sequence[asyncpg.Connection],
    schemas: list[str] | None,
    include_managed: bool,
    with_dependencies: bool = False,
) -> tuple[Schema, float]:
    started = time.perf_counter()
    schema = await introspect(
        conn, schemas=schemas, include_managed=include_managed, with_dependencies=with_dependencies, helpers=helpers
    )
    return schema, time.perf_counter() - started


async def compare_schemas(
    db: Databases,
    source: str = "local",
    target: str = "production",
    schemas: list[str] | None = None,
    include_kinds: list[str] | None = None,
    exclude_kinds: list[str] | None = None,
    include_managed: bool = False,
    plan: PlanOptions | None = None,
    progress: Progress = no_progress,
) -> CompareResult:
    """Compare two configured environments (and plan the migration when `plan` is given); `progress` hears of
    each stage.

    Read-only on both. Raises ConfigError / ConnectionFailed."""
    kinds = select_kinds(include_kinds, exclude_kinds)
    wanted = _check_schemas(schemas)
    db.environment(source)
    db.environment(target)

    async def read(name: str) -> tuple[Schema, float]:
        # A second pooled connection, taken together with the first (never one held while waiting for the other),
        # shares the snapshot and takes half of the catalog queries.
        async with db.read_only_with_helpers(name, helpers=1) as (conn, helpers):
            return await _timed_read(conn, helpers, wanted, include_managed, plan is not None)

    started = time.perf_counter()
    await progress(0, 2, "reading both schemas")
    with gc_paused():  # one pause for the whole comparison; see `_finish`
        reads = list(await asyncio.gather(read(source), read(target)))
        await progress(1, 2, "comparing" + (" and planning" if plan is not None else ""))
        result = _finish(reads, source, target, wanted, kinds, started, plan)
    await progress(2, 2, "compared")
    if result.plan is not None and result.plan.data.row_checks:
        async with db.read_only(target) as conn:
            counted = await count_blockers(conn, result.plan.data)
        result = result.model_copy(update={"plan": fence(ClientPlan.of(counted))})
    return result


async def compare_environments(
    source: Environment,
    target: Environment,
    schemas: list[str] | None = None,
    include_kinds: list[str] | None = None,
    exclude_kinds: list[str] | None = None,
    include_managed: bool = False,
) -> CompareResult:
    """Compare two environments over direct connections, two per database (for the CLI). Read-only on both."""
    kinds = select_kinds(include_kinds, exclude_kinds)
    wanted = _check_schemas(schemas)

    async def read(env: Environment) -> tuple[Schema, float]:
        async with snapshot_pair(env) as (conn, helper):
            return await _timed_read(conn, [helper], wanted, include_managed)

    started = time.perf_counter()
    with gc_paused():  # one pause for the whole comparison; see `_finish`
        return _finish(
            list(await asyncio.gather(read(source), read(target))), source.name, target.name, wanted, kinds, started
        )


def _finish(
    reads: list[tuple[Schema, float]],
    source: str,
    target: str,
    schemas: list[str] | None,
    kinds: list[str],
    started: float,
    plan: PlanOptions | None = None,
) -> CompareResult:
    """Diff the two models and shape the result. Empties `reads` (the only reference to the models), so
    that the large models are freed by reference counting before the garbage collector resumes."""
    (src, t_src), (tgt, t_tgt) = reads
    reads.clear()
    _require_schemas_exist(schemas, src, tgt, (source, target))
    read_done = time.perf_counter()
    diff = diff_schemas(src, tgt, kinds=kinds)
    diffed = time.perf_counter()
    timings = {"read_source": t_src, "read_target": t_tgt, "diff": diffed - read_done}
    planned = _plan(src, tgt, plan) if plan is not None else None
    if planned is not None:
        timings["plan"] = time.perf_counter() - diffed
    skipped = not_compared(src, tgt)
    del src, tgt
    result = build_result(diff, source, target, schemas, kinds, timings, planned, skipped)
    total = round((time.perf_counter() - started) * 1000, 1)
    return result.model_copy(update={"timings_ms": {**result.timings_ms, "total": total}})


# The MCP answer: the summary first, then one page of each list. The engine's CompareResult stays whole (the CLI
# prints all of it); an assistant reads it page by page, each page under 40,000 characters both as text and as
# structured content (a client may pass either to the model): 2 x PAGE_BYTES + UNCOMPARED_PAGE_BYTES, measured with
# null fields (as structured content carries them), leaves room for the summary, the plan's figures and the fences.

PAGE_BYTES = 13_000
"""Per list and page: about 3,000 tokens of differences, as many of statements (at least one item per page)."""
UNCOMPARED_PAGE_BYTES = 6_000
SCRIPT_BYTES = 8_000
"""A plan's whole script is inlined only up to this size, and only when every statement is on the first page."""
DEFAULT_LIMIT = 200
DESTRUCTIVE_SHOWN = 50


class BriefDifference(_Frozen):
    kind: str
    name: str
    change: Literal["added", "removed", "changed"]
    table: str | None = None
    changed_fields: list[str] | None = Field(
        default=None, description="For a change: the fields that differ (detail=true adds before/after)"
    )


class Span(_Frozen):
    start: int = Field(description="Position of this page's first item in the whole list")
    count: int
    total: int


class PageInfo(_Frozen):
    differences: Span
    statements: Span | None = None
    uncompared: Span | None = None


class DestructiveStatement(_Frozen):
    position: int = Field(description="Its position in the plan's statements, from 0")
    object: str


class PlanSummary(_Frozen):
    statements: int
    blocked_by_data_loss: bool = Field(description="True when the plan deletes data and allow_data_loss was not set")
    allow_data_loss: bool
    online: bool
    destructive_count: int = Field(description="Statements that delete data")
    destructive: Untrusted[list[DestructiveStatement]] | None = Field(
        default=None, description=f"The first {DESTRUCTIVE_SHOWN} statements that delete data, with their objects"
    )
    hazards: dict[str, int] = Field(description="Statements per hazard kind")
    not_transactional: int = Field(description="Statements that must run alone, outside a transaction")
    blockers: Untrusted[list[Blocker]] | None = Field(
        default=None, description="Rows on the target that would make a statement fail: resolve them before applying"
    )
    script_withheld: str | None = Field(default=None, description="Why `script` is not in this answer, when it is not")


class PageRequest(_Frozen):
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, description="Most items of each list per page")
    cursor: str | None = Field(default=None, description="The next_cursor of the previous page")
    detail: bool = Field(default=False, description="Field-level before/after and definitions, whatever the size")


class CompareAnswer(_Frozen):
    """compare_schemas as an MCP client receives it: one page, the summary first."""

    source: str
    target: str
    in_sync: bool = Field(description="True when the target matches the source for the compared kinds")
    summary: CompareSummary
    plan: PlanSummary | None = Field(default=None, description="With plan=true: the plan in figures")
    next_step: str = Field(description="What the answer means and how to get the next page")
    next_cursor: str | None = Field(default=None, description="Pass as cursor (same arguments) for the next page")
    page: PageInfo = Field(description="Where this page's items are in each whole list")
    detail: bool = Field(description="Whether differences carry field-level before/after and definitions")
    schemas: list[str] | None
    kinds: list[str]
    uncompared_count: int = 0
    uncompared_differ: bool = False
    uncompared_note: str | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
    differences: Untrusted[list[Difference | BriefDifference]] = Field(
        description="This page of the differences (fenced: names and definitions come from the databases)"
    )
    statements: Untrusted[list[Statement]] | None = Field(
        default=None, description="With plan=true: this page of the ordered statements, each with its hazards"
    )
    script: Untrusted[str] | None = Field(
        default=None,
        description="On the first page: the whole plan as one psql-ready script, when it is small and not blocked",
    )
    uncompared: Untrusted[list[NotCompared]] | None = Field(
        default=None, description="This page of the objects of kinds pgshift does not compare"
    )


def _brief(d: Difference) -> BriefDifference:
    return BriefDifference(
        kind=d.kind,
        name=d.name,
        change=d.change,
        table=d.table,
        changed_fields=[f.field for f in d.fields] if d.change == "changed" else None,
    )


def _sizes(items: Sequence[BaseModel]) -> list[int]:
    """Each item's size as structured content carries it (null fields included: the larger of the two forms)."""
    return [len(i.model_dump_json()) for i in items]


def _end(sizes: list[int], start: int, limit: int, budget: int) -> int:
    """Where a page from `start` ends: at most `limit` items and `budget` bytes, at least one item."""
    end, used = start, 0
    while end < len(sizes) and end - start < limit and (end == start or used + sizes[end] <= budget):
        used += sizes[end]
        end += 1
    return end


def _digest(*lists: Sequence[BaseModel]) -> str:
    """What the pages are cut from: a cursor from another comparison result is refused."""
    h = hashlib.sha256()
    for items in lists:
        for item in items:
            h.update(item.model_dump_json().encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def _starts(cursor: str | None, digest: str, totals: tuple[int, int, int]) -> tuple[int, int, int]:
    if cursor is None:
        return 0, 0, 0
    parts = cursor.split(".")
    numbers = parts[:3]
    if len(parts) != 4 or not all(p.isdigit() for p in numbers):
        raise ConfigError(f"cursor {cursor[:40]!r} is not a next_cursor this tool returned; omit it for the first page")
    if parts[3] != digest:
        raise ConfigError(
            "the comparison changed since that cursor was returned (a database changed, or other arguments were "
            "passed): call again without cursor to start from the first page"
        )
    starts = (int(numbers[0]), int(numbers[1]), int(numbers[2]))
    if any(s > t for s, t in zip(starts, totals, strict=True)):
        raise ConfigError("cursor points past the end of the lists: call again without cursor")
    return starts


def plan_summary(plan: ClientPlan, script_note: str | None) -> PlanSummary:
    hazards: dict[str, int] = {}
    for s in plan.statements:
        for kind in {h.kind.value for h in s.hazards}:
            hazards[kind] = hazards.get(kind, 0) + 1
    destructive = [
        DestructiveStatement(position=i, object=s.object) for i, s in enumerate(plan.statements) if s.destructive
    ]
    return PlanSummary(
        statements=len(plan.statements),
        blocked_by_data_loss=plan.blocked_by_data_loss,
        allow_data_loss=plan.allow_data_loss,
        online=plan.online,
        destructive_count=len(destructive),
        destructive=fence(destructive[:DESTRUCTIVE_SHOWN]) if destructive else None,
        hazards=dict(sorted(hazards.items())),
        not_transactional=sum(1 for s in plan.statements if not s.transactional),
        blockers=fence(list(plan.blockers)) if plan.blockers else None,
        script_withheld=plan.script_withheld or script_note,
    )


def _script_note(plan: ClientPlan, inline: bool, size: int, source: str, target: str) -> str | None:
    if plan.blocked_by_data_loss or inline:
        return None
    return (
        f"script not inlined ({size} bytes): it is the statements' sql in order, each followed by ';' "
        f"(and preceded by SET lock_timeout = '<lock_timeout_ms>ms'; when set); at a terminal, "
        f"`pgshift plan --source {source} --target {target}` prints it whole"
    )


def _next_step(answer: CompareAnswer, plan: ClientPlan | None, paging: bool) -> str:
    steps = []
    if answer.in_sync and (plan is None or plan.is_empty):
        steps.append("In sync: nothing to do for the compared kinds.")
    if plan is not None and plan.blocked_by_data_loss:
        steps.append(
            f"Blocked: {len(plan.destructive)} statement(s) would delete data (plan.destructive); do not apply this "
            f"plan; plan again with {ALLOW_DATA_LOSS} only if the loss is intended."
        )
    if answer.next_cursor is not None:
        steps.append(
            f'More follows: call compare_schemas again with the same arguments and cursor="{answer.next_cursor}".'
        )
    elif paging:
        steps.append("Last page.")
    if not answer.detail and any(d.change == "changed" for d in answer.differences.data):
        steps.append("Field-level before/after and definitions: detail=true (fewer differences per page).")
    if not answer.in_sync and not (plan is not None and plan.blocked_by_data_loss):
        steps.append(
            "To make the target match: compare again with plan=true for the statements."
            if plan is None
            else "Review the statements, then apply them with apply_migration (on a protected environment a person "
            "approves them)."
        )
    return " ".join(steps) or "Nothing more to do with this answer."


def page_differences(
    differences: Sequence[Difference], start: int, limit: int, detail: bool
) -> tuple[list[Difference | BriefDifference], int, bool]:
    """One page of differences from `start`: (the page, where the next starts, whether it is detailed). Detailed
    (field-level before/after, definitions) when `detail` or when every difference fits in one page; otherwise
    brief (kind, name, change, the names of the changed fields). Any answer listing differences can page them so."""
    detailed = _sizes(differences)
    if detail or sum(detailed) <= PAGE_BYTES:
        end = _end(detailed, start, limit, PAGE_BYTES)
        return list(differences[start:end]), end, True
    brief = [_brief(d) for d in differences]
    end = _end(_sizes(brief), start, limit, PAGE_BYTES)
    return list(brief[start:end]), end, False


@dataclass(frozen=True)
class Cut:
    """One page cut from three lists (differences, statements, not-compared objects), and the cursor to the next."""

    entries: list[Difference | BriefDifference]
    detail: bool
    statements: tuple[int, int]
    uncompared: tuple[int, int]
    statements_on_one_page: bool
    next_cursor: str | None
    page: PageInfo


def cut_page(
    differences: Sequence[Difference],
    statements: Sequence[Statement],
    uncompared: Sequence[NotCompared],
    request: PageRequest,
    *,
    with_statements: bool,
) -> Cut:
    """The page `request.cursor` points at (the first without one): at most `limit` items of each list, each list
    also cut at about its byte budget, every item on exactly one page. A cursor from other lists is refused."""
    digest = _digest(differences, statements, uncompared)
    d0, s0, u0 = _starts(request.cursor, digest, (len(differences), len(statements), len(uncompared)))
    entries, d1, detail = page_differences(differences, d0, request.limit, request.detail)
    statement_sizes = _sizes(statements)
    s1 = _end(statement_sizes, s0, request.limit, PAGE_BYTES)
    u1 = _end(_sizes(uncompared), u0, request.limit, UNCOMPARED_PAGE_BYTES)
    more = d1 < len(differences) or s1 < len(statements) or u1 < len(uncompared)
    return Cut(
        entries=entries,
        detail=detail,
        statements=(s0, s1),
        uncompared=(u0, u1),
        statements_on_one_page=_end(statement_sizes, 0, request.limit, PAGE_BYTES) == len(statements),
        next_cursor=f"{d1}.{s1}.{u1}.{digest}" if more else None,
        page=PageInfo(
            differences=Span(start=d0, count=d1 - d0, total=len(differences)),
            statements=Span(start=s0, count=s1 - s0, total=len(statements)) if with_statements else None,
            uncompared=Span(start=u0, count=u1 - u0, total=len(uncompared)) if uncompared else None,
        ),
    )


def answer_page(result: CompareResult, request: PageRequest | None = None) -> CompareAnswer:
    """One page of a comparison for an MCP client: the summary and the plan in figures first, then up to
    `limit` differences, statements and not-compared objects (each list also cut at about PAGE_BYTES), and
    `next_cursor` while anything is left. Differences carry their before/after when `detail` or when they all fit
    on one page. Every item of every list is on exactly one page."""
    request = request or PageRequest()
    plan = result.plan.data if result.plan is not None else None
    differences = result.differences.data
    statements = list(plan.statements) if plan is not None else []
    uncompared = result.uncompared.data if result.uncompared is not None else []
    cut = cut_page(differences, statements, uncompared, request, with_statements=plan is not None)
    (s0, s1), (u0, u1) = cut.statements, cut.uncompared
    script = plan.script if plan is not None else ""  # rendered once: empty while blocked
    inline = (
        plan is not None
        and not plan.blocked_by_data_loss
        and cut.statements_on_one_page
        and len(script) <= SCRIPT_BYTES
    )
    note = _script_note(plan, inline, len(script), result.source, result.target) if plan is not None else None
    answer = CompareAnswer(
        source=result.source,
        target=result.target,
        in_sync=result.in_sync,
        summary=result.summary,
        plan=plan_summary(plan, note) if plan is not None else None,
        next_step="",
        next_cursor=cut.next_cursor,
        page=cut.page,
        detail=cut.detail,
        schemas=result.schemas,
        kinds=result.kinds,
        uncompared_count=result.uncompared_count,
        uncompared_differ=result.uncompared_differ,
        uncompared_note=result.uncompared_note,
        timings_ms=result.timings_ms,
        differences=fence(cut.entries),
        statements=fence(statements[s0:s1]) if plan is not None else None,
        script=fence(script) if inline and s0 == 0 and script else None,
        uncompared=fence(uncompared[u0:u1]) if uncompared else None,
    )
    return answer.model_copy(update={"next_step": _next_step(answer, plan, request.cursor is not None)})


def _plan(source: Schema, target: Schema, options: PlanOptions) -> Plan:
    from pgshift.tools.plan.planner import (
        plan_migration,  # only with plan=true: the planner is a third of compare's imports
    )

    return plan_migration(source, target, allow_data_loss=options.allow_data_loss, online=options.online)
