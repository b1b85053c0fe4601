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

Noise is forgiven only where two servers can print or hold the same schema differently (`equivalences_for`,
used by the diff and the planner alike, so that compare and plan always agree):
- versions: view queries as PostgreSQL 15 and 16+ print them; NOT NULL constraint names when one side is older
  than 18; an extension version the target cannot install (not in its `pg_available_extension_versions`), and
  two versions that are each server's default (what the same `CREATE EXTENSION` installs on each);
- Supabase: on a Supabase target, an extension in `extensions` there and in `public` in the source (where
  pgshift's own rewrite puts it), and every reference `extensions.x` there against `public.x` in the source;
  extensions and publications the platform installs for itself count only when the source has them and the target
  does not; the platform's grants (and default privileges) count only where the source grants more than the
  target has (never revoked: Supabase grants them by itself). Which objects are the platform's is decided once, in
  `tools.introspect.platform`; a grant to a platform role that is the app's own on either side is compared as it
  is. Drift compares a replay with the live database: `with_platform_state_of` gives the replay the live
  database's platform state first, so drift, adopt and revert see the app's objects only.
- privilege types one server lacks (MAINTAIN before 17) are left out on both sides.
Everything else is compared exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Any, Literal

from pgshift.tools.errors import ConfigError
from pgshift.tools.model import KINDS, Extension, Schema, Table, member_key
from pgshift.tools.sql import quote_ident

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
    source, target = without_unshared_privileges(source, target)
    equivalences = equivalences_for(source, target)
    changes: list[Change] = []
    for kind in KINDS:
        if kind not in selected:
            continue
        if kind == "column":
            changes.extend(_diff_columns(source, target, equivalences))
        else:
            src, tgt = comparable_objects(kind, source.by_key(kind), target.by_key(kind))
            changes.extend(_diff_keyed(kind, src, tgt, equivalences))
    return SchemaDiff(tuple(changes))


def comparable_objects(kind: str, src: dict[str, Any], tgt: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The objects of one kind to compare, by what their model class says of the platform's own (`PLATFORM`):
    - "granted" (privileges, default privileges): what is granted to platform roles counts only where the source
      grants more than the target has (`missing_platform_grants`): never revoked, never drift when the target has
      more (Supabase's own default grants), but granted when the app's migrations grant it and the target lacks it;
    - "installed" (extensions, publications): what the platform installed for itself is left out in the target
      when the source lacks it, and on both sides when both have it that way.
    A grant that is the app's own on either side (`platform` false: see `tools.introspect.platform`) is compared
    as it is on both.
    """
    rule = next((getattr(type(o), "PLATFORM", None) for o in (*src.values(), *tgt.values())), None)
    if rule == "granted":
        return _comparable_grants(src, tgt)
    if rule != "installed":
        return src, tgt
    ignored = {k for k, t in tgt.items() if t.platform and (k not in src or src[k].platform)}
    if not ignored:
        return src, tgt
    return {k: v for k, v in src.items() if k not in ignored}, {k: v for k, v in tgt.items() if k not in ignored}


def _comparable_grants(src: dict[str, Any], tgt: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    own_src: dict[str, Any] = {}
    own_tgt: dict[str, Any] = {}
    for key in src.keys() | tgt.keys():
        s, t = src.get(key), tgt.get(key)
        if (s is not None and not s.platform) or (t is not None and not t.platform):
            if s is not None:
                own_src[key] = s
            if t is not None:
                own_tgt[key] = t
        elif s is not None:
            wanted = missing_platform_grants({key: s}, tgt)
            if wanted:
                own_src[key] = wanted[key]
                if t is not None:
                    own_tgt[key] = t
    return own_src, own_tgt


def with_platform_state_of(platform: Schema, other: Schema) -> Schema:
    """`other` holding the platform state of `platform`, the database the platform really runs (drift: the live one,
    against the schema its migrations build): every key of a platform kind (extensions, publications, grants,
    default privileges) that neither side holds as the app's own, but one holds as the platform's, is made what
    `platform` has there (or absent, when `platform` lacks it). Compared and planned in either direction, the two
    then differ only by the app's objects, so drift, adopt and revert list the same ones."""
    fields = {"extensions": "extension", "publications": "publication"}
    fields |= {"privileges": "privilege", "default_privileges": "default_privilege"}
    changes: dict[str, Any] = {}
    for attr, kind in fields.items():
        mine, theirs = platform.by_key(kind), other.by_key(kind)
        out = dict(theirs)
        for key in mine.keys() | theirs.keys():
            p, o = mine.get(key), theirs.get(key)
            if (p is not None and not p.platform) or (o is not None and not o.platform):
                continue
            if p is not None:
                out[key] = p
            else:
                del out[key]
        if out != theirs:
            changes[attr] = tuple(out[k] for k in sorted(out))
    return dataclasses.replace(other, **changes) if changes else other


def missing_platform_grants(src: Mapping[str, Any], tgt: Mapping[str, Any]) -> dict[str, Any]:
    """The source's grants to platform roles that the target lacks in part or whole, each as the target's grant
    widened by what the source adds (so that a plan only ever grants, never revokes, to a platform role)."""
    out: dict[str, Any] = {}
    for key, wanted in src.items():
        if not wanted.platform:
            continue
        there = tgt.get(key)
        held = set(there.privileges) if there is not None else set()
        optioned = set(there.grantable) if there is not None else set()
        if set(wanted.privileges) <= held and set(wanted.grantable) <= optioned:
            continue
        out[key] = dataclasses.replace(
            there if there is not None else wanted,
            privileges=tuple(sorted(held | set(wanted.privileges))),
            grantable=tuple(sorted(optioned | set(wanted.grantable))),
        )
    return out


# Privilege types only newer servers have (PostgreSQL 17's MAINTAIN): (type, first version_num that has it).
_NEWER_PRIVILEGES: tuple[tuple[str, int], ...] = (("MAINTAIN", 170000),)


def without_unshared_privileges(source: Schema, target: Schema) -> tuple[Schema, Schema]:
    """Both schemas without the privilege types one of the two servers does not have (`GRANT ALL` gives MAINTAIN on
    17+ and cannot on 15): neither can be compared nor planned. A grant left with none is dropped."""
    low = min(source.server_version_num, target.server_version_num)
    unshared = frozenset(p for p, since in _NEWER_PRIVILEGES if 0 < low < since)
    if not unshared:
        return source, target
    return _without_privilege_types(source, unshared), _without_privilege_types(target, unshared)


def _without_privilege_types(schema: Schema, types: frozenset[str]) -> Schema:
    def strip(items: tuple[Any, ...]) -> tuple[Any, ...]:
        out = []
        for p in items:
            if types.isdisjoint(p.privileges) and types.isdisjoint(p.grantable):
                out.append(p)
                continue
            kept = tuple(x for x in p.privileges if x not in types)
            if kept or not p.privileges:
                out.append(
                    dataclasses.replace(p, privileges=kept, grantable=tuple(x for x in p.grantable if x in kept))
                )
        return tuple(out)

    return dataclasses.replace(
        schema, privileges=strip(schema.privileges), default_privileges=strip(schema.default_privileges)
    )


SUPABASE_EXTENSION_SCHEMA = "extensions"


@dataclass(frozen=True, slots=True)
class Equivalences:
    """What counts as the same between two particular databases (see the module docstring).

    `fields`: (kind, field) -> a comparison of the two values; `objects`: (kind, key, field) not compared at all;
    `relocated`: a schema whose qualified references read as `public` ones (Supabase's `extensions`).
    """

    fields: Mapping[tuple[str, str], Callable[[Any, Any], bool]]
    objects: frozenset[tuple[str, str, str]] = frozenset()
    relocated: str | None = None

    def same(self, kind: str, key: str, field: str, before: Any, after: Any) -> bool:
        """Whether two different values of one field count as the same."""
        if (kind, key, field) in self.objects:
            return True
        if self.relocated is not None:
            before, after = _relocated(before, self.relocated), _relocated(after, self.relocated)
            if before == after:
                return True
        check = self.fields.get((kind, field))
        return check is not None and check(before, after)


def equivalences_for(source: Schema, target: Schema) -> Equivalences:
    """What must be forgiven between these two databases: how their versions print or store the same schema,
    what the target cannot install, and where Supabase keeps what the source keeps in `public`.

    A version of 0 (unknown) counts as "could be anything": every version equivalence applies.
    """
    versions = (source.server_version_num, target.server_version_num)
    low, high = min(versions), max(versions)
    unknown = low == 0
    fields: dict[tuple[str, str], Callable[[Any, Any], bool]] = {}
    if unknown or low < 160000 <= high:  # pg_get_viewdef stopped qualifying single-table columns in 16
        fields[("view", "definition")] = _same_view_sql
    if unknown or low < 180000:  # NOT NULL constraints have names from 18 on: nothing to compare with
        fields[("column", "not_null_name")] = _always_same
    objects: set[tuple[str, str, str]] = set()
    relocated = False
    theirs = {e.key: e for e in target.extensions}
    for ext in source.extensions:
        there = theirs.get(ext.key)
        if there is None:
            continue
        if ext.version != there.version and _same_extension_version(ext, there, source, target):
            objects.add(("extension", ext.key, "version"))
        if target.supabase and (ext.schema, there.schema) == ("public", SUPABASE_EXTENSION_SCHEMA):
            objects.add(("extension", ext.key, "schema"))
            relocated = True
    return Equivalences(fields, frozenset(objects), SUPABASE_EXTENSION_SCHEMA if relocated else None)


def _same_extension_version(ext: Extension, there: Extension, source: Schema, target: Schema) -> bool:
    """Different versions that are the same schema: the target cannot install the source's one (it has the best
    it can), or each side has its own server's default (what the same `CREATE EXTENSION` gives on each)."""
    if not target.can_install(ext.name, ext.version):
        return True
    source_default = (ext.name, ext.version) in source.default_extensions
    return source_default and (there.name, there.version) in target.default_extensions


def _always_same(before: Any, after: Any) -> bool:
    return True


def _relocated(value: Any, schema: str) -> Any:
    """`value` with every reference qualified by `schema` read as qualified by `public` (strings, tuples and
    model values, recursively)."""
    if isinstance(value, str):
        return relocate_references(value, schema, "public") if schema in value else value
    if isinstance(value, tuple):
        return tuple(_relocated(v, schema) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        updates = {f.name: _relocated(getattr(value, f.name), schema) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **updates)
    return value


@lru_cache(maxsize=4096)
def relocate_references(sql: str, old: str, new: str) -> str:
    """`sql` with every name qualified by schema `old` (`old.x`, `"old".x`) qualified by `new` instead.

    Works on PostgreSQL's own tokens (pglast's scanner), so string literals and longer names are left alone.
    Text the scanner rejects is returned unchanged.
    """
    from pglast.parser import ParseError, scan

    try:
        tokens = scan(sql)
    except ParseError:
        return sql
    out: list[str] = []
    done = 0
    for this, following in pairwise(tokens):
        text = sql[this.start : this.end + 1]
        if this.name == "IDENT" and following.name == "ASCII_46" and text in (old, quote_ident(old), f'"{old}"'):
            out.append(sql[done : this.start] + quote_ident(new))
            done = this.end + 1
    return "".join(out) + sql[done:]


def _diff_keyed(
    kind: str,
    src: dict[str, Any],
    tgt: dict[str, Any],
    equivalences: Equivalences,
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
            fields = field_changes(kind, t, s, equivalences, key)
            if fields:
                out.append(Change(kind, key, "changed", source=s, target=t, fields=fields, table=table))
    return out


def _diff_columns(source: Schema, target: Schema, equivalences: Equivalences) -> list[Change]:
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
    kind: str, before: Any, after: Any, equivalences: Equivalences | None = None, key: str = ""
) -> tuple[FieldChange, ...]:
    """The fields that differ between two versions of the object `key`, equivalences applied (default: every
    version equivalence)."""
    if equivalences is None:
        equivalences = _EQUIVALENT
    skipped = _SKIPPED.get(kind, frozenset())
    out = []
    for f in dataclasses.fields(before):
        if not f.compare or f.name in skipped:
            continue
        b, a = getattr(before, f.name), getattr(after, f.name)
        if b == a or equivalences.same(kind, key, f.name, b, a):
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


# Every version equivalence (what `equivalences_for` gives when a version is unknown).
_EQUIVALENT = Equivalences({("view", "definition"): _same_view_sql, ("column", "not_null_name"): _always_same})
