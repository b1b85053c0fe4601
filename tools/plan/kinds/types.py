"""Enums, domains and composite types."""

from __future__ import annotations

from pgshift.tools.model import CompositeType, Domain, Enum, RangeType
from pgshift.tools.plan.context import Context, base_type
from pgshift.tools.plan.ddl import comment_on
from pgshift.tools.plan.statement import Hazard, HazardKind, Statement
from pgshift.tools.sql import qualified, quote_ident, quote_literal


def _values(values: tuple[str, ...]) -> str:
    return ", ".join(quote_literal(v) for v in values)


def _is_ordered_subset(old: tuple[str, ...], new: tuple[str, ...]) -> bool:
    """Whether `new` keeps every value of `old` in the same order (then ADD VALUE can express the change)."""
    positions = [new.index(v) if v in new else -1 for v in old]
    return all(p >= 0 for p in positions) and positions == sorted(positions)


class EnumGenerator:
    kind = "enum"

    def create(self, new: Enum, ctx: Context) -> list[Statement]:
        out = [Statement(sql=f"CREATE TYPE {new.key} AS ENUM ({_values(new.values)})", object=f"enum {new.key}")]
        if new.comment is not None:
            out.append(Statement(sql=comment_on(f"TYPE {new.key}", new.comment)))
        return out

    def drop(self, old: Enum, ctx: Context) -> list[Statement]:
        hazard = Hazard.of(HazardKind.DELETES_DATA, f"type {old.key} is dropped")
        return [Statement(sql=f"DROP TYPE {old.key}", hazards=(hazard,), object=f"enum {old.key}")]

    def alter(self, old: Enum, new: Enum, ctx: Context) -> list[Statement] | None:
        out: list[Statement] = []
        if old.values != new.values:
            if _is_ordered_subset(old.values, new.values):
                out += self._add_values(old, new)
            else:
                out += self._recreate(old, new, ctx)
        if old.comment != new.comment:
            out.append(Statement(sql=comment_on(f"TYPE {new.key}", new.comment)))
        return out

    def _add_values(self, old: Enum, new: Enum) -> list[Statement]:
        out = []
        present = set(old.values)
        for i, value in enumerate(new.values):
            if value in present:
                continue
            following = next((v for v in new.values[i + 1 :] if v in present), None)
            if following is not None:
                where = f" BEFORE {quote_literal(following)}"
            else:
                preceding = next(v for v in reversed(new.values[:i]) if v in present) if present else None
                where = f" AFTER {quote_literal(preceding)}" if preceding is not None else ""
            present.add(value)
            # A new enum value cannot be used in the transaction that adds it: run it alone, committed.
            out.append(
                Statement(
                    sql=f"ALTER TYPE {new.key} ADD VALUE {quote_literal(value)}{where}",
                    transactional=False,
                    object=f"enum {new.key}",
                )
            )
        return out

    def _recreate(self, old: Enum, new: Enum, ctx: Context) -> list[Statement]:
        """Values removed or reordered: rename the old type, create the new one, cast every column, drop the old."""
        old_name = f"{new.name}__pgshift_old"
        old_key = qualified(new.schema, old_name)
        removed = [v for v in old.values if v not in new.values]
        out = [
            Statement(sql=f"ALTER TYPE {old.key} RENAME TO {quote_ident(old_name)}", object=f"enum {new.key}"),
            Statement(sql=f"CREATE TYPE {new.key} AS ENUM ({_values(new.values)})", object=f"enum {new.key}"),
        ]
        out += recast_columns(old.key, new.key, "text", ctx)
        out += rebuild_types_over(old.key, ctx)
        hazards = (
            (Hazard.of(HazardKind.DELETES_DATA, f"values {', '.join(removed)} of {new.key} are removed"),)
            if removed
            else ()
        )
        out.append(Statement(sql=f"DROP TYPE {old_key}", hazards=hazards, object=f"enum {new.key}"))
        return out


