"""One generator per object kind: `create`, `drop` and `alter` behind one small Protocol.

A declared kind (`DeclaredGenerator`) also says what its objects depend on and whether it is recreated with what
it depends on, so the planner and the dependency graph need no rule of their own for it: a kind is its model
value (`tools.model`), its catalog query (`tools.introspect.declared.KindQuery`) and its generator here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from pgshift.tools.plan.context import Context, Node
from pgshift.tools.plan.statement import Statement


class Generator(Protocol):
    """Writes the statements for one kind of object. `alter` returns None when only drop + create will do."""

    kind: str

    def create(self, new: Any, ctx: Context) -> list[Statement]: ...

    def drop(self, old: Any, ctx: Context) -> list[Statement]: ...

    def alter(self, old: Any, new: Any, ctx: Context) -> list[Statement] | None: ...


@runtime_checkable
class DeclaredGenerator(Generator, Protocol):
    """A generator that carries its kind's dependency rules."""

    # Recreated when an object it depends on is dropped and created again (a publication's member with its table).
    recreates_dependants: bool

    def depends_on(self, obj: Any) -> Iterable[tuple[Node, bool]]:
        """(node, inside) for each object `obj` needs first; `inside`: it is dropped along with that object."""
        ...
