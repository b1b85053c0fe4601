"""execute_sql: run one SQL statement, read-only unless the environment allows writes and the call asks.

Exactly one statement (PostgreSQL's own grammar splits the text; the one statement runner sends it as one
prepared statement, so the server refuses a second command too). Read-only is enforced twice: PostgreSQL runs
it in a READ ONLY transaction with a statement timeout (a write is refused, SQLSTATE 25006), and before it is
sent `tools.safety.read_only_refusal` refuses what a READ ONLY transaction still allows (COPY TO PROGRAM,
pg_read_file, pg_terminate_backend, LOCK, dblink_exec, ...). A write runs in one transaction and may not hold
transaction control. Rows are read through a cursor within `limit` and a byte budget; long values of a proven
SELECT (or DML ... RETURNING) are cut by the server. They are returned, with their column names and types,
fenced as untrusted data; PostgreSQL's error text is fenced inside our messages.
"""

from __future__ import annotations

from typing import Any, Literal

import asyncpg
from pglast import ast
from pydantic import BaseModel, ConfigDict, Field

from pgshift.tools.approval import ApprovalStore, instruction
from pgshift.tools.databases import DEFAULT_STATEMENT_TIMEOUT_MS, Databases
from pgshift.tools.errors import ConfigError, DatabaseError, NotAllowed
from pgshift.tools.migrations.parse import SqlStatement, StatementKind, split_statements
from pgshift.tools.safety import FunctionPolicy, apply_refusal, load_function_policy, read_only_refusal
from pgshift.tools.statement_runner import VALUE_CHARS, Outcome, RowBudget, Wrap, run_statement
from pgshift.tools.untrusted import Untrusted, decode_json_columns, fence, fence_text, jsonable

MAX_LIMIT = 10_000


ANSWER_ROW_BYTES = 20 * 1024
"""Rows an answer carries (their values' bytes): with column names and fences the answer stays under 40,000
characters; a migration's own rows keep the runner's larger budget."""


