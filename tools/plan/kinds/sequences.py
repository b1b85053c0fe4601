"""Sequences and their `OWNED BY` link (a separate step: it needs the owning column to exist)."""

from __future__ import annotations

from dataclasses import dataclass

from pgshift.tools.model import Sequence
from pgshift.tools.plan.context import Context
from pgshift.tools.plan.ddl import comment_on, sequence_options
from pgshift.tools.plan.statement import Hazard, HazardKind, Statement


@dataclass(frozen=True)
class Ownership:
    """`ALTER SEQUENCE seq OWNED BY column`: keyed by the sequence."""

    sequence: str
    column: str  # `schema.table.column`

    @property
    def key(self) -> str:
        return self.sequence


def column_ref(column_key: str) -> str:
    """`schema.table.column` is already the qualified reference OWNED BY wants."""
    return column_key


class SequenceGenerator:
    kind = "sequence"

    def create(self, new: Sequence, ctx: Context) -> list[Statement]:
        out = [
            Statement(sql=f"CREATE SEQUENCE {new.key} {sequence_options(new.options)}", object=f"sequence {new.key}")
        ]
        if new.comment is not None:
            out.append(Statement(sql=comment_on(f"SEQUENCE {new.key}", new.comment)))
        return out

    def drop(self, old: Sequence, ctx: Context) -> list[Statement]:
        hazard = Hazard.of(HazardKind.DELETES_DATA, f"sequence {old.key} and its current value are dropped")
        return [Statement(sql=f"DROP SEQUENCE {old.key}", hazards=(hazard,), object=f"sequence {old.key}")]

    def alter(self, old: Sequence, new: Sequence, ctx: Context) -> list[Statement] | None:
        out = []
        if old.options != new.options:
            out.append(Statement(sql=f"ALTER SEQUENCE {new.key} {sequence_options(new.options)}"))
        if old.comment != new.comment:
            out.append(Statement(sql=comment_on(f"SEQUENCE {new.key}", new.comment)))
        return out


class OwnershipGenerator:
    kind = "sequence_owner"

    def create(self, new: Ownership, ctx: Context) -> list[Statement]:
        return [Statement(sql=f"ALTER SEQUENCE {new.sequence} OWNED BY {column_ref(new.column)}")]

    def drop(self, old: Ownership, ctx: Context) -> list[Statement]:
        return [Statement(sql=f"ALTER SEQUENCE {old.sequence} OWNED BY NONE")]

    def alter(self, old: Ownership, new: Ownership, ctx: Context) -> list[Statement] | None:
        return self.create(new, ctx)
