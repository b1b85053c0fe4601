"""Tables, their columns, and their place in a hierarchy (partition of / inherits)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from pgshift.tools.model import Column, Table
from pgshift.tools.plan.context import Context, base_type
from pgshift.tools.plan.ddl import column_definition, comment_on, generated_clause, identity_clause, not_null_name
from pgshift.tools.plan.statement import Hazard, HazardKind, RowCheck, Statement
from pgshift.tools.plan.volatility import is_constant, is_volatile
from pgshift.tools.sql import quote_ident


@dataclass(frozen=True)
class ColumnRef:
    """A column with its table: the unit the column generator works on (keyed `schema.table.column`)."""

    table: Table
    column: Column
    key: str = field(default="", compare=False, repr=False)  # computed when not given

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", f"{self.table.key}.{quote_ident(self.column.name)}")

    def comparable(self) -> Column:
        """The column without what a plan cannot (and need not) set: whether it is inherited only."""
        return dataclasses.replace(self.column, inherited=False)


@dataclass(frozen=True)
class Membership:
    """`child` is a partition (with `bound`) or an inheritance child of `parent`: keyed `child -> parent`."""

    child: str
    parent: str
    bound: str | None  # partition bound, None for plain inheritance

    @property
    def key(self) -> str:
        return f"{self.child} -> {self.parent}"


def memberships(table: Table) -> list[Membership]:
    if table.partition_of:
        return [Membership(table.key, table.partition_of, table.partition_bound)]
    return [Membership(table.key, parent, None) for parent in table.inherits]


def _table_tail(new: Table) -> str:
    inherits = f" INHERITS ({', '.join(new.inherits)})" if new.inherits and not new.partition_of else ""
    partition_by = f" PARTITION BY {new.partition_key}" if new.partition_key else ""
    options = f" WITH ({', '.join(new.options)})" if new.options else ""
    return f"{inherits}{partition_by}{options}"


def _rls(new: Table, old: Table | None) -> list[Statement]:
    out = []
    authz = Hazard.of(HazardKind.AUTHZ_CHANGE, f"row-level security of {new.key}")
    if new.rls_enabled != (old.rls_enabled if old else False):
        action = "ENABLE" if new.rls_enabled else "DISABLE"
        out.append(Statement(sql=f"ALTER TABLE {new.key} {action} ROW LEVEL SECURITY", hazards=(authz,)))
    if new.rls_forced != (old.rls_forced if old else False):
        action = "FORCE" if new.rls_forced else "NO FORCE"
        out.append(Statement(sql=f"ALTER TABLE {new.key} {action} ROW LEVEL SECURITY", hazards=(authz,)))
    return out


class TableGenerator:
    kind = "table"

    def create(self, new: Table, ctx: Context) -> list[Statement]:
        if new.partition_of:
            sql = f"CREATE TABLE {new.key} PARTITION OF {new.partition_of} {new.partition_bound}{_table_tail(new)}"
        else:
            unlogged = "UNLOGGED " if new.unlogged else ""
            cols = ",\n    ".join(column_definition(c) for c in new.columns if not c.inherited)
            body = f"(\n    {cols}\n)" if cols else "()"
            sql = f"CREATE {unlogged}TABLE {new.key} {body}{_table_tail(new)}"
        out = [Statement(sql=sql, object=f"table {new.key}")]
        out += _rls(new, None)
        if new.replica_identity not in ("DEFAULT", "INDEX"):
            out.append(Statement(sql=f"ALTER TABLE {new.key} REPLICA IDENTITY {new.replica_identity}"))
        if new.comment is not None:
            out.append(Statement(sql=comment_on(f"TABLE {new.key}", new.comment)))
        for c in new.columns:
            if c.comment is not None and not c.inherited:
                out.append(Statement(sql=comment_on(f"COLUMN {new.key}.{quote_ident(c.name)}", c.comment)))
        return out

    def drop(self, old: Table, ctx: Context) -> list[Statement]:
        hazard = Hazard.of(HazardKind.DELETES_DATA, f"table {old.key} and its rows are dropped")
        return [Statement(sql=f"DROP TABLE {old.key}", hazards=(hazard,), object=f"table {old.key}")]

    def alter(self, old: Table, new: Table, ctx: Context) -> list[Statement] | None:
        if (old.partitioned, old.partition_key) != (new.partitioned, new.partition_key):
            return None  # partitioning cannot be changed in place
        key = new.key
        out: list[Statement] = []
        if old.unlogged != new.unlogged:
            rewrite = Hazard.of(HazardKind.TABLE_REWRITE, f"{key} is rewritten to change WAL logging")
            action = "SET UNLOGGED" if new.unlogged else "SET LOGGED"
            out.append(Statement(sql=f"ALTER TABLE {key} {action}", hazards=(rewrite,)))
        if old.options != new.options:
            names = {o.split("=", 1)[0] for o in new.options}
            reset = [o.split("=", 1)[0] for o in old.options if o.split("=", 1)[0] not in names]
            if reset:
                out.append(Statement(sql=f"ALTER TABLE {key} RESET ({', '.join(reset)})"))
            if new.options:
                out.append(Statement(sql=f"ALTER TABLE {key} SET ({', '.join(new.options)})"))
        out += _rls(new, old)
        if old.replica_identity != new.replica_identity and new.replica_identity != "INDEX":
            out.append(Statement(sql=f"ALTER TABLE {key} REPLICA IDENTITY {new.replica_identity}"))
        if old.comment != new.comment:
            out.append(Statement(sql=comment_on(f"TABLE {key}", new.comment)))
        return out


class MembershipGenerator:
    """Attach/detach partitions, inherit/no inherit: for tables that exist on both sides."""

    kind = "membership"

    def create(self, new: Membership, ctx: Context) -> list[Statement]:
        if new.bound is None:
            return [Statement(sql=f"ALTER TABLE {new.child} INHERIT {new.parent}")]
        scan = Hazard.of(HazardKind.VALIDATION_SCAN, f"rows of {new.child} are checked against the partition bound")
        attach = Statement(sql=f"ALTER TABLE {new.parent} ATTACH PARTITION {new.child} {new.bound}", hazards=(scan,))
        return [*self._adopt_not_nulls(new, ctx), attach]  # renamed while still its own: inherited ones cannot be

    def _adopt_not_nulls(self, new: Membership, ctx: Context) -> list[Statement]:
        """PostgreSQL 18: a partition's NOT NULL constraints carry its parent's names; an attached table keeps its own.

        Rename them the way the source has them.
        """
        parent, child = ctx.source_tables.get(new.parent), ctx.target_tables.get(new.child)
        return _not_null_renames(new.child, parent, child, ctx, to_parent_names=True)

    def drop(self, old: Membership, ctx: Context) -> list[Statement]:
        if old.bound is None:
            return [Statement(sql=f"ALTER TABLE {old.child} NO INHERIT {old.parent}")]
        lock = Hazard.of(HazardKind.ACCESS_EXCLUSIVE_LOCK, f"{old.parent} is locked while the partition is detached")
        out = [Statement(sql=f"ALTER TABLE {old.parent} DETACH PARTITION {old.child}", hazards=(lock,))]
        return out + self._rename_not_nulls(old, ctx)

    def _rename_not_nulls(self, old: Membership, ctx: Context) -> list[Statement]:
        """PostgreSQL 18: a detached partition keeps its parent's NOT NULL constraint names; give it its own."""
        parent, child = ctx.target_tables.get(old.parent), ctx.source_tables.get(old.child)
        return _not_null_renames(old.child, parent, child, ctx, to_parent_names=False)

    def alter(self, old: Membership, new: Membership, ctx: Context) -> list[Statement] | None:
        return None


