"""How a migration's statements must run: the parser's statements grouped into steps (pure).

Statements come from `tools.migrations.parse.split_statements` (author's text, line, kind, whether PostgreSQL
lets them run inside a transaction, the script's own BEGIN/COMMIT). `plan_steps` groups them; `extension_name`
reads which extension a CREATE EXTENSION creates from its tokens (never a regex over SQL text).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from pgshift.tools.errors import ConfigError
from pgshift.tools.migrations.parse import SqlStatement, StatementKind, split_statements
from pgshift.tools.migrations.rewrite import rewrite_for_target

Statement = SqlStatement

__all__ = ["Prepared", "Statement", "Step", "body", "extension_name", "plan_steps", "prepare", "split_statements"]


@dataclass(frozen=True)
class Step:
    """Statements that run together: in one transaction, or alone outside any transaction."""

    statements: tuple[Statement, ...]
    transactional: bool


def extension_name(statement: Statement) -> str | None:
    """The extension a CREATE EXTENSION statement creates (None for every other statement)."""
    if statement.kind is not StatementKind.CREATE_EXTENSION:
        return None
    rest = list(statement.tokens[2:])
    if [t.upper for t in rest[:3]] == ["IF", "NOT", "EXISTS"]:
        rest = rest[3:]
    return rest[0].name if rest else None


def body(statements: Sequence[Statement]) -> list[Statement]:
    """The statements that change something (the author's transaction control left out)."""
    return [s for s in statements if s.tx_control is None]


def plan_steps(statements: Sequence[Statement]) -> list[Step]:
    """Group statements by how they must run.

    Without non-transactional statements the whole script is one step (the author's BEGIN/COMMIT merge into
    our transaction, which is at least as atomic). Otherwise each explicit BEGIN..COMMIT block is a step,
    each non-transactional statement runs alone, and the transactional statements between them are grouped.
    """
    rollback = next((s for s in statements if s.tx_control == "rollback"), None)
    if rollback is not None:
        raise ConfigError(
            f"line {rollback.line}: the script rolls back its own transaction; a migration must not. Remove the "
            "ROLLBACK (and what it discards). Nothing was run."
        )
    if all(s.transactional for s in body(statements)):
        rest = body(statements)
        return [Step(tuple(rest), True)] if rest else []
    steps: list[Step] = []
    group: list[Statement] = []
    in_block = False

    def flush() -> None:
        if group:
            steps.append(Step(tuple(group), True))
            group.clear()

    for s in statements:
        if s.tx_control == "begin":
            flush()
            in_block = True
        elif s.tx_control is not None:
            flush()
            in_block = False
        elif not s.transactional:
            if in_block:
                raise ConfigError(
                    f"line {s.line}: a statement that cannot run inside a transaction sits inside the script's own "
                    "BEGIN..COMMIT block; PostgreSQL would refuse it. Move it outside the block. Nothing was run."
                )
            flush()
            steps.append(Step((s,), False))
        else:
            group.append(s)
    flush()
    return steps


@dataclass(frozen=True)
class Prepared:
    """A script ready to run on one target: each statement's text rewritten where the target needs it."""

    statements: tuple[Statement, ...]
    """What runs, in order (the author's BEGIN/COMMIT included, for `plan_steps`)."""
    originals: tuple[str, ...]
    """The author's text of each statement."""
    reasons: tuple[tuple[str, ...], ...]
    """Why each statement was rewritten (empty when it runs as written)."""
    supabase: bool = False
    """Whether it was prepared for a Supabase database."""


def prepare(statements: Sequence[Statement], *, supabase: bool, rewrite: bool = True) -> Prepared:
    """The statements to run: rewritten for the target by `rewrite_for_target` (idempotent guards, Supabase's
    extension schema) unless `rewrite` is False; the author's text otherwise."""
    originals = tuple(s.text for s in statements)
    if not rewrite:
        return Prepared(tuple(statements), originals, tuple(() for _ in statements), supabase)
    result = rewrite_for_target(statements, supabase=supabase)
    return Prepared(
        statements=tuple(replace(s, text=r.sql) for s, r in zip(statements, result.statements, strict=True)),
        originals=originals,
        reasons=tuple(tuple(w.reason for w in r.rewrites) if r.changed else () for r in result.statements),
        supabase=supabase,
    )
