"""Which statements of a migration lose data, decided on PostgreSQL's parse tree (never on SQL text).

A loss names the table and, for a column, the column: dropping a table, dropping a column, and changing a column's
type (a narrowing loses values; any type change can, and an enum losing values is done by changing the column to a
new enum type). The copy itself is in `tools.undo.keep`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pglast import ast
from pglast.enums import AlterTableType, ObjectType

from pgshift.tools.migrations.parse import SqlStatement
from pgshift.tools.sql import qualified

LossKind = Literal["drop_table", "drop_column", "change_type"]


@dataclass(frozen=True)
class Loss:
    """What one statement would destroy: a whole table, or one column's values."""

    statement: int  # 1-based position among the migration's statements
    kind: LossKind
    table: str  # as written, quoted: `schema.table` or `table` (resolved with the migration's search_path)
    column: str | None = None
    missing_ok: bool = False

    @property
    def object(self) -> str:
        return self.table if self.column is None else f"{self.table}.{self.column}"


def _table_name(parts: Sequence[str]) -> str:
    return qualified(parts[-2], parts[-1]) if len(parts) > 1 else qualified(None, parts[-1])


def _drop_tables(node: ast.DropStmt, index: int) -> list[Loss]:
    if node.removeType != ObjectType.OBJECT_TABLE:
        return []
    return [
        Loss(index, "drop_table", _table_name([p.sval for p in obj]), missing_ok=bool(node.missing_ok))
        for obj in node.objects or ()
    ]


_COLUMN_LOSSES: dict[Any, LossKind] = {
    AlterTableType.AT_DropColumn: "drop_column",
    AlterTableType.AT_AlterColumnType: "change_type",
}


def _alter_table(node: ast.AlterTableStmt, index: int) -> list[Loss]:
    rel = node.relation
    if node.objtype != ObjectType.OBJECT_TABLE or rel is None or not rel.relname:
        return []
    table = qualified(rel.schemaname, str(rel.relname))
    return [
        Loss(index, _COLUMN_LOSSES[cmd.subtype], table, cmd.name, missing_ok=bool(node.missing_ok or cmd.missing_ok))
        for cmd in node.cmds or ()
        if isinstance(cmd, ast.AlterTableCmd) and cmd.subtype in _COLUMN_LOSSES and cmd.name
    ]


def _rename_column(node: ast.RenameStmt, index: int) -> list[Loss]:
    """A renamed column: a rollback plans it back as drop + add (the planner cannot see a rename), so its values are
    kept under the old name, to be written back like a dropped column's."""
    rel = node.relation
    if node.renameType != ObjectType.OBJECT_COLUMN or node.relationType != ObjectType.OBJECT_TABLE:
        return []
    if rel is None or not rel.relname or not node.subname:
        return []
    table = qualified(rel.schemaname, str(rel.relname))
    return [Loss(index, "drop_column", table, node.subname, missing_ok=bool(node.missing_ok))]


def statement_losses(statement: SqlStatement, index: int) -> list[Loss]:
    """The data `statement` (the `index`-th of its migration) would destroy, or a rollback of it would."""
    if statement.node_type not in ("DropStmt", "AlterTableStmt", "RenameStmt"):
        return []
    node = statement.node
    if isinstance(node, ast.DropStmt):
        return _drop_tables(node, index)
    if isinstance(node, ast.AlterTableStmt):
        return _alter_table(node, index)
    if isinstance(node, ast.RenameStmt):
        return _rename_column(node, index)
    return []


def migration_losses(statements: Sequence[SqlStatement]) -> list[Loss]:
    """Every loss of a migration's statements (transaction control left out of the numbering)."""
    body = [s for s in statements if s.tx_control is None]
    return [loss for i, s in enumerate(body, start=1) for loss in statement_losses(s, i)]
