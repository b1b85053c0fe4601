"""compare_schemas: does the target match the source, and if not, exactly how?

Both databases are read concurrently, each in one READ ONLY REPEATABLE READ transaction, then diffed
(`tools.diff`: the differences are what must change in the target to equal the source). The same
comparison backs the `pgshift compare` command, a drift gate for CI: exit 0 in sync, 2 different, 1 error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Literal, cast

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from tools.databases import Databases, Environment, connect
from tools.diff import Change, SchemaDiff, check_kinds, diff_schemas
from tools.errors import ConfigError
from tools.introspect import gc_paused, introspect
from tools.model import KINDS, Schema, to_plain
from tools.plan.planner import plan_migration
from tools.plan.statement import ClientPlan, Plan
from tools.untrusted import Untrusted, fence


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
        "objects, publications, column storage/statistics, aggregates, range types), on either side: in_sync says "
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
) -> CompareResult:
    """Compare two configured environments (and plan the migration when `plan` is given).

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
    with gc_paused():  # one pause for the whole comparison; see `_finish`
        reads = list(await asyncio.gather(read(source), read(target)))
        return _finish(reads, source, target, wanted, kinds, started, plan)


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
        opened = await asyncio.gather(connect(env), connect(env), return_exceptions=True)
        failed = [r for r in opened if isinstance(r, BaseException)]
        if failed:
            await asyncio.gather(*(c.close() for c in opened if isinstance(c, asyncpg.Connection)))
            raise failed[0]
        conn, helper = cast(list[asyncpg.Connection], opened)
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return await _timed_read(conn, [helper], wanted, include_managed)
        finally:
            await asyncio.gather(conn.close(), helper.close())

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
    planned = (
        plan_migration(src, tgt, allow_data_loss=plan.allow_data_loss, online=plan.online) if plan is not None else None
    )
    if planned is not None:
        timings["plan"] = time.perf_counter() - diffed
    skipped = not_compared(src, tgt)
    del src, tgt
    result = build_result(diff, source, target, schemas, kinds, timings, planned, skipped)
    total = round((time.perf_counter() - started) * 1000, 1)
    return result.model_copy(update={"timings_ms": {**result.timings_ms, "total": total}})
