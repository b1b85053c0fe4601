"""Range types: created with their options, recreated when one changes (none can be altered in place)."""

from __future__ import annotations

from collections.abc import Iterable

from pgshift.tools.model import RangeType, ident
from pgshift.tools.plan.context import Context, Node
from pgshift.tools.plan.ddl import comment_on
from pgshift.tools.plan.statement import Statement


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
        if (old.subtype, old.subtype_opclass, old.collation, old.subtype_diff, old.multirange) != (
            new.subtype,
            new.subtype_opclass,
            new.collation,
            new.subtype_diff,
            new.multirange,
        ):
            return None
        return [Statement(sql=comment_on(f"TYPE {new.key}", new.comment))]

    def depends_on(self, r: RangeType) -> Iterable[tuple[Node, bool]]:
        return (
            (("schema", ident(r.schema)), False),
            *((("function", key), False) for key in r.functions),
        )
