"""The relations a script names, read from PostgreSQL's parse tree (every `RangeVar` node), so a pre-flight check
can ask who holds locks on them before the script runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pglast import ast
from pglast.visitors import Visitor

from pgshift.tools.migrations.parse import SqlStatement
from pgshift.tools.sql import qualified


class _Relations(Visitor):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def visit_RangeVar(self, _ancestors: Any, node: ast.RangeVar) -> None:
        if node.relname:
            self.names.append(qualified(node.schemaname, node.relname))


def named_relations(statements: Sequence[SqlStatement]) -> list[str]:
    """Quoted names (`"schema"."table"` or `"table"`) of every relation the statements name, in first-seen order.
    Unqualified names are resolved later by the database, with its own search_path."""
    seen: dict[str, None] = {}
    for statement in statements:
        visitor = _Relations()
        visitor(statement.node)
        seen.update(dict.fromkeys(visitor.names))
    return list(seen)
