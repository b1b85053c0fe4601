"""Range types: created with their options; a changed option (none can be altered in place) renames the old type
aside with its multirange and constructor functions, creates the new one, casts every column through text, rebuilds
the domains and composite types over it and drops the old type."""

from __future__ import annotations

from collections.abc import Iterable

from pgshift.tools.model import RangeType, ident
from pgshift.tools.plan.context import Context, Node
from pgshift.tools.plan.ddl import comment_on
from pgshift.tools.plan.kinds.types import range_options_change, rebuild_types_over, recast_columns
from pgshift.tools.plan.statement import Statement
from pgshift.tools.sql import qualified, quote_ident

_ASIDE = "__pgshift_old"


def bare_name(type_name: str, schema: str) -> str:
    """`public."My range"` -> `My range`: the unquoted name of a type in `schema` as format_type prints it."""
    prefix = f"{quote_ident(schema)}."
    name = type_name[len(prefix) :] if type_name.startswith(prefix) else type_name
    return name[1:-1].replace('""', '"') if name.startswith('"') and name.endswith('"') else name


def _rename_aside(old: RangeType) -> list[Statement]:
    """Free every name the new type will take: the range, its multirange and the constructor functions of both."""
    aside = quote_ident(f"{old.name}{_ASIDE}")
    aside_key = qualified(old.schema, f"{old.name}{_ASIDE}")
    obj = f"range_type {old.key}"
    out = [Statement(sql=f"ALTER TYPE {old.key} RENAME TO {aside}", object=obj)]
    for args in (f"{old.subtype}, {old.subtype}", f"{old.subtype}, {old.subtype}, text"):
        out.append(Statement(sql=f"ALTER FUNCTION {old.key}({args}) RENAME TO {aside}", object=obj))
    if old.multirange:
        name = bare_name(old.multirange, old.schema)
        multi_aside = quote_ident(f"{name}{_ASIDE}")
        out.append(Statement(sql=f"ALTER TYPE {old.multirange} RENAME TO {multi_aside}", object=obj))
        for args in ("", aside_key, f"{aside_key}[]"):
            constructor = qualified(old.schema, name)
            out.append(Statement(sql=f"ALTER FUNCTION {constructor}({args}) RENAME TO {multi_aside}", object=obj))
    return out


class RangeTypeGenerator:
    kind = "range_type"
    recreates_dependants = False

    def create(self, new: RangeType, ctx: Context) -> list[Statement]:
        options = [f"SUBTYPE = {new.subtype}"]
        options += [f"SUBTYPE_OPCLASS = {new.subtype_opclass}"] if new.subtype_opclass else []
        options += [f"COLLATION = {new.collation}"] if new.collation else []
        options += [f"SUBTYPE_DIFF = {new.subtype_diff}"] if new.subtype_diff else []
        options += [f"MULTIRANGE_TYPE_NAME = {new.multirange}"] if new.multirange else []
        sql = f"CREATE TYPE {new.key} AS RANGE ({', '.join(options)})"
        out = [Statement(sql=sql, object=f"range_type {new.key}")]
        if new.comment is not None:
            out.append(Statement(sql=comment_on(f"TYPE {new.key}", new.comment)))
        return out

    def drop(self, old: RangeType, ctx: Context) -> list[Statement]:
        return [Statement(sql=f"DROP TYPE {old.key}", object=f"range_type {old.key}")]

    def alter(self, old: RangeType, new: RangeType, ctx: Context) -> list[Statement] | None:
        if range_options_change(old, new):
            return self.rebuild(old, new, ctx)
        return [Statement(sql=comment_on(f"TYPE {new.key}", new.comment))]

    def rebuild(self, old: RangeType, new: RangeType, ctx: Context) -> list[Statement]:
        """Rename the old type aside, create the new one, cast the columns (of the range, its multirange, and the
        domains and composite types over it) through text, drop the old type."""
        out = _rename_aside(old)
        out += self.create(new, ctx)
        out += recast_columns(old.key, new.key, "text", ctx)
        if old.multirange and new.multirange:
            out += recast_columns(old.multirange, new.multirange, "text", ctx)
        out += rebuild_types_over(old.key, ctx)
        aside_key = qualified(old.schema, f"{old.name}{_ASIDE}")
        out.append(Statement(sql=f"DROP TYPE {aside_key}", object=f"range_type {new.key}"))
        return out

    def depends_on(self, r: RangeType) -> Iterable[tuple[Node, bool]]:
        return (
            (("schema", ident(r.schema)), False),
            *((("function", key), False) for key in r.functions),
        )