def recast_columns(old_key: str, new_key: str, via: str, ctx: Context) -> list[Statement]:
    """Move every column of type `old_key` (or an array of it) to `new_key`, casting through `via`.

    Defaults are dropped first (they cannot be cast automatically) and set again from the source.
    Columns that change type or go away are left to their own generator.
    """
    out: list[Statement] = []
    for table, column in ctx.columns_of_type(ctx.target, old_key):
        if ("table", table.key) in ctx.gone:
            continue
        src_table = ctx.source_tables.get(table.key)
        src_col = src_table.column(column.name) if src_table else None
        if src_col is None or base_type(src_col.type) != new_key:
            continue
        name = quote_ident(column.name)
        col = f"ALTER TABLE {table.key} ALTER COLUMN {name}"
        dims = column.type[len(base_type(column.type)) :]
        if column.default is not None:
            out.append(Statement(sql=f"{col} DROP DEFAULT"))
        rewrite = Hazard.of(HazardKind.TABLE_REWRITE, f"{table.key}.{name} is cast to the new {new_key}")
        out.append(
            Statement(sql=f"{col} TYPE {new_key}{dims} USING {name}::{via}{dims}::{new_key}{dims}", hazards=(rewrite,))
        )
        if src_col.default is not None:
            out.append(Statement(sql=f"{col} SET DEFAULT {src_col.default}"))
    return out


def _built_on(obj: Domain | CompositeType) -> set[str]:
    """The types a domain or composite type is built on (element types of arrays)."""
    if isinstance(obj, Domain):
        return {base_type(obj.base_type)}
    return {base_type(a.type) for a in obj.attributes}


def _rebuilds_itself(old: Domain | CompositeType, new: Domain | CompositeType) -> bool:
    """Whether a domain or composite type changes so that its own step rebuilds it (then no chain rebuilds it)."""
    if isinstance(old, Domain) and isinstance(new, Domain):
        return (old.base_type, old.collation) != (new.base_type, new.collation)
    if isinstance(old, CompositeType) and isinstance(new, CompositeType):
        return _attribute_types_change(old, new)
    return True  # a domain became a composite type or back: not the same object


def dependent_types(type_key: str, ctx: Context) -> list[Domain | CompositeType]:
    """The source's domains and composite types that, in the target, are built on `type_key` directly or through
    one another (at any depth, arrays included) and that the source keeps: they are rebuilt along with the type.
    In creation order: each after the types of the chain it is built on."""
    built: dict[str, Domain | CompositeType] = {d.key: d for d in ctx.target.domains}
    built |= {c.key: c for c in ctx.target.composite_types}
    kept: dict[str, Domain | CompositeType] = {d.key: d for d in ctx.source.domains}
    kept |= {c.key: c for c in ctx.source.composite_types}
    users: dict[str, list[str]] = {}
    for key, obj in sorted(built.items()):
        for used in _built_on(obj):
            users.setdefault(used, []).append(key)
    chain: set[str] = set()
    work = [type_key]
    while work:
        for user in users.get(work.pop(), ()):
            if (
                user not in chain
                and user != type_key
                and user in kept
                and not _rebuilds_itself(built[user], kept[user])
            ):
                chain.add(user)
                work.append(user)
    ordered: list[Domain | CompositeType] = []
    placed: set[str] = set()

    def place(key: str) -> None:
        if key in placed:
            return
        placed.add(key)
        for used in sorted(_built_on(built[key]) | _built_on(kept[key])):
            if used in chain:
                place(used)
        ordered.append(kept[key])

    for key in sorted(chain):
        place(key)
    return ordered


def dependent_type_nodes(type_key: str, ctx: Context) -> list[tuple[str, str]]:
    """The planner's nodes for `dependent_types`: rebuilt in the step that rebuilds `type_key`."""
    return [("domain" if isinstance(t, Domain) else "composite_type", t.key) for t in dependent_types(type_key, ctx)]


def rebuild_types_over(type_key: str, ctx: Context) -> list[Statement]:
    """Rebuild the chain of domains and composite types over `type_key` (just recreated under its own name): set each
    aside and create the source's in creation order, cast their columns through text, drop the old ones last to
    first. Every old type is still in use until all the casts are done, so no drop comes earlier."""
    chain = dependent_types(type_key, ctx)
    ahead: list[Statement] = []
    casts: list[Statement] = []
    drops: list[Statement] = []
    for obj in chain:
        if isinstance(obj, Domain):
            aside, create, drop = DomainGenerator().rebuild_parts(obj, ctx)
        else:
            aside, create, drop = CompositeTypeGenerator().rebuild_parts(obj, ctx)
        ahead += [aside, *create]
        casts += recast_columns(obj.key, obj.key, "text", ctx)
        drops.insert(0, drop)
    return ahead + casts + drops


def types_over(type_key: str, ctx: Context) -> list[str]:
    """Keys of the domains and composite types rebuilt along with `type_key` (and of a range type's multirange)."""
    multiranges = [r.multirange for r in ctx.target.range_types if r.key == type_key and r.multirange]
    return [t.key for t in dependent_types(type_key, ctx)] + multiranges


