"""Functions, procedures and triggers."""

from __future__ import annotations

from pgshift.tools.model import Function, Trigger
from pgshift.tools.plan.context import Context
from pgshift.tools.plan.ddl import comment_on, strip_semicolon
from pgshift.tools.plan.statement import Hazard, HazardKind, Statement
from pgshift.tools.sql import quote_ident

_COMPILED_LANGUAGES = ("c", "internal")


def _routine_kind(f: Function) -> str:
    return "PROCEDURE" if f.kind == "PROCEDURE" else "FUNCTION"


class FunctionGenerator:
    kind = "function"

    def create(self, new: Function, ctx: Context) -> list[Statement]:
        hazards: tuple[Hazard, ...] = ()
        if new.language not in _COMPILED_LANGUAGES and not new.standard_body:
            hazards = (
                Hazard.of(HazardKind.UNTRACKABLE_DEPENDENCY, f"the body of {new.key} ({new.language}) is not tracked"),
            )
        out = [Statement(sql=strip_semicolon(new.definition), hazards=hazards, object=f"function {new.key}")]
        if new.comment is not None:
            out.append(Statement(sql=comment_on(f"{_routine_kind(new)} {new.key}", new.comment)))
        return out

    def drop(self, old: Function, ctx: Context) -> list[Statement]:
        return [Statement(sql=f"DROP {_routine_kind(old)} {old.key}", object=f"function {old.key}")]

    def alter(self, old: Function, new: Function, ctx: Context) -> list[Statement] | None:
        if (old.kind, old.result, old.arguments) != (new.kind, new.result, new.arguments):
            return None  # CREATE OR REPLACE cannot change the result type or the arguments
        out = []
        if old.definition != new.definition:
            out += self.create(new, ctx)[:1]
        if old.comment != new.comment:
            out.append(Statement(sql=comment_on(f"{_routine_kind(new)} {new.key}", new.comment)))
        return out


_ENABLED = {"O": "ENABLE TRIGGER", "D": "DISABLE TRIGGER", "R": "ENABLE REPLICA TRIGGER", "A": "ENABLE ALWAYS TRIGGER"}


class TriggerGenerator:
    kind = "trigger"

    def create(self, new: Trigger, ctx: Context) -> list[Statement]:
        out = [Statement(sql=strip_semicolon(new.definition), object=f"trigger {new.key}")]
        if new.enabled != "O":
            out.append(Statement(sql=f"ALTER TABLE {new.table} {_ENABLED[new.enabled]} {quote_ident(new.name)}"))
        if new.comment is not None:
            out.append(Statement(sql=comment_on(f"TRIGGER {quote_ident(new.name)} ON {new.table}", new.comment)))
        return out

    def drop(self, old: Trigger, ctx: Context) -> list[Statement]:
        return [Statement(sql=f"DROP TRIGGER {quote_ident(old.name)} ON {old.table}", object=f"trigger {old.key}")]

    def alter(self, old: Trigger, new: Trigger, ctx: Context) -> list[Statement] | None:
        if old.definition != new.definition:
            return None
        out = []
        if old.enabled != new.enabled:
            out.append(Statement(sql=f"ALTER TABLE {new.table} {_ENABLED[new.enabled]} {quote_ident(new.name)}"))
        if old.comment != new.comment:
            out.append(Statement(sql=comment_on(f"TRIGGER {quote_ident(new.name)} ON {new.table}", new.comment)))
        return out