def _using(column: str, old_type: str, new_type: str, ctx: Context) -> str:
    if ctx.is_enum(old_type) or ctx.is_enum(new_type):
        dims = new_type[len(base_type(new_type)) :]
        return f" USING {column}::text{dims}::{new_type}"
    return f" USING {column}::{new_type}"


class ColumnGenerator:
    kind = "column"

    def create(self, new: ColumnRef, ctx: Context) -> list[Statement]:
        c, table = new.column, new.table
        if c.inherited:
            return []  # it comes from the parent's ADD COLUMN
        hazards = []
        if c.generated and c.generated_kind != "VIRTUAL":
            hazards.append(Hazard.of(HazardKind.TABLE_REWRITE, f"stored generated column {new.key} is computed"))
        elif c.identity:
            hazards.append(Hazard.of(HazardKind.TABLE_REWRITE, f"identity column {new.key} is filled"))
        elif c.default is not None and is_volatile(c.default, ctx.source):
            hazards.append(Hazard.of(HazardKind.TABLE_REWRITE, f"volatile default of {new.key} is computed per row"))
        check = None
        if c.not_null and c.default is None and not c.identity and not c.generated:
            hazards.append(Hazard.of(HazardKind.VALIDATION_SCAN, f"{new.key} is NOT NULL without default"))
            if table.key not in ctx.created_tables:
                check = RowCheck(kind="any_rows", table=table.key, columns=(c.name,), object=f"column {new.key}")
        sql = f"ALTER TABLE {table.key} ADD COLUMN {column_definition(c)}"
        out = [Statement(sql=sql, hazards=tuple(hazards), check=check)]
        if c.comment is not None:
            out.append(Statement(sql=comment_on(f"COLUMN {new.key}", c.comment)))
        return out

    def drop(self, old: ColumnRef, ctx: Context) -> list[Statement]:
        if old.column.inherited:
            return []  # it leaves with the parent's column
        # Children that keep the column as their own: drop it from this table only (they keep it, now local).
        keep_in_children = any(
            (child := ctx.source_tables.get(t.key)) is not None
            and (col := child.column(old.column.name)) is not None
            and not col.inherited
            for t in ctx.target.tables
            if old.table.key in t.inherits
        )
        only = "ONLY " if keep_in_children and not old.table.partitioned else ""
        hazard = Hazard.of(HazardKind.DELETES_DATA, f"column {old.key} and its values are dropped")
        return [
            Statement(
                sql=f"ALTER TABLE {only}{old.table.key} DROP COLUMN {quote_ident(old.column.name)}",
                hazards=(hazard,),
                object=f"column {old.key}",
            )
        ]

    def alter(self, old_ref: ColumnRef, new_ref: ColumnRef, ctx: Context) -> list[Statement] | None:
        old, new = old_ref.column, new_ref.column
        table = new_ref.table.key
        if new.inherited and not old.inherited and not self.parent_has(new_ref, ctx):
            return None  # only the parent's new column may stand here: drop ours, the parent's ADD COLUMN adds it
        name = quote_ident(new.name)
        col = f"ALTER TABLE {table} ALTER COLUMN {name}"
        out: list[Statement] = []
        if (old.generated is None) != (new.generated is None) or old.generated_kind != new.generated_kind:
            if new.generated is not None:
                return None  # a column cannot become generated: drop and add it
            out.append(Statement(sql=f"{col} DROP EXPRESSION"))
        elif old.generated != new.generated and new.generated is not None:
            if ctx.target_version < 170000:
                return None
            rewrite = Hazard.of(HazardKind.TABLE_REWRITE, f"{new_ref.key} is recomputed")
            out.append(Statement(sql=f"{col} SET EXPRESSION AS ({new.generated})", hazards=(rewrite,)))
        if old.identity and not new.identity:
            out.append(Statement(sql=f"{col} DROP IDENTITY"))
        type_changes = (old.type, old.collation) != (new.type, new.collation)
        default_changes = old.default != new.default or (type_changes and old.default is not None)
        if old.default is not None and default_changes and not old.generated:
            out.append(Statement(sql=f"{col} DROP DEFAULT"))
        if type_changes:
            collate = f" COLLATE {new.collation}" if new.collation else ""
            rewrite = Hazard.of(HazardKind.TABLE_REWRITE, f"{new_ref.key} changes type from {old.type} to {new.type}")
            using = _using(name, old.type, new.type, ctx)
            out.append(Statement(sql=f"{col} TYPE {new.type}{collate}{using}", hazards=(rewrite,)))
        if new.default is not None and default_changes and not new.generated:
            out.append(Statement(sql=f"{col} SET DEFAULT {new.default}"))
        if new.not_null and not old.not_null:
            out += self._set_not_null(new_ref, ctx)
        elif old.not_null and not new.not_null:
            out.append(Statement(sql=f"{col} DROP NOT NULL"))
        elif new.not_null and ctx.target_version >= 180000:
            before, after = not_null_name(old_ref.table.name, old), not_null_name(new_ref.table.name, new)
            if before != after:
                out.append(
                    Statement(
                        sql=f"ALTER TABLE {table} RENAME CONSTRAINT {quote_ident(before)} TO {quote_ident(after)}"
                    )
                )
        if new.identity and not old.identity:
            out.append(Statement(sql=f"{col} ADD {identity_clause(new)}"))
        elif new.identity and old.identity and new.identity != old.identity:
            actions = []
            if old.identity.generation != new.identity.generation:
                actions.append(f"SET GENERATED {new.identity.generation}")
            o, n = old.identity.options, new.identity.options
            for label, was, wanted in (
                ("START WITH", o.start, n.start),
                ("INCREMENT BY", o.increment, n.increment),
                ("MINVALUE", o.min_value, n.min_value),
                ("MAXVALUE", o.max_value, n.max_value),
                ("CACHE", o.cache, n.cache),
            ):
                if was != wanted:
                    actions.append(f"SET {label} {wanted}")
            if o.cycle != n.cycle:
                actions.append("SET CYCLE" if n.cycle else "SET NO CYCLE")
            if actions:
                out.append(Statement(sql=f"{col} {' '.join(actions)}"))
        if old.comment != new.comment:
            out.append(Statement(sql=comment_on(f"COLUMN {new_ref.key}", new.comment)))
        return out

    @staticmethod
    def identity_release(old_ref: ColumnRef, new_ref: ColumnRef) -> list[Statement]:
        """When a column swaps a serial default for identity or back: the part of its `alter` that lets go of the
        old sequence (DROP IDENTITY, DROP DEFAULT). It runs as a step of its own so that the old sequence can go and
        the new one take its name before the rest of the alter."""
        old, new = old_ref.column, new_ref.column
        if (old.identity is None) == (new.identity is None) or old.generated:
            return []
        col = f"ALTER TABLE {new_ref.table.key} ALTER COLUMN {quote_ident(new.name)}"
        if old.identity:
            return [Statement(sql=f"{col} DROP IDENTITY")]
        return [Statement(sql=f"{col} DROP DEFAULT")] if old.default is not None else []

    @staticmethod
    def computed_from(node: tuple[str, str], columns: dict[str, ColumnRef]) -> bool:
        """Whether a dependant node is a generated column (its expression reads the column it depends on)."""
        ref = columns.get(node[1]) if node[0] == "column" else None
        return ref is not None and ref.column.generated is not None

    @staticmethod
    def parent_has(ref: ColumnRef, ctx: Context) -> bool:
        """Whether a parent the table has in the source already has this column in the target."""
        parents = [*ref.table.inherits, *([ref.table.partition_of] if ref.table.partition_of else [])]
        return any(
            (parent := ctx.target_tables.get(key)) is not None and parent.column(ref.column.name) is not None
            for key in parents
        )

    @staticmethod
    def null_rows(ref: ColumnRef) -> RowCheck:
        """The target's NULLs in the column a plan makes NOT NULL; the backfill its new default implies, if any."""
        name, default = quote_ident(ref.column.name), ref.column.default
        backfill = (
            f"UPDATE {ref.table.key} SET {name} = {default} WHERE {name} IS NULL"
            if default is not None and not ref.column.generated
            else None
        )
        return RowCheck(
            kind="null_rows",
            table=ref.table.key,
            columns=(ref.column.name,),
            object=f"column {ref.key}",
            backfill=backfill,
        )

    @staticmethod
    def backfill(ref: ColumnRef, ctx: Context) -> Statement | None:
        """For a column of an existing table made NOT NULL whose source default is a constant: the UPDATE that gives
        the target's NULL rows that default first, so that the plan applies instead of failing on them. A default
        that is not a constant (volatile or stable: random(), now(), current_user) would invent a value per row or
        per run: those NULLs stay a blocker counted on the target's rows, which offers the UPDATE for a person to
        decide. None when nothing is backfilled."""
        column, table = ref.column, ref.table.key
        if column.default is None or column.generated or table in ctx.created_tables:
            return None
        if not is_constant(column.default, ctx.source):
            return None
        name = quote_ident(column.name)
        writes = Hazard.of(
            HazardKind.WRITES_ROWS,
            f"rows of {table} where {name} IS NULL are set to its default {column.default} before it becomes NOT "
            "NULL (the default is a constant; a volatile or stable default is never backfilled: a blocker counts "
            "those rows instead)",
        )
        return Statement(
            sql=f"UPDATE {table} SET {name} = {column.default} WHERE {name} IS NULL",
            hazards=(writes,),
            object=f"column {ref.key}",
        )

    def _set_not_null(self, ref: ColumnRef, ctx: Context) -> list[Statement]:
        table, name = ref.table.key, quote_ident(ref.column.name)
        scan = Hazard.of(HazardKind.VALIDATION_SCAN, f"{ref.key} is checked for NULLs")
        backfill = self.backfill(ref, ctx)
        filled = [backfill] if backfill is not None else []
        nulls = self.null_rows(ref) if table not in ctx.created_tables and backfill is None else None
        # PostgreSQL 18 names the constraint: the source's name, when it has one of its own.
        set_not_null = f"ALTER TABLE {table} ALTER COLUMN {name} SET NOT NULL"
        if ref.column.not_null_name and ctx.target_version >= 180000:
            set_not_null = f"ALTER TABLE {table} ADD CONSTRAINT {quote_ident(ref.column.not_null_name)} NOT NULL {name}"
        if not ctx.online_table(table):
            lock = Hazard.of(HazardKind.ACCESS_EXCLUSIVE_LOCK, f"{table} is locked during the scan")
            return [*filled, Statement(sql=set_not_null, hazards=(scan, lock), check=nulls)]
        check = quote_ident(f"{ref.table.name}_{ref.column.name}_not_null_chk"[:63])
        timeout = ctx.lock_timeout()
        # Online, the backfill runs after the NOT VALID check (no new NULL can arrive) and before the validation.
        return [
            Statement(
                sql=f"ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({name} IS NOT NULL) NOT VALID",
                transactional=False,
                lock_timeout_ms=timeout,
            ),
            *filled,
            Statement(
                sql=f"ALTER TABLE {table} VALIDATE CONSTRAINT {check}",
                hazards=(scan,),
                transactional=False,
                lock_timeout_ms=timeout,
                check=nulls,
            ),
            Statement(
                sql=set_not_null,
                transactional=False,
                lock_timeout_ms=timeout,
            ),
            Statement(sql=f"ALTER TABLE {table} DROP CONSTRAINT {check}", transactional=False, lock_timeout_ms=timeout),
        ]


__all__ = ["ColumnGenerator", "ColumnRef", "Membership", "MembershipGenerator", "TableGenerator", "generated_clause"]


def _not_null_renames(
    child_sql: str, parent: Table | None, child: Table | None, ctx: Context, *, to_parent_names: bool
) -> list[Statement]:
    """RENAME CONSTRAINT statements moving `child_sql`'s NOT NULL names between the parent's and its own (PG 18+)."""
    if ctx.target_version < 180000 or parent is None or child is None:
        return []
    out = []
    for column in child.columns:
        parent_column = parent.column(column.name)
        if not column.not_null or parent_column is None or not parent_column.not_null:
            continue
        own, inherited = not_null_name(child.name, column), not_null_name(parent.name, parent_column)
        kept, wanted = (own, inherited) if to_parent_names else (inherited, own)
        if kept != wanted:
            rename = f"RENAME CONSTRAINT {quote_ident(kept)} TO {quote_ident(wanted)}"
            out.append(Statement(sql=f"ALTER TABLE {child_sql} {rename}"))
    return out
