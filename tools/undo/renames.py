"""Renames a rolled-back migration made, read from its parse tree, and the statements that rename them back.

A planner comparing two schemas sees a renamed column as one column dropped and another added; rows written after
the migration would then lose their values. Undoing the rename itself (`ALTER TABLE t RENAME COLUMN new TO old`) keeps
every row's value. The renames come from PostgreSQL's parse tree of the migration's statements (pglast `RenameStmt`):
columns, tables, indexes and table constraints. A renamed type is left to the planner: the values a rollback adds to
an enum are committed before its transaction, under the name the type has then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pglast import ast
from pglast.enums import ObjectType

from pgshift.tools.errors import ConfigError
from pgshift.tools.migrations.parse import SqlStatement, split_statements
from pgshift.tools.plan.statement import Statement
from pgshift.tools.sql import qualified, quote_ident

RenameKind = Literal["column", "table", "index", "constraint"]
RENAMED_BACK = "renamed back "


@dataclass(frozen=True)
class Rename:
    """One rename a migration made: `old` became `new`. `schema` is None when the migration left it to search_path;
    `table` is the table a column or constraint belongs to (as named when the rename ran)."""

    kind: RenameKind
    schema: str | None
    old: str
    new: str
    table: str = ""

    def back(self) -> Statement:
        """The statement that renames it back."""
        old, new = quote_ident(self.old), quote_ident(self.new)
        on = qualified(self.schema, self.table)
        sql = {
            "column": f"ALTER TABLE {on} RENAME COLUMN {new} TO {old}",
            "constraint": f"ALTER TABLE {on} RENAME CONSTRAINT {new} TO {old}",
            "table": f"ALTER TABLE {qualified(self.schema, self.new)} RENAME TO {old}",
            "index": f"ALTER INDEX {qualified(self.schema, self.new)} RENAME TO {old}",
        }[self.kind]
        where = f"{on}." if self.table else ""
        return Statement(sql=sql, object=f"{RENAMED_BACK}{self.kind} {where}{self.new} -> {self.old}")


_ON_RELATION: dict[ObjectType, RenameKind] = {
    ObjectType.OBJECT_TABLE: "table",
    ObjectType.OBJECT_INDEX: "index",
}


def _rename(node: ast.RenameStmt) -> Rename | None:
    new = node.newname
    if not new:
        return None
    kind = node.renameType
    rel = node.relation
    if rel is None or not rel.relname:
        return None
    if kind in _ON_RELATION:
        return Rename(_ON_RELATION[kind], rel.schemaname, str(rel.relname), new)
    if not node.subname:
        return None
    if kind == ObjectType.OBJECT_COLUMN and node.relationType == ObjectType.OBJECT_TABLE:
        return Rename("column", rel.schemaname, node.subname, new, str(rel.relname))
    if kind == ObjectType.OBJECT_TABCONSTRAINT:
        return Rename("constraint", rel.schemaname, node.subname, new, str(rel.relname))
    return None


def statement_renames(statements: Sequence[SqlStatement]) -> list[Rename]:
    """The renames among a migration's statements, in the order they ran."""
    found = (_rename(s.node) for s in statements if s.node_type == "RenameStmt" and isinstance(s.node, ast.RenameStmt))
    return [r for r in found if r is not None]


def renames_to_undo(migrations: Sequence[Sequence[str]]) -> list[Rename]:
    """The renames of migrations (each as the statements that ran, oldest migration first), in the order to undo
    them: newest first. A migration whose text no longer parses contributes none (the planner handles it)."""
    found: list[Rename] = []
    for statements in migrations:
        try:
            found += statement_renames(split_statements(";\n".join(statements)))
        except ConfigError:  # a history that does not parse leaves the rollback to the planner
            continue
    return found[::-1]


def renamed_back(kept_table: tuple[str, str], column: str | None, renames: Sequence[Rename]) -> bool:
    """Whether a kept column copy (schema, table, column) is of a column a rename undone gives back whole."""
    schema, table = kept_table
    return any(
        r.kind == "column" and r.old == column and r.table == table and r.schema in (None, schema) for r in renames
    )
