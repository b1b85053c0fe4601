"""How a failed migration is reported: what committed, what was rolled back, what is left to finish.

Pure text from what the runner (`tools.migrations.runner.execute_migration`) knows when a statement fails: the steps
that committed, the one that was rolled back, indexes an interrupted build left INVALID.
"""

from __future__ import annotations

from collections.abc import Sequence

from pgshift.tools.errors import PgshiftError
from pgshift.tools.migrations.steps import Step
from pgshift.tools.untrusted import fence_text


class Unfinished(PgshiftError):
    """What a migration's statements left unfinished (an index left INVALID, a constraint left NOT VALID). Raised
    inside the runner to stop before the history is written; the runner reports it as a DatabaseError."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def segment_text(step: Step, index_of: dict[int, int]) -> str:
    """How a failure report names a step: its statements, its lines, and how it ran."""
    numbers = ", ".join(str(index_of[id(s)]) for s in step.statements)
    noun = "statement" if len(step.statements) == 1 else "statements"
    if not step.transactional:
        return f"{noun} {numbers} ({step.lines}, outside any transaction)"
    asked = f" {step.characteristics.sql}" if step.characteristics.sql else ""
    return f"the{asked} transaction of {step.lines} ({noun} {numbers})"


def failure_state(
    *,
    lost: bool,
    index_note: bool,
    index_name: str | None,
    rebuilt: Sequence[str],
    nothing_committed: bool,
    failing: Step | None,
    ran: Sequence[int],
    current: int | None,
    total: int,
    committed: Sequence[str],
    rolled_back: str | None,
) -> str:
    """What a failed migration left in the database, in sentences (statements by their 1-based number)."""
    note = (
        f" An interrupted CREATE INDEX CONCURRENTLY leaves its index{f' ({index_name})' if index_name else ''} "
        "behind, INVALID: pgshift drops it (DROP INDEX CONCURRENTLY) and builds it again when it runs this migration "
        "next."
        if index_note
        else ""
    )
    dropped = (
        f" The INVALID index(es) {fence_text(', '.join(rebuilt))} an earlier run left were dropped to be built again."
        if rebuilt
        else ""
    )
    if nothing_committed and (failing is None or failing.transactional):
        ended = " (PostgreSQL rolls back an open transaction when its session ends)" if lost else ""
        return (
            f"The transaction was rolled back{ended}: nothing of this migration remains and the history tables are "
            f"unchanged.{dropped}"
        )
    if nothing_committed:
        return (
            "No statement of it committed, but that statement runs outside any transaction: what it did before it "
            "stopped stays." + (note or " Check the objects it names before retrying.") + " The history tables are "
            f"unchanged: the migration is NOT recorded as applied and runs again from its first statement next "
            f"time.{dropped}"
        )
    state = (
        f"Statements {', '.join(map(str, ran))} of {total} ran and stay committed (the script runs them in separate "
        "transactions or outside any); "
        + (
            f"statement {current} failed and the rest did not run."
            if current is not None
            else "recording the history failed."
        )
    )
    state += f" In the database now: {'; '.join(committed)} committed"
    if rolled_back is not None:
        state += f"; {rolled_back} was rolled back"
    return state + "." + note + dropped
