"""Views, materialized views, constraints and indexes."""

from __future__ import annotations

from pgshift.tools.model import Constraint, Index, View
from pgshift.tools.plan.context import Context
from pgshift.tools.plan.ddl import comment_on, strip_semicolon
from pgshift.tools.plan.statement import Hazard, HazardKind, RowCheck, Statement
from pgshift.tools.sql import quote_ident


def _view_kind(view: View) -> str:
    return "MATERIALIZED VIEW" if view.materialized else "VIEW"


class ViewGenerator:
    kind = "view"

    def create(self, new: View, ctx: Context) -> list[Statement]:
        options = f" WITH ({', '.join(new.options)})" if new.options else ""
        sql = f"CREATE {_view_kind(new)} {new.key}{options} AS\n{strip_semicolon(new.definition)}"
        out = [Statement(sql=sql, object=f"view {new.key}")]
        if new.comment is not None:
            out.append(Statement(sql=comment_on(f"{_view_kind(new)} {new.key}", new.comment)))
        for c in new.columns:
            if c.comment is not None:
                out.append(Statement(sql=comment_on(f"COLUMN {new.key}.{quote_ident(c.name)}", c.comment)))
        return out

    def drop(self, old: View, ctx: Context) -> list[Statement]:
        return [Statement(sql=f"DROP {_view_kind(old)} {old.key}", object=f"view {old.key}")]

    def alter(self, old: View, new: View, ctx: Context) -> list[Statement] | None:
        same_shape = [(c.name, c.type) for c in old.columns] == [(c.name, c.type) for c in new.columns]
        if (old.materialized, old.definition, old.options) != (new.materialized, new.definition, new.options):
            return None
        if not same_shape:
            return None
        out = []
        if old.comment != new.comment:
            out.append(Statement(sql=comment_on(f"{_view_kind(new)} {new.key}", new.comment)))
        for before, after in zip(old.columns, new.columns, strict=True):
            if before.comment != after.comment:
                out.append(Statement(sql=comment_on(f"COLUMN {new.key}.{quote_ident(after.name)}", after.comment)))
        return out


_INDEX_BACKED = ("PRIMARY KEY", "UNIQUE", "EXCLUDE")


def duplicate_rows(
    table: str, columns: tuple[str, ...], obj: str, ctx: Context, predicate: str | None = None
) -> RowCheck | None:
    """The target's rows a new PRIMARY KEY or UNIQUE over `columns` of an existing table would reject (None when the
    table is new, or a column is: nothing to count)."""
    existing = ctx.target_tables.get(table)
    if existing is None or table in ctx.created_tables or not columns:
        return None
    if any(existing.column(c) is None for c in columns):
        return None
    return RowCheck(kind="duplicate_rows", table=table, columns=columns, predicate=predicate, object=obj)


def _checked(statements: list[Statement], check: RowCheck | None) -> list[Statement]:
    """`statements` with `check` on the first (the one that builds the index)."""
    if check is None or not statements:
        return statements
    return [statements[0].model_copy(update={"check": check}), *statements[1:]]


class ConstraintGenerator:
    kind = "constraint"

    def create(self, new: Constraint, ctx: Context) -> list[Statement]:
        if new.type == "TRIGGER":
            return []  # a constraint trigger is created by its CREATE CONSTRAINT TRIGGER
        table, name = new.table, quote_ident(new.name)
        add = f"ALTER TABLE {table} ADD CONSTRAINT {name}"
        out: list[Statement] = []
        fresh = table in ctx.created_tables
        if new.type in _INDEX_BACKED:
            hazards = (
                ()
                if fresh
                else (
                    Hazard.of(HazardKind.INDEX_BUILD, f"{new.type} {new.key} builds its index"),
                    Hazard.of(HazardKind.ACCESS_EXCLUSIVE_LOCK, f"{table} is locked while the index builds"),
                )
            )
            index = ctx.source.by_key("index").get(new.index or "") if new.type != "EXCLUDE" else None
            if ctx.online_table(table) and index is not None:
                timeout = ctx.lock_timeout()
                concurrent = index.definition.replace(" INDEX ", " INDEX CONCURRENTLY ", 1)
                build = Hazard.of(HazardKind.INDEX_BUILD, f"index of {new.key} is built concurrently")
                deferral = " DEFERRABLE" if new.deferrable else ""
                deferral += " INITIALLY DEFERRED" if new.initially_deferred else ""
                out.append(Statement(sql=concurrent, hazards=(build,), transactional=False, lock_timeout_ms=timeout))
                out.append(
                    Statement(
                        sql=f"{add} {new.type} USING INDEX {quote_ident(index.name)}{deferral}",
                        transactional=False,
                        lock_timeout_ms=timeout,
                    )
                )
            else:
                out.append(Statement(sql=f"{add} {new.definition}", hazards=hazards, object=f"constraint {new.key}"))
            if new.type != "EXCLUDE":
                out = _checked(out, duplicate_rows(table, new.columns, f"constraint {new.key}", ctx))
        else:
            scan = Hazard.of(HazardKind.VALIDATION_SCAN, f"{new.type} {new.key} checks every existing row")
            if ctx.online_table(table) and new.validated:
                timeout = ctx.lock_timeout()
                out.append(
                    Statement(sql=f"{add} {new.definition} NOT VALID", transactional=False, lock_timeout_ms=timeout)
                )
                out.append(
                    Statement(
                        sql=f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}",
                        hazards=(scan,),
                        transactional=False,
                        lock_timeout_ms=timeout,
                    )
                )
            else:
                checks: tuple[Hazard, ...] = () if fresh or not new.validated else (scan,)
                if new.type == "FOREIGN KEY" and not fresh:
                    checks += (
                        Hazard.of(HazardKind.SHARE_LOCK, f"{table} and {new.references} are locked against writes"),
                    )
                out.append(Statement(sql=f"{add} {new.definition}", hazards=checks, object=f"constraint {new.key}"))
        if new.comment is not None:
            out.append(Statement(sql=comment_on(f"CONSTRAINT {name} ON {table}", new.comment)))
        return out

    def drop(self, old: Constraint, ctx: Context) -> list[Statement]:
        if old.type == "TRIGGER":
            return []
        hazards = (
            (Hazard.of(HazardKind.INDEX_DROPPED, f"{old.key} drops its index"),) if old.type in _INDEX_BACKED else ()
        )
        sql = f"ALTER TABLE {old.table} DROP CONSTRAINT {quote_ident(old.name)}"
        return [Statement(sql=sql, hazards=hazards, object=f"constraint {old.key}")]

    def alter(self, old: Constraint, new: Constraint, ctx: Context) -> list[Statement] | None:
        if _without_comment_validation(old) != _without_comment_validation(new):
            return None
        out = []
        if new.validated and not old.validated:
            scan = Hazard.of(HazardKind.VALIDATION_SCAN, f"{new.key} checks every existing row")
            out.append(
                Statement(sql=f"ALTER TABLE {new.table} VALIDATE CONSTRAINT {quote_ident(new.name)}", hazards=(scan,))
            )
        elif old.validated and not new.validated:
            return None
        if old.comment != new.comment:
            out.append(Statement(sql=comment_on(f"CONSTRAINT {quote_ident(new.name)} ON {new.table}", new.comment)))
        return out


