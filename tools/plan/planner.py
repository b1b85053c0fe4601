"""The migration planner: the ordered statements that turn the target schema into the source schema.

1. A keyed comparison per kind finds what is added, removed and changed.
2. A generator per kind writes `create`, `drop` or `alter`; an `alter` that cannot be expressed in
   place (None) makes the object *recreated*: dropped, then created from the source.
3. What depends on something that goes away (from the catalog's `pg_depend`, plus what the model
   knows: a column's type, a foreign key's referenced table, a trigger's function...) is recreated too,
   and what lives inside a dropped table (its columns, indexes, constraints, triggers, policies and
   grants) goes with it and is created again when the source still has it.
4. Every step names the steps it must follow; a topological sort orders them. Drops follow the
   target's dependencies (dependants first), creations follow the source's (dependencies first).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

from pgshift.tools.diff import (
    Equivalences,
    comparable_objects,
    equivalences_for,
    field_changes,
    missing_platform_grants,
    without_unshared_privileges,
)
from pgshift.tools.model import KINDS, Privilege, Schema, Table, View, member_key
from pgshift.tools.plan.context import Context, Node, base_type
from pgshift.tools.plan.dependencies import DependencyGraph
from pgshift.tools.plan.graph import Step, order_steps
from pgshift.tools.plan.kinds import DeclaredGenerator, Generator
from pgshift.tools.plan.kinds.aggregates import AggregateGenerator
from pgshift.tools.plan.kinds.default_privileges import DefaultPrivilegeGenerator
from pgshift.tools.plan.kinds.namespaces import CollationGenerator, ExtensionGenerator, SchemaGenerator
from pgshift.tools.plan.kinds.publications import PublicationGenerator, PublicationMemberGenerator
from pgshift.tools.plan.kinds.range_types import RangeTypeGenerator
from pgshift.tools.plan.kinds.relations import (
    ConstraintGenerator,
    IndexGenerator,
    ViewGenerator,
    foreign_key_cycle_breakers,
)
from pgshift.tools.plan.kinds.routines import FunctionGenerator, TriggerGenerator
from pgshift.tools.plan.kinds.security import PolicyGenerator, PrivilegeGenerator
from pgshift.tools.plan.kinds.sequences import Ownership, OwnershipGenerator, SequenceGenerator
from pgshift.tools.plan.kinds.tables import ColumnGenerator, ColumnRef, MembershipGenerator, TableGenerator, memberships
from pgshift.tools.plan.kinds.types import (
    CompositeTypeGenerator,
    DomainGenerator,
    EnumGenerator,
    dependent_type_nodes,
    renames_and_recasts,
    types_over,
)
from pgshift.tools.plan.statement import Plan, Statement
from pgshift.tools.sql import quote_ident

# Creation order: the tie-break when dependencies leave a choice (drops use the reverse).
GENERATORS: tuple[Generator, ...] = (
    SchemaGenerator(),
    ExtensionGenerator(),
    CollationGenerator(),
    EnumGenerator(),
    DomainGenerator(),
    CompositeTypeGenerator(),
    RangeTypeGenerator(),
    SequenceGenerator(),
    TableGenerator(),
    MembershipGenerator(),
    ColumnGenerator(),
    OwnershipGenerator(),
    ViewGenerator(),
    FunctionGenerator(),
    AggregateGenerator(),
    ConstraintGenerator(),
    IndexGenerator(),
    TriggerGenerator(),
    PolicyGenerator(),
    PublicationGenerator(),
    PublicationMemberGenerator(),
    PrivilegeGenerator(),
    # Last: a default privilege the source adds applies only to objects created after it, which the plan grants
    # explicitly; one it drops comes first among the drops.
    DefaultPrivilegeGenerator(),
)
_BY_KIND = {g.kind: g for g in GENERATORS}
# Kinds that carry their own dependency rules.
DECLARED: tuple[DeclaredGenerator, ...] = tuple(g for g in GENERATORS if isinstance(g, DeclaredGenerator))
# Kinds recreated when something they depend on goes away.
_RECREATABLE = frozenset(
    {"view", "function", "constraint", "index", "trigger", "privilege"}
    | {g.kind for g in DECLARED if g.recreates_dependants}
)
# Kinds the diff compares field by field (the planner's own kinds, memberships and ownerships, are compared whole).
_DIFFED = frozenset(KINDS)
# Types changed by rename, create, cast the columns, drop the old type.
_RECAST_TYPES = frozenset({"enum", "domain", "composite_type", "range_type"})
# Kinds that break when a column they use changes type.
_COLUMN_USERS = frozenset({"view", "policy", "trigger"})


def objects(schema: Schema, kind: str) -> dict[str, Any]:
    """Every object of one kind, by key (columns, memberships and ownerships are derived)."""
    if kind == "column":
        quoted: dict[str, str] = {}  # column names repeat across tables: quote each once
        out: dict[str, ColumnRef] = {}
        for t in schema.tables:
            for c in t.columns:
                name = quoted.get(c.name)
                if name is None:
                    name = quoted[c.name] = quote_ident(c.name)
                key = f"{t.key}.{name}"
                out[key] = ColumnRef(t, c, key)
        return out
    if kind == "membership":
        return {m.key: m for t in schema.tables for m in memberships(t)}
    if kind == "sequence_owner":
        return {s.key: Ownership(s.key, s.owned_by) for s in schema.sequences if s.owned_by}
    return schema.by_key(kind)


def _same(kind: str, key: str, old: Any, new: Any, equivalences: Equivalences) -> bool:
    """Equal, or different only in what the diff forgives between these two databases (so plan and compare
    agree: a plan is empty exactly when the comparison is in sync)."""
    if kind == "column":
        if old.column == new.column:  # the same column: the same once `comparable` too (the common case, cheaper)
            return True
        old, new = old.comparable(), new.comparable()
    if old == new:
        return True
    return kind in _DIFFED and not field_changes(kind, old, new, equivalences, key)


def _loses_local(t_objs: dict[str, dict[str, Any]], s_objs: dict[str, dict[str, Any]], key: str, ctx: Context) -> bool:
    """A column of its own that must become one only inherited from a parent that does not have it yet."""
    old, new = t_objs["column"][key], s_objs["column"][key]
    return bool(new.column.inherited and not old.column.inherited and not ColumnGenerator.parent_has(new, ctx))


def with_platform_grants(source: Schema, target: Schema) -> Schema:
    """The source as the plan builds it, for grants to platform roles (never revoked, see `missing_platform_grants`):
    the target's kept on every object the source still has, so that an object the plan recreates gets them back
    (Supabase's grants to anon and authenticated on a view rebuilt from 18's text on 15, say), widened by what the
    source grants beyond them (a new table's grants to authenticated from the app's migrations)."""
    if not any(p.platform for p in (*source.privileges, *target.privileges)):
        return source
    relations: list[Table | View] = [*source.tables, *source.views]
    existing = {o.key for o in source} | {member_key(r.key, c.name) for r in relations for c in r.columns}
    own = {p.key for p in (*source.privileges, *target.privileges) if not p.platform}  # the app's on either side
    kept = {p.key: p for p in source.privileges if p.key in own}
    # An identity column's sequence is no object of its own: its grants stay (it goes with its table when dropped).
    modeled = {q.key for q in target.sequences}
    existing |= {p.object for p in target.privileges if p.object_kind == "SEQUENCE" and p.object not in modeled}
    kept |= {p.key: p for p in target.privileges if p.platform and p.object in existing and p.key not in own}
    wider = missing_platform_grants(source.by_key("privilege"), target.by_key("privilege"))
    kept |= {k: p for k, p in wider.items() if k not in own}
    return dataclasses.replace(source, privileges=tuple(sorted(kept.values(), key=lambda p: p.key)))


def plan_migration(source: Schema, target: Schema, *, allow_data_loss: bool = False, online: bool = False) -> Plan:
    """The statements that make `target` equal `source` (pure: reads the two models, touches no database)."""
    source, target = without_unshared_privileges(source, target)
    source = with_platform_grants(source, target)
    ctx = Context(source=source, target=target, online=online, equivalences=equivalences_for(source, target))
    kinds = [g.kind for g in GENERATORS]
    s_objs = {k: objects(source, k) for k in kinds}
    t_objs = {k: objects(target, k) for k in kinds}
    for k in kinds:
        if k != "privilege":  # grants to platform roles stay in the source: see `with_platform_grants`
            s_objs[k], t_objs[k] = comparable_objects(k, s_objs[k], t_objs[k])
    s_graph, t_graph = DependencyGraph(source, s_objs, DECLARED), DependencyGraph(target, t_objs, DECLARED)
    for seq in target.sequences:
        # A sequence OWNED BY a column is dropped with it, unless the source keeps it under another owner.
        kept = s_objs["sequence"].get(seq.key)
        if seq.owned_by and (kept is None or kept.owned_by == seq.owned_by):
            t_graph.contain(("sequence", seq.key), ("column", seq.owned_by), depend=False)

    added: set[Node] = set()
    removed: set[Node] = set()
    changed: set[Node] = set()
    for k in kinds:
        for key in s_objs[k].keys() - t_objs[k].keys():
            added.add((k, key))
        for key in t_objs[k].keys() - s_objs[k].keys():
            removed.add((k, key))
        for key in s_objs[k].keys() & t_objs[k].keys():
            if not _same(k, key, t_objs[k][key], s_objs[k][key], ctx.equivalences) or (
                k == "column" and _loses_local(t_objs, s_objs, key, ctx)
            ):
                changed.add((k, key))
    recreated = {n for n in changed if _BY_KIND[n[0]].alter(t_objs[n[0]][n[1]], s_objs[n[0]][n[1]], ctx) is None}

    # What breaks in place: columns changing type, types recreated by rename-and-cast (with the domains and composite
    # types over them, rebuilt in the same step: `rebuilt_with`).
    breaking: set[Node] = set()
    rebuilt_with: dict[Node, list[Node]] = {}
    for kind, key in changed - recreated:
        if kind == "column":
            old, new = t_objs[kind][key].column, s_objs[kind][key].column
            if (old.type, old.collation) != (new.type, new.collation):
                breaking.add((kind, key))
        if kind in _RECAST_TYPES and renames_and_recasts(kind, t_objs[kind][key], s_objs[kind][key], ctx):
            breaking.add((kind, key))
            rebuilt_with[(kind, key)] = dependent_type_nodes(key, ctx)
            breaking.update(rebuilt_with[(kind, key)])
            for type_key in (key, *types_over(key, ctx)):
                for t, c in ctx.columns_of_type(target, type_key):
                    breaking.add(("column", f"{t.key}.{quote_ident(c.name)}"))

    gone = removed | recreated
    reset_defaults: set[Node] = set()
    implicit: set[Node] = set()
    work = list(gone | breaking)
    while work:
        node = work.pop()
        for child in t_graph.children.get(node, ()):
            if node in gone and child not in gone:
                gone.add(child)
                implicit.add(child)
                if child[1] in s_objs[child[0]]:
                    recreated.add(child)
                work.append(child)
        for dep in t_graph.dependants.get(node, ()):
            if dep[0] == "column" and node in gone and node[0] in ("function", "sequence") and dep not in gone:
                old_col, new_col = t_objs["column"].get(dep[1]), s_objs["column"].get(dep[1])
                if old_col and new_col and old_col.column.default is not None:
                    if old_col.column.default == new_col.column.default:
                        reset_defaults.add(dep)  # the default goes while its function is recreated
            if dep not in gone and node in breaking and ColumnGenerator.computed_from(dep, t_objs["column"]):
                gone.add(dep)  # a generated column cannot outlive a type change of a column it reads
                if dep[1] in s_objs["column"]:
                    recreated.add(dep)
                work.append(dep)
            if dep in gone or dep[0] not in _RECREATABLE:
                continue
            if node not in gone and node[0] == "column" and dep[0] not in _COLUMN_USERS:
                continue
            gone.add(dep)
            if dep[1] in s_objs[dep[0]]:
                recreated.add(dep)
            work.append(dep)
    # A child whose parent goes too is dropped with it: no statement of its own.
    for node in list(gone):
        if any(a in gone for a in t_graph.ancestors(node)):
            implicit.add(node)
    dropped_tables = {key for kind, key in gone if kind == "table"}
    implicit -= {("constraint", k) for k in foreign_key_cycle_breakers(target.constraints, dropped_tables)}
    ctx.gone = gone
    ctx.created_tables = {key for kind, key in added | recreated if kind == "table"}

    steps: list[Step] = []
    drop_step: dict[Node, str] = {}
    removing: dict[Node, list[str]] = defaultdict(list)
    building: dict[Node, list[str]] = defaultdict(list)

    def add_step(step_id: str, statements: list[Statement]) -> Step | None:
        if not statements:
            return None
        step = Step(step_id, statements)
        steps.append(step)
        return step

    # Drops, in reverse creation order.
    for k in reversed(kinds):
        for key in sorted(key for kind, key in gone if kind == k):
            node = (k, key)
            if node in implicit:
                continue
            step = add_step(f"drop {k} {key}", _BY_KIND[k].drop(t_objs[k][key], ctx))
            if step:
                drop_step[node] = step.id
                removing[node].append(step.id)

    # A new function starts with PostgreSQL's default grant (EXECUTE to PUBLIC): plan from that, not from nothing.
    baselines: dict[str, Privilege] = {}
    for kind, key in added | recreated:
        if kind == "function":
            f = s_objs[kind][key]
            default = Privilege("PROCEDURE" if f.kind == "PROCEDURE" else "FUNCTION", key, "PUBLIC", ("EXECUTE",))
            baselines[default.key] = default

    created_parents = {("table", key) for key in ctx.created_tables}
    identity_releases: list[str] = []  # steps that free an identity sequence's name
    for k in kinds:
        for key in sorted(key for kind, key in (added | recreated) if kind == k):
            node = (k, key)
            if k in ("column", "membership") and any(a in created_parents for a in s_graph.ancestors(node)):
                continue  # part of CREATE TABLE
            if k == "privilege" and key in baselines:
                statements = _BY_KIND[k].alter(baselines[key], s_objs[k][key], ctx) or []
            else:
                statements = _BY_KIND[k].create(s_objs[k][key], ctx)
            step = add_step(f"create {k} {key}", statements)
            if step:
                building[node].append(step.id)
        for key in sorted(key for kind, key in changed - recreated if kind == k):
            node = (k, key)
            statements = _BY_KIND[k].alter(t_objs[k][key], s_objs[k][key], ctx) or []
            release = ColumnGenerator.identity_release(t_objs[k][key], s_objs[k][key]) if k == "column" else []
            released = add_step(f"unset {k} {key}", [s for s in statements if s in release])
            step = add_step(f"alter {k} {key}", [s for s in statements if s not in release])
            if released:
                removing[node].append(released.id)
                identity_releases.append(released.id)
            if step:
                building[node].append(step.id)
                if released:  # the old sequence goes in between, the new identity may take its name
                    step.after.add(released.id)
                    step.after.update(drop_step[d] for d in t_graph.deps.get(node, ()) if d in drop_step)
                else:
                    removing[node].append(step.id)

    for node in sorted(reset_defaults):
        ref = s_objs["column"][node[1]]
        col = f"ALTER TABLE {ref.table.key} ALTER COLUMN {quote_ident(ref.column.name)}"
        unset = add_step(f"unset column {node[1]}", [Statement(sql=f"{col} DROP DEFAULT")])
        reset = add_step(f"reset column {node[1]}", [Statement(sql=f"{col} SET DEFAULT {ref.column.default}")])
        if unset and reset:
            removing[node].append(unset.id)
            building[node].append(reset.id)
            reset.after.add(unset.id)

    for key, default in sorted(baselines.items()):
        if key not in s_objs["privilege"]:  # the source revoked the default grant
            step = add_step(f"alter privilege {key}", _BY_KIND["privilege"].drop(default, ctx))
            if step:
                step.after.update(building.get(("function", default.object), ()))

    for step in steps:
        if step.id.startswith("create sequence "):  # it may take the name an identity sequence frees
            step.after.update(identity_releases)
    # A rebuilt chain's types are built by their root type's step: what uses them goes before it and comes after it.
    by_id = {step.id: step for step in steps}
    for root, chain in rebuilt_with.items():
        for step_id in building.get(root, ()):
            for node in chain:
                building[node].append(step_id)
                by_id[step_id].after.update(drop_step[d] for d in t_graph.dependants.get(node, ()) if d in drop_step)
    column_table = {key: ref.table.key for k in (t_objs, s_objs) for key, ref in k["column"].items()}
    _link(steps, s_graph, t_graph, drop_step, removing, building, gone, column_table, ctx)
    statements = [s for step in order_steps(steps) for s in step.statements]
    if online:  # every statement gives up instead of queueing behind long transactions
        timeout = ctx.lock_timeout_ms
        statements = [s if s.lock_timeout_ms else s.model_copy(update={"lock_timeout_ms": timeout}) for s in statements]
    return Plan(statements=tuple(statements), allow_data_loss=allow_data_loss, online=online)


def _split(step_id: str) -> tuple[str, Node]:
    action, kind, key = step_id.split(" ", 2)
    return action, (kind, key)


def _link(
    steps: list[Step],
    s_graph: DependencyGraph,
    t_graph: DependencyGraph,
    drop_step: dict[Node, str],
    removing: dict[Node, list[str]],
    building: dict[Node, list[str]],
    gone: set[Node],
    column_table: dict[str, str],
    ctx: Context,
) -> None:
    """Add the ordering edges between steps."""
    drops_by_key: dict[str, list[str]] = defaultdict(list)
    for node, sid in drop_step.items():
        drops_by_key[node[1]].append(sid)
    table_member_drops: dict[str, list[str]] = defaultdict(list)  # constraint/index drops per table
    detaches: dict[str, list[str]] = defaultdict(list)  # membership drops per parent table
    detached: dict[str, list[str]] = defaultdict(list)  # membership drops per child table
    for (kind, key), sid in drop_step.items():
        parent = t_graph.parent.get((kind, key))
        if kind in ("constraint", "index") and parent:
            table_member_drops[parent[1]].append(sid)
        if kind == "membership":
            child, parent_table = key.split(" -> ", 1)
            detaches[parent_table].append(sid)
            detached[child].append(sid)

    def with_ancestors(graph: DependencyGraph, node: Node) -> list[Node]:
        return [node, *graph.ancestors(node)]

    def subtree(graph: DependencyGraph, node: Node) -> list[Node]:
        out, todo = [], [node]
        while todo:
            n = todo.pop()
            out.append(n)
            todo.extend(graph.children.get(n, ()))
        return out

    for step in steps:
        action, node = _split(step.id)
        kind, key = node
        if action == "drop":
            inside = subtree(t_graph, node)
            for n in inside:
                for dep in t_graph.dependants.get(n, ()):
                    if dep in inside:
                        continue
                    step.after.update(removing.get(dep, ()))
                    if dep not in drop_step:  # dropped with its table: after that table's drop
                        owner = next((a for a in t_graph.ancestors(dep) if a in drop_step), None)
                        if owner is not None and owner not in inside:
                            step.after.add(drop_step[owner])
        if action in ("create", "alter", "reset"):
            # A new table's statement holds its columns: it needs what they need.
            parts = [node] + (
                [n for n in s_graph.children.get(node, ()) if n[0] in ("column", "membership")]
                if action == "create" and kind == "table"
                else []
            )
            for part in parts:
                for on in s_graph.deps.get(part, ()):
                    if on == node or on in parts:
                        continue
                    for n in with_ancestors(s_graph, on):
                        step.after.update(building.get(n, ()))
            step.after.update(drops_by_key.get(key, ()))
        if action == "alter":
            # Whatever depends on this object and goes away must go first.
            for dep in t_graph.dependants.get(node, ()):
                if dep in gone and dep in drop_step:
                    step.after.add(drop_step[dep])
            if kind in _RECAST_TYPES:  # columns leaving the type go before the old type is dropped
                for t, c in ctx.columns_of_type(ctx.target, key):
                    col = ("column", f"{t.key}.{quote_ident(c.name)}")
                    src = ctx.source_tables.get(t.key)
                    src_col = src.column(c.name) if src else None
                    if src_col is None or base_type(src_col.type) != key:
                        step.after.update(removing.get(col, ()))
        if kind == "column" and action in ("drop", "alter"):
            table = column_table[key]
            step.after.update(table_member_drops.get(table, ()))
            step.after.update(detached.get(table, ()))
            for dep in t_graph.dependants.get(node, ()):
                if dep in drop_step:
                    step.after.add(drop_step[dep])
        if kind == "column" and action == "create":
            step.after.update(detaches.get(column_table[key], ()))
        step.after.discard(step.id)


__all__ = ["plan_migration"]