def range_options_change(old: RangeType, new: RangeType) -> bool:
    """Whether a range type itself differs (not only its comment): none of its options can be altered in place."""
    return (old.subtype, old.subtype_opclass, old.collation, old.subtype_diff, old.multirange) != (
        new.subtype,
        new.subtype_opclass,
        new.collation,
        new.subtype_diff,
        new.multirange,
    )


def renames_and_recasts(kind: str, old: object, new: object, ctx: Context) -> bool:
    """Whether an enum, domain, composite or range type change goes through rename, create, cast the columns, drop
    the old type (a composite type in use by a table column cannot change an attribute's type in place)."""
    if isinstance(old, RangeType) and isinstance(new, RangeType):
        return range_options_change(old, new)
    if isinstance(old, CompositeType) and isinstance(new, CompositeType):
        return _attribute_types_change(old, new) and any(
            ctx.columns_of_type(ctx.target, key) for key in (old.key, *(t.key for t in dependent_types(old.key, ctx)))
        )
    if isinstance(old, Enum) and isinstance(new, Enum):
        return old.values != new.values and not _is_ordered_subset(old.values, new.values)
    if isinstance(old, Domain) and isinstance(new, Domain):
        return (old.base_type, old.collation) != (new.base_type, new.collation)
    return False


def _domain_constraint(key: str, name: str, definition: str, ctx: Context) -> list[Statement]:
    scan = Hazard.of(HazardKind.VALIDATION_SCAN, f"every column of domain {key} is checked")
    if ctx.online and not definition.endswith("NOT VALID"):
        return [
            Statement(sql=f"ALTER DOMAIN {key} ADD CONSTRAINT {quote_ident(name)} {definition} NOT VALID"),
            Statement(sql=f"ALTER DOMAIN {key} VALIDATE CONSTRAINT {quote_ident(name)}", hazards=(scan,)),
        ]
    return [Statement(sql=f"ALTER DOMAIN {key} ADD CONSTRAINT {quote_ident(name)} {definition}", hazards=(scan,))]


class DomainGenerator:
    kind = "domain"

    def create(self, new: Domain, ctx: Context) -> list[Statement]:
        collate = f" COLLATE {new.collation}" if new.collation else ""
        default = f" DEFAULT {new.default}" if new.default is not None else ""
        not_null = " NOT NULL" if new.not_null else ""
        checks = "".join(f" CONSTRAINT {quote_ident(c.name)} {c.definition}" for c in new.constraints if c.validated)
        out = [
            Statement(
                sql=f"CREATE DOMAIN {new.key} AS {new.base_type}{collate}{default}{not_null}{checks}",
                object=f"domain {new.key}",
            )
        ]
        for c in new.constraints:
            if not c.validated:
                out.append(Statement(sql=f"ALTER DOMAIN {new.key} ADD CONSTRAINT {quote_ident(c.name)} {c.definition}"))
        if new.comment is not None:
            out.append(Statement(sql=comment_on(f"DOMAIN {new.key}", new.comment)))
        return out

    def drop(self, old: Domain, ctx: Context) -> list[Statement]:
        return [Statement(sql=f"DROP DOMAIN {old.key}", object=f"domain {old.key}")]

    def alter(self, old: Domain, new: Domain, ctx: Context) -> list[Statement] | None:
        if renames_and_recasts("domain", old, new, ctx):
            return self._recreate(old, new, ctx)
        key = new.key
        out: list[Statement] = []
        if old.default != new.default:
            action = f"SET DEFAULT {new.default}" if new.default is not None else "DROP DEFAULT"
            out.append(Statement(sql=f"ALTER DOMAIN {key} {action}"))
        old_checks = {c.name: c for c in old.constraints}
        new_checks = {c.name: c for c in new.constraints}
        for name, c in old_checks.items():
            if new_checks.get(name) != c:
                out.append(Statement(sql=f"ALTER DOMAIN {key} DROP CONSTRAINT {quote_ident(name)}"))
        if old.not_null != new.not_null:
            if new.not_null:
                scan = Hazard.of(HazardKind.VALIDATION_SCAN, f"every column of domain {key} is checked for NULLs")
                out.append(Statement(sql=f"ALTER DOMAIN {key} SET NOT NULL", hazards=(scan,)))
            else:
                out.append(Statement(sql=f"ALTER DOMAIN {key} DROP NOT NULL"))
        for name, c in new_checks.items():
            if old_checks.get(name) != c:
                out += _domain_constraint(key, name, c.definition, ctx)
        if old.comment != new.comment:
            out.append(Statement(sql=comment_on(f"DOMAIN {key}", new.comment)))
        return out

    def _recreate(self, old: Domain, new: Domain, ctx: Context) -> list[Statement]:
        """A new base type or collation: rename the old domain, create the new one, cast the columns, drop the old."""
        return self.rebuild(new, new.base_type, ctx)

    def rebuild(self, new: Domain, via: str, ctx: Context) -> list[Statement]:
        """Rename the target's domain aside, create the source's, cast its columns through `via` (and rebuild the
        domains and composite types over it), drop the old."""
        aside, create, drop = self.rebuild_parts(new, ctx)
        return [aside, *create, *recast_columns(new.key, new.key, via, ctx), *rebuild_types_over(new.key, ctx), drop]

    def rebuild_parts(self, new: Domain, ctx: Context) -> tuple[Statement, list[Statement], Statement]:
        """Renaming the target's domain aside, creating the source's, dropping the old one."""
        old_name = f"{new.name}__pgshift_old"
        obj = f"domain {new.key}"
        aside = Statement(sql=f"ALTER DOMAIN {new.key} RENAME TO {quote_ident(old_name)}", object=obj)
        return aside, self.create(new, ctx), Statement(sql=f"DROP DOMAIN {qualified(new.schema, old_name)}", object=obj)


