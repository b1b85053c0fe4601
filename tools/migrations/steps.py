"""How a migration's statements must run: the parser's statements grouped into steps (pure).

Statements come from `tools.migrations.parse.split_statements` (author's text, line, kind, whether PostgreSQL
lets them run inside a transaction, the script's own BEGIN/COMMIT). `plan_steps` groups them; `extension_name`
reads which extension a CREATE EXTENSION creates from its tokens (never a regex over SQL text).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from pgshift.tools.errors import ConfigError
from pgshift.tools.migrations.parse import SqlStatement, StatementKind, TxCharacteristics, split_statements
from pgshift.tools.migrations.rewrite import rewrite_for_target

Statement = SqlStatement

__all__ = [
    "Prepared",
    "Statement",
    "Step",
    "TxCharacteristics",
    "body",
    "extension_name",
    "plan_steps",
    "prepare",
    "split_statements",
]


@dataclass(frozen=True)
class Step:
    """Statements that run together: in one transaction (opened with `characteristics`: the isolation level, read
    only and deferrable the script asks for), or alone outside any transaction."""

    statements: tuple[Statement, ...]
    transactional: bool
    characteristics: TxCharacteristics = field(default_factory=TxCharacteristics)

    @property
    def lines(self) -> str:
        first, last = self.statements[0].line, self.statements[-1].line
        return f"line {first}" if first == last else f"lines {first}-{last}"


def extension_name(statement: Statement) -> str | None:
    """The extension a CREATE EXTENSION statement creates (None for every other statement)."""
    if statement.kind is not StatementKind.CREATE_EXTENSION:
        return None
    rest = list(statement.tokens[2:])
    if [t.upper for t in rest[:3]] == ["IF", "NOT", "EXISTS"]:
        rest = rest[3:]
    return rest[0].name if rest else None


def body(statements: Sequence[Statement]) -> list[Statement]:
    """The statements that change something (the author's transaction control left out: BEGIN, COMMIT and the SETs
    of transaction characteristics, which the runner honours by how it opens each transaction)."""
    return [s for s in statements if s.tx_control is None]


def _refuse(statements: Sequence[Statement]) -> None:
    """What a migration's own transaction control may not do: roll back, or import another session's snapshot."""
    for s in statements:
        if s.tx_control == "rollback":
            raise ConfigError(
                f"line {s.line}: the script rolls back its own transaction; a migration must not. Remove the "
                "ROLLBACK (and what it discards). Nothing was run."
            )
        if s.characteristics is not None and s.characteristics.snapshot is not None:
            raise ConfigError(
                f"line {s.line}: SET TRANSACTION SNAPSHOT imports another session's snapshot, which no migration can "
                "rely on (that session is gone when the migration runs). Remove it. Nothing was run."
            )


def plan_steps(statements: Sequence[Statement]) -> list[Step]:
    """Group statements by how they must run, honouring the script's own transaction control as PostgreSQL runs a
    script sent at once (what `prisma migrate deploy` does) and as psql runs its BEGIN..COMMIT blocks.

    - Each COMMIT ends a transaction: a script that commits partway (`BEGIN; ...; COMMIT; BEGIN; ...; COMMIT;`)
      runs as that many transactions, one after the other. Statements before a BEGIN join its transaction;
      statements after the last COMMIT form one more.
    - A script without BEGIN..COMMIT runs as one transaction; so does one made of a single BEGIN..COMMIT block.
    - A statement that cannot run in a transaction (CREATE INDEX CONCURRENTLY, ...) runs alone, and ends the
      transaction before it; inside the script's own BEGIN..COMMIT block it is refused (PostgreSQL would refuse it).
    - Transaction characteristics (BEGIN ISOLATION LEVEL ..., SET TRANSACTION ..., SET transaction_isolation) apply
      to the transaction they are in, whatever their place in it: each step carries them and the runner opens its
      transaction with them, before any query (ours included). Session defaults (SET SESSION CHARACTERISTICS AS
      TRANSACTION ..., SET default_transaction_isolation) apply to the transactions after them: inside a
      BEGIN..COMMIT block from the next one, outside any block from the next statement (psql commits each
      statement outside a block on its own), so a transaction open outside a block ends there. They are never sent
      to the session, so they last for this migration only.
    """
    _refuse(statements)
    steps: list[Step] = []
    group: list[Statement] = []
    session = TxCharacteristics()  # the defaults SET SESSION CHARACTERISTICS gave so far
    base = session  # the defaults when the open transaction began
    own = TxCharacteristics()  # what BEGIN and SET TRANSACTION asked of the open transaction
    in_block = False

    def flush() -> TxCharacteristics:
        nonlocal own, base
        asked = own.over(base)
        if group:
            steps.append(Step(tuple(group), True, asked))
            group.clear()
        own, base = TxCharacteristics(), session
        return asked

    for s in statements:
        c = s.characteristics
        if s.tx_control == "begin":
            in_block = True
            own = c.over(own) if c is not None else own
        elif s.tx_control == "commit":
            asked = flush()
            in_block = s.chain
            if s.chain:  # COMMIT AND CHAIN: the next transaction has the same characteristics
                own = asked
        elif s.tx_control == "characteristics" and c is not None:
            if c.scope == "transaction":
                own = c.over(own)
                continue
            if not in_block:
                flush()
            nothing = c.isolation is None and c.read_only is None and c.deferrable is None
            session = TxCharacteristics() if nothing else c.over(session)  # RESET / TO DEFAULT: the server's
            if not in_block:
                base = session
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
