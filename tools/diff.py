"""One generic keyed diff of two schema models (pure: no I/O).

Direction: the diff says how `target` differs from `source`, i.e. what must change in the target to make
it equal the source (compare "local" as source with "production" as target: the changes to ship).
- `added`: the object is in the source and missing from the target (to create there);
- `removed`: the object is in the target and not in the source (to drop there);
- `changed`: both have it; each `FieldChange` goes from `before` (the target's value) to `after` (the source's).

Columns are their own kind (keyed `schema.table.column`), compared outside their table; the columns of a
table that is itself added or removed are not listed again. A column's position is not compared (columns
are matched by name). Changes come out sorted by kind (in the order of `tools.model.KINDS`, which is
creation order) then key, so the output is deterministic.

Version noise is forgiven only where the two servers' versions can print the same schema differently
(`equivalences_for`): view queries as PostgreSQL 15 and 16+ print them, and NOT NULL constraint names
when one side is older than 18. Everything else is compared exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from tools.errors import ConfigError
from tools.model import KINDS, Schema, Table, member_key

ChangeType = Literal["added", "removed", "changed"]


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    before: Any  # the target's value
    after: Any  # the source's value


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # one of KINDS
    key: str  # the object's qualified key
    change: ChangeType
    source: Any = None  # the object as it is in the source (None when removed): what the target should become
    target: Any = None  # the object as it is in the target (None when added)
    fields: tuple[FieldChange, ...] = ()  # for "changed": the fields that differ, in model field order
    table: str | None = None  # for kind "column": key of its table


@dataclass(frozen=True, slots=True)
class SchemaDiff:
    changes: tuple[Change, ...]

    @property
    def in_sync(self) -> bool:
        return not self.changes

    def summary(self) -> dict[str, int]:
        """Counts of added / removed / changed objects."""
        counts = {"added": 0, "removed": 0, "changed": 0}
        for c in self.changes:
            counts[c.change] += 1
        return counts

    def of_kind(self, kind: str) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.kind == kind)


def check_kinds(kinds: Iterable[str]) -> list[str]:
    """The kinds, validated against KINDS (ConfigError naming the valid ones otherwise)."""
    kinds = list(kinds)
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ConfigError(f"unknown object kind(s) {', '.join(unknown)}; valid kinds: {', '.join(KINDS)}")
    return kinds


def diff_schemas(source: Schema, target: Schema, *, kinds: Collection[str] | None = None) -> SchemaDiff:
    """What must change in `target` to equal `source`, for the given kinds (default: all of KINDS)."""
    selected = set(check_kinds(kinds)) if kinds is not None else set(KINDS)
    equivalences = equivalences_for(source, target)
    changes: list[Change] = []
    for kind in KINDS:
        if kind not in selected:
            continue
        if kind == "column":
            changes.extend(_diff_columns(source, target, equivalences))
        else:
            changes.extend(_diff_keyed(kind, source.by_key(kind), target.by_key(kind), equivalences))
    return SchemaDiff(tuple(changes))


def equivalences_for(source: Schema, target: Schema) -> dict[tuple[str, str], Callable[[Any, Any], bool]]:
    """Field comparisons that must forgive how the two servers' versions print or store the same schema.

    A version of 0 (unknown) counts as "could be anything": every equivalence applies.
    """
    versions = (source.server_version_num, target.server_version_num)
    low, high = min(versions), max(versions)
    unknown = low == 0
    out: dict[tuple[str, str], Callable[[Any, Any], bool]] = {}
    if unknown or low < 160000 <= high:  # pg_get_viewdef stopped qualifying single-table columns in 16
        out[("view", "definition")] = _same_view_sql
    if unknown or low < 180000:  # NOT NULL constraints have names from 18 on: nothing to compare with
        out[("column", "not_null_name")] = _always_same
    return out


def _always_same(before: Any, after: Any) -> bool:
    return True


def _diff_keyed(
    kind: str,
    src: dict[str, Any],
    tgt: dict[str, Any],
    equivalences: dict[tuple[str, str], Callable[[Any, Any], bool]],
    table: str | None = None,
) -> list[Change]:
    out: list[Change] = []
    # A table's equality would compare its columns, diffed on their own: go field by field instead.
    field_by_field = kind in _SKIPPED
    for key in sorted(src.keys() | tgt.keys()):
        s = src.get(key)
        t = tgt.get(key)
        if t is None:
            out.append(Change(kind, key, "added", source=s, table=table))
        elif s is None:
            out.append(Change(kind, key, "removed", target=t, table=table))
        elif field_by_field or s != t:
            fields = field_changes(kind, t, s, equivalences)
            if fields:
                out.append(Change(kind, key, "changed", source=s, target=t, fields=fields, table=table))
    return out


def _diff_columns(
    source: Schema, target: Schema, equivalences: dict[tuple[str, str], Callable[[Any, Any], bool]]
) -> list[Change]:
    """Columns of tables present on both sides (an added or removed table carries its columns)."""
    src_tables: dict[str, Table] = {t.key: t for t in source.tables}
    tgt_tables: dict[str, Table] = {t.key: t for t in target.tables}
    out: list[Change] = []
    for key in sorted(src_tables.keys() & tgt_tables.keys()):
        s, t = src_tables[key], tgt_tables[key]
        if s.columns == t.columns:
            continue
        out.extend(
            _diff_keyed(
                "column",
                {member_key(key, c.name): c for c in s.columns},
                {member_key(key, c.name): c for c in t.columns},
                equivalences,
                table=key,
            )
        )
    return out


# Fields that are not compared: a table's columns are diffed as their own kind.
_SKIPPED: dict[str, frozenset[str]] = {"table": frozenset({"columns"})}


def field_changes(
    kind: str,
    before: Any,
    after: Any,
    equivalences: dict[tuple[str, str], Callable[[Any, Any], bool]] | None = None,
) -> tuple[FieldChange, ...]:
    """The fields that differ between two versions of one object, equivalences applied (default: all)."""
    if equivalences is None:
        equivalences = _EQUIVALENT
    skipped = _SKIPPED.get(kind, frozenset())
    out = []
    for f in dataclasses.fields(before):
        if not f.compare or f.name in skipped:
            continue
        b, a = getattr(before, f.name), getattr(after, f.name)
        if b == a:
            continue
        same = equivalences.get((kind, f.name))
        if same is not None and same(b, a):
            continue
        out.append(FieldChange(f.name, b, a))
    return tuple(out)


@lru_cache(maxsize=4096)
def canonical_view_sql(sql: str) -> str:
    """A view query in a form that PostgreSQL 15 and 16+ print alike.

    Up to 15 pg_get_viewdef qualifies every column of a single-table view (`products.name`); from 16 it
    does not (`name`). Remove the qualifier where the top-level query reads exactly one table. Text that
    does not parse is returned unchanged (then only identical text compares equal).
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(sql, read="postgres")
    except SqlglotError:
        return sql.strip()
    for select in [tree] if isinstance(tree, exp.Select) else []:
        from_ = select.args.get("from") or select.args.get("from_")
        if from_ is None or select.args.get("joins"):
            continue
        src = from_.this
        if not isinstance(src, exp.Table | exp.Subquery):
            continue
        name = src.alias_or_name
        for col in select.find_all(exp.Column):
            if col.table == name and _in_top_scope(col, select):
                col.set("table", None)
    return tree.sql(dialect="postgres")


def _in_top_scope(node: Any, top: Any) -> bool:
    """True when no subquery lies between `node` and `top`."""
    from sqlglot import exp

    parent = node.parent
    while parent is not None and parent is not top:
        if isinstance(parent, exp.Select | exp.Subquery):
            return False
        parent = parent.parent
    return True


def _same_view_sql(before: str, after: str) -> bool:
    return canonical_view_sql(before) == canonical_view_sql(after)


# Every equivalence (what `equivalences_for` gives when a version is unknown).
_EQUIVALENT: dict[tuple[str, str], Callable[[Any, Any], bool]] = {
    ("view", "definition"): _same_view_sql,
    ("column", "not_null_name"): _always_same,
}