class CompositeTypeGenerator:
    kind = "composite_type"

    def create(self, new: CompositeType, ctx: Context) -> list[Statement]:
        attrs = ", ".join(
            f"{quote_ident(a.name)} {a.type}" + (f" COLLATE {a.collation}" if a.collation else "")
            for a in new.attributes
        )
        out = [Statement(sql=f"CREATE TYPE {new.key} AS ({attrs})", object=f"composite_type {new.key}")]
        if new.comment is not None:
            out.append(Statement(sql=comment_on(f"TYPE {new.key}", new.comment)))
        return out

    def drop(self, old: CompositeType, ctx: Context) -> list[Statement]:
        return [Statement(sql=f"DROP TYPE {old.key}", object=f"composite_type {old.key}")]

    def rebuild(self, new: CompositeType, ctx: Context) -> list[Statement]:
        """Rename the target's type aside, create the source's, cast its columns through text (and rebuild the
        domains and composite types over it), drop the old."""
        aside, create, drop = self.rebuild_parts(new, ctx)
        return [aside, *create, *recast_columns(new.key, new.key, "text", ctx), *rebuild_types_over(new.key, ctx), drop]

    def rebuild_parts(self, new: CompositeType, ctx: Context) -> tuple[Statement, list[Statement], Statement]:
        """Renaming the target's type aside, creating the source's, dropping the old one."""
        old_name = f"{new.name}__pgshift_old"
        obj = f"composite_type {new.key}"
        aside = Statement(sql=f"ALTER TYPE {new.key} RENAME TO {quote_ident(old_name)}", object=obj)
        return aside, self.create(new, ctx), Statement(sql=f"DROP TYPE {qualified(new.schema, old_name)}", object=obj)

    def alter(self, old: CompositeType, new: CompositeType, ctx: Context) -> list[Statement] | None:
        key = new.key
        if renames_and_recasts(self.kind, old, new, ctx):
            return self.rebuild(new, ctx)
        before = {a.name: a for a in old.attributes}
        after = {a.name: a for a in new.attributes}
        kept_old = [n for n in before if n in after]
        kept_new = [n for n in after if n in before]
        if kept_old != kept_new or list(after)[: len(kept_new)] != kept_new:
            return None  # attribute order changes: ALTER TYPE cannot reorder
        actions: list[str] = []
        for name in before:
            if name not in after:
                actions.append(f"DROP ATTRIBUTE {quote_ident(name)}")
        for name, a in after.items():
            collate = f" COLLATE {a.collation}" if a.collation else ""
            if name not in before:
                actions.append(f"ADD ATTRIBUTE {quote_ident(name)} {a.type}{collate}")
            elif before[name] != a:
                actions.append(f"ALTER ATTRIBUTE {quote_ident(name)} TYPE {a.type}{collate}")
        out = [Statement(sql=f"ALTER TYPE {key} {action}") for action in actions]
        if old.comment != new.comment:
            out.append(Statement(sql=comment_on(f"TYPE {key}", new.comment)))
        return out


def _attribute_types_change(old: CompositeType, new: CompositeType) -> bool:
    after = {a.name: a for a in new.attributes}
    return any(
        a.name in after and (a.type, a.collation) != (after[a.name].type, after[a.name].collation)
        for a in old.attributes
    )
