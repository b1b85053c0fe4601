"""One generator per object kind: `create`, `drop` and `alter` behind one small Protocol."""

from __future__ import annotations

from typing import Any, Protocol

from tools.plan.context import Context
from tools.plan.statement import Statement


class Generator(Protocol):
    """Writes the statements for one kind of object. `alter` returns None when only drop + create will do."""

    kind: str

    def create(self, new: Any, ctx: Context) -> list[Statement]: ...

    def drop(self, old: Any, ctx: Context) -> list[Statement]: ...

    def alter(self, old: Any, new: Any, ctx: Context) -> list[Statement] | None: ...
