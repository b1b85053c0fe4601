"""execute_sql: run one SQL statement, read-only unless the environment allows writes and the call asks.

Read-only is enforced by PostgreSQL: the statement runs in a READ ONLY transaction with a statement
timeout, so a write is refused by the server (SQLSTATE 25006) whatever the SQL text looks like.
Rows are read through a cursor (at most `limit` + 1 are fetched) and returned fenced as untrusted data.
"""

from __future__ import annotations

from typing import Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from tools.confirm import Confirmations
from tools.databases import DEFAULT_STATEMENT_TIMEOUT_MS, Databases
from tools.errors import ConfigError, DatabaseError, NotAllowed
from tools.untrusted import UntrustedRows, decode_json_columns, fence_rows, jsonable

MAX_LIMIT = 10_000


class ColumnMeta(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    type: str


class ExecuteResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    environment: str
    status: Literal["ok", "confirmation_required"]
    mode: Literal["read_only", "write"]
    committed: bool = Field(description="True only when a write was committed")
    columns: list[ColumnMeta] = []
    row_count: int = Field(0, description="Rows returned (at most limit)")
    truncated: bool = Field(False, description="More rows existed than limit; only the first `limit` are returned")
    data: UntrustedRows | None = None
    confirmation_token: str | None = Field(
        None, description="Pass back as confirm=... with the same SQL to run this write on a protected environment"
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
        msg = f"PostgreSQL error {sqlstate} on '{environment}': {exc}. {state}"
    return DatabaseError(msg, sqlstate)


async def execute_sql(
    db: Databases,
    confirmations: Confirmations,
    environment: str,
    sql: str,
    limit: int = 100,
    write: bool = False,
    confirm: str | None = None,
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
) -> ExecuteResult:
    if not sql.strip():
        raise ConfigError("sql is empty")
    if not 1 <= limit <= MAX_LIMIT:
        raise ConfigError(f"limit must be between 1 and {MAX_LIMIT}")
    env = db.environment(environment)
    if write:
        db.require_writable(environment)
        if env.protected:
            if confirm is None:
                token = confirmations.issue("execute_sql", environment, sql)
                return ExecuteResult(
                    environment=environment,
                    status="confirmation_required",
                    mode="write",
                    committed=False,
                    confirmation_token=token,
                    message=(
                        f"'{environment}' is protected: nothing was run. Show the SQL to the person; if they approve, "
                        "call execute_sql again with the same sql, write=true and confirm=<confirmation_token>."
                    ),
                )
            confirmations.check(confirm, "execute_sql", environment, sql, what="this SQL")
    elif confirm is not None:
        raise NotAllowed("confirm only applies to writes (write=true): nothing was run")

    async with db.connection(environment) as conn:
        tx = conn.transaction(readonly=not write)
        await tx.start()
        committed = False
        try:
            await conn.execute(f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}")
            stmt = await conn.prepare(sql)
            attrs = stmt.get_attributes()
            columns = [ColumnMeta(name=a.name, type=a.type.name) for a in attrs]
            rows: list[dict[str, object]] = []
            truncated = False
            if attrs:
                fetched = await (await stmt.cursor()).fetch(limit + 1) if not write else await stmt.fetch()
                truncated = len(fetched) > limit
                for rec in fetched[:limit]:
                    rows.append(
                        {
                            a.name: jsonable(decode_json_columns(v, a.type.name))
                            for a, v in zip(attrs, rec.values(), strict=True)
                        }
                    )
                status_msg = stmt.get_statusmsg() or ""
            else:
                await stmt.fetch()
                status_msg = stmt.get_statusmsg() or ""
            if write:
                await tx.commit()
                committed = True
            else:
                await tx.rollback()
        except asyncpg.PostgresError as exc:
            if not committed:
                await tx.rollback()
            raise _db_error(exc, environment, "The transaction was rolled back; nothing was changed.") from None
        except BaseException:
            if not committed:
                await tx.rollback()
            raise
    return ExecuteResult(
        environment=environment,
        status="ok",
        mode="write" if write else "read_only",
        committed=committed,
        columns=columns,
        row_count=len(rows),
        truncated=truncated,
        data=fence_rows(rows) if attrs else None,
        message=status_msg,
    )