class ColumnMeta(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    type: str


class ResultSet(BaseModel):
    model_config = ConfigDict(frozen=True)

    columns: list[ColumnMeta]
    rows: list[dict[str, Any]] = Field(description="One object per row, keyed by column name")


class ExecuteResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    environment: str
    status: Literal["ok", "confirmation_required"]
    mode: Literal["read_only", "write"]
    committed: bool = Field(description="True only when a write was committed")
    row_count: int = Field(0, description="Rows returned (at most limit)")
    truncated: bool = Field(False, description="The answer is not whole: see `truncation` for why")
    truncation: str | None = Field(
        None,
        description=f"Why: more rows than `limit`, rows past the {ANSWER_ROW_BYTES // 1024} KiB budget of an answer, "
        f"or values longer than {VALUE_CHARS} characters cut (by the server)",
    )
    result: Untrusted[ResultSet] | None = Field(None, description="Columns and rows, fenced as untrusted data")
    approval_id: str | None = Field(
        None, description="Approval request a person must approve (pgshift approve <id>) before this write runs"
    )
    message: str = ""


def _db_error(exc: asyncpg.PostgresError, environment: str, state: str) -> DatabaseError:
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(exc, asyncpg.ReadOnlySQLTransactionError):
        msg = (
            f"refused: the statement writes, but execute_sql ran it read-only on '{environment}' "
            "(PostgreSQL enforced a READ ONLY transaction). Nothing was changed. To write, the environment must "
            "allow writes and the call must pass write=true."
        )
    elif isinstance(exc, asyncpg.QueryCanceledError):
        msg = f"statement cancelled by statement_timeout on '{environment}'. {state}"
    else:
        msg = f"PostgreSQL error {sqlstate} on '{environment}': {fence_text(exc)}. {state}"
    return DatabaseError(msg, sqlstate)


async def execute_sql(
    db: Databases,
    approvals: ApprovalStore,
    environment: str,
    sql: str,
    limit: int = 100,
    write: bool = False,
    approval_id: str | None = None,
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
) -> ExecuteResult:
    if not sql.strip():
        raise ConfigError("sql is empty")
    if not 1 <= limit <= MAX_LIMIT:
        raise ConfigError(f"limit must be between 1 and {MAX_LIMIT}")
    statement = one_statement(sql, write)
    env = db.environment(environment)
    if write:
        db.require_writable(environment)
        if env.protected:
            binding = ("execute_sql", environment, sql)
            if approval_id is None:
                request = approvals.file("execute_sql", environment, env.redacted_url, [sql], binding)
                return ExecuteResult(
                    environment=environment,
                    status="confirmation_required",
                    mode="write",
                    committed=False,
                    approval_id=request.id,
                    message=instruction(request, "this SQL (send the same sql with write=true)"),
                )
            approvals.consume(approval_id, env.redacted_url, binding, "this SQL")
    elif approval_id is not None:
        raise NotAllowed("approval_id only applies to writes (write=true): nothing was run")

    async with db.connection(environment) as conn:
        tx = conn.transaction(readonly=not write)
        await tx.start()
        committed = False
        try:
            await conn.execute(f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}")
            if not write:
                refuse_read(statement, await load_function_policy(conn))
            outcome = await run_statement(
                conn,
                statement.text,
                budget=RowBudget(rows=limit, bytes=ANSWER_ROW_BYTES, drain=write),
                wrap=wrap_for(statement, write),
            )
            if not conn.is_in_transaction():
                raise NotAllowed(
                    f"the statement ended execute_sql's transaction on '{environment}': check what it did there."
                )
            if write:
                await tx.commit()
                committed = True
            else:
                await tx.rollback()
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if not committed and conn.is_in_transaction():
                await tx.rollback()
            if isinstance(exc, asyncpg.InterfaceError):
                raise DatabaseError(f"the statement was refused: {exc}. Nothing was changed.") from None
            raise _db_error(exc, environment, "The transaction was rolled back; nothing was changed.") from None
        except BaseException:
            if not committed and conn.is_in_transaction():
                await tx.rollback()
            raise
    return _answer(environment, write, committed, outcome)


def one_statement(sql: str, write: bool) -> SqlStatement:
    """The one statement `sql` holds (refused: none, several, or in write mode one a migration may not run,
    or transaction control that would end our transaction)."""
    statements = split_statements(sql)
    if not statements:
        raise ConfigError("sql holds no statement (only comments or whitespace)")
    if len(statements) > 1:
        lines = ", ".join(str(s.line) for s in statements)
        raise NotAllowed(
            f"execute_sql runs exactly one statement; this SQL holds {len(statements)} (starting at lines {lines}). "
            "Nothing was run and nothing was changed: send them one call at a time."
        )
    statement = statements[0]
    if write:
        reason = apply_refusal(statement)
        if reason is None and statement.kind in TRANSACTION_CONTROL:
            reason = (
                "transaction control would end or split the transaction execute_sql runs the statement in; "
                "send the statement alone"
            )
        if reason is not None:
            raise NotAllowed(
                f"refused (line {statement.line}): {reason.rstrip('.')}. Nothing was run and nothing was changed."
            )
    return statement


TRANSACTION_CONTROL = frozenset(
    {StatementKind.BEGIN, StatementKind.COMMIT, StatementKind.ROLLBACK, StatementKind.SAVEPOINT}
)


def refuse_read(statement: SqlStatement, policy: FunctionPolicy) -> None:
    """Refuse, before it is sent, a read that could act outside its READ ONLY transaction."""
    reason = read_only_refusal(statement, policy)
    if reason is not None:
        raise NotAllowed(
            f"refused read-only (line {statement.line}): {reason.rstrip('.')}. Nothing was run and nothing was changed."
        )


def wrap_for(statement: SqlStatement, write: bool) -> Wrap | None:
    """How long values can be cut on the server: proven from the parse tree, never guessed from the text."""
    node = statement.node
    if isinstance(node, ast.SelectStmt):
        plain = node.intoClause is None and not node.lockingClause
        return Wrap.QUERY if plain and (not write or node.withClause is None) else None
    if isinstance(node, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt):
        return Wrap.RETURNING if node.returningClause is not None and node.withClause is None else None
    return None


def _answer(environment: str, write: bool, committed: bool, outcome: Outcome) -> ExecuteResult:
    rows = [
        {c.name: jsonable(decode_json_columns(v, c.type)) for c, v in zip(outcome.columns, row, strict=True)}
        for row in outcome.rows
    ]
    columns = [ColumnMeta(name=c.name, type=c.type) for c in outcome.columns]
    return ExecuteResult(
        environment=environment,
        status="ok",
        mode="write" if write else "read_only",
        committed=committed,
        row_count=len(rows),
        truncated=outcome.truncated is not None,
        truncation=outcome.truncated,
        result=fence(ResultSet(columns=columns, rows=rows)) if outcome.columns else None,
        message=outcome.status,
    )
