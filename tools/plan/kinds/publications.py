"""Publications and their members (`ALTER PUBLICATION ... ADD/DROP TABLE`): logical replication, and on Supabase
what Realtime broadcasts (membership of `supabase_realtime`)."""

from __future__ import annotations

from collections.abc import Iterable

from pgshift.tools.model import Publication, PublicationMember, ident
from pgshift.tools.plan.context import Context, Node
from pgshift.tools.plan.ddl import comment_on
from pgshift.tools.plan.statement import Statement
from pgshift.tools.sql import quote_literal


def _with(p: Publication) -> str:
    via_root = "true" if p.via_root else "false"
    return f"WITH (publish = {quote_literal(', '.join(p.publish))}, publish_via_partition_root = {via_root})"


class PublicationGenerator:
    kind = "publication"
    recreates_dependants = False

    def create(self, new: Publication, ctx: Context) -> list[Statement]:
        scope = " FOR ALL TABLES" if new.all_tables else ""
        out = [Statement(sql=f"CREATE PUBLICATION {new.key}{scope} {_with(new)}", object=f"publication {new.key}")]
        if new.comment is not None:
            out.append(Statement(sql=comment_on(f"PUBLICATION {new.key}", new.comment)))
        return out

    def drop(self, old: Publication, ctx: Context) -> list[Statement]:
        return [Statement(sql=f"DROP PUBLICATION {old.key}", object=f"publication {old.key}")]

    def alter(self, old: Publication, new: Publication, ctx: Context) -> list[Statement] | None:
        if old.all_tables != new.all_tables:
            return None
        out = []
        if (old.publish, old.via_root) != (new.publish, new.via_root):
            out.append(Statement(sql=f"ALTER PUBLICATION {new.key} SET {_with(new)[5:]}"))
        if old.comment != new.comment:
            out.append(Statement(sql=comment_on(f"PUBLICATION {new.key}", new.comment)))
        return out

    def depends_on(self, p: Publication) -> Iterable[tuple[Node, bool]]:
        return ()


def _member(m: PublicationMember) -> str:
    if m.table is None:
        return f"TABLES IN SCHEMA {ident(m.schema)}"
    columns = f" ({', '.join(ident(c) for c in m.columns)})" if m.columns else ""
    return f"TABLE {m.table}{columns}"


class PublicationMemberGenerator:
    kind = "publication_member"
    recreates_dependants = True  # recreated when its publication or table is

    def create(self, new: PublicationMember, ctx: Context) -> list[Statement]:
        where = f" WHERE ({new.row_filter})" if new.row_filter is not None else ""
        sql = f"ALTER PUBLICATION {ident(new.publication)} ADD {_member(new)}{where}"
        return [Statement(sql=sql, object=f"publication_member {new.key}")]

    def drop(self, old: PublicationMember, ctx: Context) -> list[Statement]:
        target = f"TABLE {old.table}" if old.table is not None else _member(old)
        sql = f"ALTER PUBLICATION {ident(old.publication)} DROP {target}"
        return [Statement(sql=sql, object=f"publication_member {old.key}")]

    def alter(self, old: PublicationMember, new: PublicationMember, ctx: Context) -> list[Statement] | None:
        return None  # a column list or row filter changes by dropping the table from the publication and adding it

    def depends_on(self, m: PublicationMember) -> Iterable[tuple[Node, bool]]:
        """Inside its table (or schema), dropped with it; after its publication."""
        inside: Node = ("table", m.table) if m.table is not None else ("schema", ident(m.schema))
        return ((inside, True), (("publication", ident(m.publication)), False))
