"""Aggregates: created from their options, recreated when one changes (ALTER AGGREGATE changes only names)."""

from __future__ import annotations

from collections.abc import Iterable

from pgshift.tools.model import Aggregate, ident, qname
from pgshift.tools.plan.context import Context, Node
from pgshift.tools.plan.ddl import comment_on
from pgshift.tools.plan.statement import Statement


class AggregateGenerator:
    kind = "aggregate"
    recreates_dependants = True  # recreated when a function it calls is

    def create(self, new: Aggregate, ctx: Context) -> list[Statement]:
        name = f"{qname(new.schema, new.name)} ({new.identity_arguments or '*'})"
        out = [Statement(sql=f"CREATE AGGREGATE {name} ({', '.join(new.options)})", object=f"aggregate {new.key}")]
        if new.comment is not None:
            out.append(Statement(sql=comment_on(f"AGGREGATE {name}", new.comment)))
        return out

    def drop(self, old: Aggregate, ctx: Context) -> list[Statement]:
        name = f"{qname(old.schema, old.name)} ({old.identity_arguments or '*'})"
        return [Statement(sql=f"DROP AGGREGATE {name}", object=f"aggregate {old.key}")]

    def alter(self, old: Aggregate, new: Aggregate, ctx: Context) -> list[Statement] | None:
        if old.options != new.options:
            return None
        name = f"{qname(new.schema, new.name)} ({new.identity_arguments or '*'})"
        return [Statement(sql=comment_on(f"AGGREGATE {name}", new.comment))]

    def depends_on(self, a: Aggregate) -> Iterable[tuple[Node, bool]]:
        return ((("schema", ident(a.schema)), False), *((("function", key), False) for key in a.functions))
