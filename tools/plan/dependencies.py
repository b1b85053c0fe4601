"""The dependency graph of one schema: what each object depends on, and what contains what.

Edges come from the catalog's `pg_depend` (read by the introspection into `Schema.dependencies`) plus
what the model knows and pg_depend does not say directly: a column's type, a table's parents, a foreign
key's referenced table and unique index, a trigger's function, a grant's object. Containment (a column,
index, constraint, trigger, policy or grant inside its table) says what is dropped along with its parent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pgshift.tools.model import Schema
from pgshift.tools.plan.context import Node, base_type
from pgshift.tools.sql import quote_ident

if TYPE_CHECKING:
    from pgshift.tools.plan.kinds import DeclaredGenerator

_PRIVILEGE_KINDS = {
    "TABLE": "table",
    "VIEW": "view",
    "MATERIALIZED VIEW": "view",
    "SEQUENCE": "sequence",
    "FUNCTION": "function",
    "PROCEDURE": "function",
    "SCHEMA": "schema",
    "COLUMN": "column",
}


def signature_types(arguments: str, result: str | None) -> set[str]:
    """The types a function signature names, as format_type prints them (`VARIADIC v public.r[]` -> `public.r`):
    each argument's or result column's last words, every suffix tried (a type name may hold a space)."""
    parts = arguments.split(", ") if arguments else []
    if result:
        result = result.removeprefix("SETOF ")
        parts += result[len("TABLE(") : -1].split(", ") if result.startswith("TABLE(") else [result]
    out: set[str] = set()
    for part in parts:
        words = base_type(part.strip()).split(" ")
        out |= {" ".join(words[i:]) for i in range(len(words))}
    return out


class DependencyGraph:
    """Dependencies of one schema: node -> nodes it depends on, and the reverse; parents of contained objects."""

    def __init__(
        self, schema: Schema, objs: dict[str, dict[str, Any]], declared: Iterable[DeclaredGenerator] = ()
    ) -> None:
        self.deps: dict[Node, set[Node]] = defaultdict(set)
        self.dependants: dict[Node, set[Node]] = defaultdict(set)
        self.parent: dict[Node, Node] = {}
        self.children: dict[Node, set[Node]] = defaultdict(set)
        relations = {t.key: "table" for t in schema.tables} | {v.key: "view" for v in schema.views}
        types = {
            o.key: kind
            for kind in ("enum", "domain", "composite_type", "range_type")
            for o in objs.get(kind, {}).values()
        }
        functions_by_name: dict[str, list[str]] = defaultdict(list)
        for f in schema.functions:
            functions_by_name[f.key.split("(", 1)[0]].append(f.key)

        def rel(key: str) -> Node:
            return (relations.get(key, "table"), key)

        # A multirange is its range type's (created, renamed and dropped with it).
        multiranges = {r.multirange: r.key for r in objs.get("range_type", {}).values() if r.multirange}

        def type_nodes(type_name: str) -> list[Node]:
            key = multiranges.get(base_type(type_name), base_type(type_name))
            kind = types.get(key)
            return [(kind, key)] if kind else []

        quoted: dict[str, str] = {}  # column names repeat across tables: quote each once

        def column_key(relation_key: str, name: str) -> str:
            q = quoted.get(name)
            if q is None:
                q = quoted[name] = quote_ident(name)
            return f"{relation_key}.{q}"

        column_relation = {
            column_key(r.key, c.name): (kind, r.key)
            for kind, rels in (("table", schema.tables), ("view", schema.views))
            for r in rels
            for c in r.columns
        }
        for d in schema.dependencies:
            if d.kind == "sequence" and d.on_kind == "column":
                continue  # OWNED BY: modelled as the sequence_owner step, not as an ordering constraint
            on: Node = (d.on_kind, d.on_key)
            self._add((d.kind, d.key), on)
            if d.on_kind == "column" and column_relation.get(d.on_key, ("table", ""))[0] == "view":
                self._add((d.kind, d.key), column_relation[d.on_key])  # a view's columns are the view
        for kind in ("enum", "domain", "composite_type", "sequence", "table", "view", "function", "collation"):
            for o in objs[kind].values():
                self._add((kind, o.key), ("schema", quote_ident(o.schema)))
        for dom in schema.domains:
            for n in type_nodes(dom.base_type):
                self._add(("domain", dom.key), n)
        for ct in schema.composite_types:
            for a in ct.attributes:
                for n in type_nodes(a.type):
                    self._add(("composite_type", ct.key), n)
        for t in schema.tables:
            for parent in (*t.inherits, *([t.partition_of] if t.partition_of else [])):
                self._add(("table", t.key), ("table", parent))
            for c in t.columns:
                node = ("column", column_key(t.key, c.name))
                self.contain(node, ("table", t.key))
                for n in type_nodes(c.type):
                    self._add(node, n)
                if c.collation and c.collation in objs["collation"]:
                    self._add(node, ("collation", c.collation))
        for m in objs["membership"].values():
            self._add(("membership", m.key), ("table", m.child))
            self._add(("membership", m.key), ("table", m.parent))
            self.contain(("membership", m.key), ("table", m.child))
        for s in schema.sequences:
            if s.owned_by:
                self._add(("sequence_owner", s.key), ("sequence", s.key))
                self._add(("sequence_owner", s.key), ("column", s.owned_by))
                self.contain(("sequence_owner", s.key), ("sequence", s.key))
        unique_of: dict[str, list[Node]] = defaultdict(list)
        for con in schema.constraints:
            if con.type in ("PRIMARY KEY", "UNIQUE"):
                unique_of[con.table].append(("constraint", con.key))
        for i in schema.indexes:
            if i.unique:
                unique_of[i.table].append(("index", i.key))
        for con in schema.constraints:
            self.contain(("constraint", con.key), rel(con.table))
            if con.references:
                self._add(("constraint", con.key), rel(con.references))
                for n in unique_of[con.references]:
                    self._add(("constraint", con.key), n)
            if con.index:
                self.contain(("index", con.index), ("constraint", con.key))
        constraint_indexes = {c.index for c in schema.constraints}
        for i in schema.indexes:
            if i.key not in constraint_indexes:
                self.contain(("index", i.key), rel(i.table))
            if i.parent_index:
                # The partitioned index is created after its partitions' indexes (it attaches them).
                self._add(("index", i.parent_index), ("index", i.key))
                self.parent[("index", i.key)] = ("index", i.parent_index)
                self.children[("index", i.parent_index)].add(("index", i.key))
        ranges = {r.key for r in objs.get("range_type", {}).values()} | multiranges.keys()
        for f in objs.get("function", {}).values():  # pg_depend as read names no range type: the signature does
            for key in signature_types(f.identity_arguments, f.result) & ranges:
                self._add(("function", f.key), ("range_type", multiranges.get(key, key)))
        for tr in schema.triggers:
            self.contain(("trigger", tr.key), rel(tr.table))
            for fkey in functions_by_name.get(tr.function.split("(", 1)[0], []):
                self._add(("trigger", tr.key), ("function", fkey))
        for pr in schema.privileges:
            object_kind = _PRIVILEGE_KINDS.get(pr.object_kind) or types.get(pr.object)
            if object_kind:
                self.contain(("privilege", pr.key), (object_kind, pr.object))
            if pr.object_kind == "COLUMN" and pr.object in column_relation:
                # A table-level REVOKE also revokes column grants: column grants come after table grants.
                rel_key = column_relation[pr.object][1]
                for label in ("TABLE", "VIEW", "MATERIALIZED VIEW"):
                    self._add(("privilege", pr.key), ("privilege", f"{label} {rel_key} TO {pr.grantee}"))
        for generator in declared:  # kinds that carry their own rules
            for obj in objs.get(generator.kind, {}).values():
                for on, inside in generator.depends_on(obj):
                    if inside:
                        self.contain((generator.kind, obj.key), on)
                    else:
                        self._add((generator.kind, obj.key), on)

    def _add(self, node: Node, on: Node) -> None:
        if node != on:
            self.deps[node].add(on)
            self.dependants[on].add(node)

    def contain(self, node: Node, parent: Node, *, depend: bool = True) -> None:
        if depend:
            self._add(node, parent)
        self.parent.setdefault(node, parent)
        self.children[parent].add(node)

    def ancestors(self, node: Node) -> list[Node]:
        out: list[Node] = []
        while node in self.parent and len(out) < 10:
            node = self.parent[node]
            out.append(node)
        return out