def _without_comment_validation(c: Constraint) -> tuple[object, ...]:
    definition = c.definition.removesuffix(" NOT VALID")
    return (c.type, definition, c.deferrable, c.initially_deferred, c.columns, c.references, c.index)


class IndexGenerator:
    kind = "index"

    def create(self, new: Index, ctx: Context) -> list[Statement]:
        if new.constraint:
            return []  # built by its constraint
        table = new.table
        if new.parent_index and table in ctx.created_tables:
            return []  # a new partition gets the partitioned table's indexes by itself
        definition = new.definition.replace(" ON ONLY ", " ON ", 1)  # on a partitioned table: recurse
        fresh = table in ctx.created_tables
        out: list[Statement] = []
        if ctx.online_table(table) and ctx.target_tables.get(table) is not None:
            concurrent = definition.replace(" INDEX ", " INDEX CONCURRENTLY ", 1)
            build = Hazard.of(HazardKind.INDEX_BUILD, f"index {new.key} is built concurrently")
            out.append(
                Statement(
                    sql=concurrent,
                    hazards=(build,),
                    transactional=False,
                    lock_timeout_ms=ctx.lock_timeout(),
                    object=f"index {new.key}",
                )
            )
        else:
            hazards = (
                ()
                if fresh or table not in ctx.target_tables
                else (
                    Hazard.of(HazardKind.INDEX_BUILD, f"index {new.key} is built"),
                    Hazard.of(HazardKind.SHARE_LOCK, f"writes to {table} wait until the index is built"),
                )
            )
            out.append(Statement(sql=definition, hazards=hazards, object=f"index {new.key}"))
        if new.unique:
            out = _checked(out, duplicate_rows(table, new.key_columns, f"index {new.key}", ctx, new.predicate))
        if (
            new.parent_index
            and ("index", new.parent_index) not in ctx.gone
            and new.parent_index in ctx.target.by_key("index")
        ):
            out.append(Statement(sql=f"ALTER INDEX {new.parent_index} ATTACH PARTITION {new.key}"))
        if new.comment is not None:
            out.append(Statement(sql=comment_on(f"INDEX {new.key}", new.comment)))
        return out

    def drop(self, old: Index, ctx: Context) -> list[Statement]:
        if old.constraint:
            return []  # dropped with its constraint
        hazard = Hazard.of(HazardKind.INDEX_DROPPED, f"index {old.key} is dropped")
        if ctx.online_table(old.table) and not old.parent_index:
            return [
                Statement(
                    sql=f"DROP INDEX CONCURRENTLY {old.key}",
                    hazards=(hazard,),
                    transactional=False,
                    lock_timeout_ms=ctx.lock_timeout(),
                    object=f"index {old.key}",
                )
            ]
        return [Statement(sql=f"DROP INDEX {old.key}", hazards=(hazard,), object=f"index {old.key}")]

    def alter(self, old: Index, new: Index, ctx: Context) -> list[Statement] | None:
        if (old.definition, old.constraint) != (new.definition, new.constraint):
            return None
        out = []
        if old.parent_index != new.parent_index and new.parent_index:
            out.append(Statement(sql=f"ALTER INDEX {new.parent_index} ATTACH PARTITION {new.key}"))
        elif old.parent_index != new.parent_index:
            return None
        if old.comment != new.comment:
            out.append(Statement(sql=comment_on(f"INDEX {new.key}", new.comment)))
        return out


def foreign_key_cycle_breakers(constraints: tuple[Constraint, ...], dropped_tables: set[str]) -> set[str]:
    """Foreign keys between dropped tables that reference each other in a cycle: each is dropped on its own
    first (a table's drop cannot wait for the other's when each holds a key on the other)."""
    refs: dict[str, set[str]] = {}
    keys = [c for c in constraints if c.references and c.table in dropped_tables and c.references in dropped_tables]
    for c in keys:
        if c.references != c.table:
            refs.setdefault(c.table, set()).add(c.references or "")

    def reaches(start: str, goal: str) -> bool:
        seen, todo = {start}, [start]
        while todo:
            for nxt in refs.get(todo.pop(), ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    return {c.key for c in keys if c.references != c.table and reaches(c.references or "", c.table)}
