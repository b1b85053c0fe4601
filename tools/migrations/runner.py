"""Running a migration on one database: the apply session, the statements, the history, and what failed.

One apply at a time per database (a session advisory lock, waited for within a bound), `lock_timeout` and
`statement_timeout` set, and the statements plus the history rows in one transaction. A script holding
statements that cannot run in a transaction (`CREATE INDEX CONCURRENTLY`, or its own BEGIN/COMMIT around
them) runs step by step, each step the way it needs, and a failure says exactly which statements ran.
Used by `apply_migration` (tools/apply.py) and `deploy` (tools/deploy.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from pgshift.tools import ledger
from pgshift.tools.databases import Databases
from pgshift.tools.errors import ConfigError, DatabaseError, NotAllowed, PgshiftError
from pgshift.tools.migrations import leftovers, session_settings
from pgshift.tools.migrations.check import EXTENSIONS_SQL, ROLES_SQL, find_missing
from pgshift.tools.migrations.failures import Unfinished, failure_state, segment_text
from pgshift.tools.migrations.folder import Migration, checksum, checksum_matches
from pgshift.tools.migrations.lint import LintFinding
from pgshift.tools.migrations.steps import Prepared, Statement, Step, TxCharacteristics, body, plan_steps, prepare
from pgshift.tools.migrations.touches import named_relations
from pgshift.tools.safety import apply_refusal
from pgshift.tools.statement_runner import run_statement
from pgshift.tools.undo import capture as undo
from pgshift.tools.undo.store import KeptData, SnapshotOptions
from pgshift.tools.untrusted import Untrusted, fence_text
from pgshift.tools.watch.locks import lock_conflicts

T = TypeVar("T")

DEFAULT_LOCK_TIMEOUT_MS = 5_000
DEFAULT_STATEMENT_TIMEOUT_MS = 10 * 60_000
DEFAULT_BUSY_WAIT_MS = 15_000
APPLY_LOCK_KEY = 0x70_67_73_68_69_66_74  # "pgshift": one apply at a time per database


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class PlannedStatement(Frozen):
    index: int = Field(description="1-based position in the migration")
    line: int = Field(description="Line of the migration file where the statement starts")
    sql: str
    transactional: bool = Field(description="False for statements PostgreSQL refuses inside a transaction")
    original: str | None = Field(None, description="The author's text, when `sql` is a rewrite of it")
    rewrites: list[str] = Field(default_factory=list, description="Why the statement was rewritten for the target")


class ApplyResult(Frozen):
    environment: str
    version: str
    name: str
    source: str = Field(description="prisma, supabase or sql (given inline)")
    checksum: str
    status: Literal["applied", "already_applied", "confirmation_required", "dry_run"]
    mode: Literal["single_transaction", "stepwise"] = Field(
        description="single_transaction: statements and history commit together; stepwise: the script has "
        "statements that cannot run in a transaction"
    )
    statements: list[PlannedStatement]
    target_fingerprint: str | None = Field(None, description="Schema fingerprint the approval is bound to")
    approval_id: str | None = Field(
        None, description="Approval request a person must approve (pgshift approve <id>) before this migration runs"
    )
    recorded_in: list[str] = Field(default_factory=list, description="History tables written")
    hazards: list[LintFinding] = Field(
        default_factory=list, description="Lint findings for the target (shown with the plan before confirmation)"
    )
    blockers: list[str] = Field(default_factory=list, description="Dry run: why applying now would fail")
    changes: Untrusted[list[str]] | None = Field(
        None,
        description="Dry run: schema objects the migration would add (+), drop (-) or change (~), fenced: names are "
        "read from the database",
    )
    duration_ms: int | None = None
    snapshot_id: int | None = Field(
        None, description="Snapshot of the schema taken before this migration: rollback(snapshot=...) returns to it"
    )
    kept_data: list[KeptData] = Field(
        default_factory=list, description="Data the migration destroyed, kept in the pgshift schema for rollback"
    )
    kept_bytes: int | None = Field(None, description="Total size of kept_data")
    message: str = ""

    @classmethod
    def of(cls, migration: Migration, environment: str, **fields: Any) -> ApplyResult:
        """A result about `migration` on `environment` (its identity fields filled in)."""
        return cls(
            environment=environment,
            version=migration.version,
            name=migration.name,
            source=migration.source,
            checksum=migration.checksum,
            **fields,
        )


@dataclass(frozen=True)
class Timeouts:
    lock_ms: int = DEFAULT_LOCK_TIMEOUT_MS
    statement_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS
    busy_ms: int = DEFAULT_BUSY_WAIT_MS


class ConnectionLost(DatabaseError):
    """The session died mid-apply. Whether the last transaction committed is checked on a new connection."""

    def __init__(self, message: str, sqlstate: str | None, migration: Migration) -> None:
        super().__init__(message, sqlstate)
        self.migration = migration


def planned_statements(prepared: Prepared) -> list[PlannedStatement]:
    """The statements that run (the author's transaction control left out), numbered from 1."""
    rows = [
        (s, original, reasons)
        for s, original, reasons in zip(prepared.statements, prepared.originals, prepared.reasons, strict=True)
        if s.tx_control is None
    ]
    return [
        PlannedStatement(
            index=i,
            line=s.line,
            sql=s.text,
            transactional=s.transactional,
            original=original if original != s.text else None,
            rewrites=list(reasons),
        )
        for i, (s, original, reasons) in enumerate(rows, start=1)
    ]


SUPABASE_SCHEMAS = """
SELECT count(*) = 3 FROM pg_catalog.pg_namespace WHERE nspname IN ('auth', 'storage', 'extensions')
"""


async def prepare_for(
    conn: asyncpg.Connection, statements: Sequence[Statement], *, rewrite: bool, supabase: bool | None = None
) -> Prepared:
    """The statements as they will run on the target behind `conn` (a Supabase database when it has the auth,
    storage and extensions schemas, unless `supabase` says)."""
    if supabase is None:
        supabase = bool(await conn.fetchval(SUPABASE_SCHEMAS))
    return prepare(statements, supabase=supabase, rewrite=rewrite)


def statements_digest(statements: Sequence[PlannedStatement]) -> str:
    return checksum("\x1e".join(s.sql for s in statements))


# ---------------------------------------------------------------------------------------------- the session


@asynccontextmanager
async def apply_session(db: Databases, environment: str, timeouts: Timeouts) -> AsyncIterator[asyncpg.Connection]:
    """A connection holding the database's apply lock, with lock_timeout and statement_timeout set."""
    if db.environment(environment).uses_transaction_pooler:
        raise ConfigError(
            f"'{environment}' connects through Supabase's transaction pooler "
            f"({db.environment(environment).transaction_pooler_sign}), which can move each "
            "transaction to another server session: the apply lock and timeouts would not hold. Nothing was run. "
            "Use the direct connection or the session pooler (port 5432) for migrations."
        )
    async with db.connection(environment) as conn:
        try:
            await conn.execute(f"SET lock_timeout = {int(timeouts.busy_ms)}")
            await conn.execute("SELECT pg_advisory_lock($1)", APPLY_LOCK_KEY)
        except asyncpg.LockNotAvailableError:
            holder = await _lock_holder(conn)
            raise DatabaseError(
                f"another migration is being applied to '{environment}'{holder}: waited {timeouts.busy_ms} ms for it. "
                "Nothing was run and the history is unchanged; retry when it has finished.",
                "55P03",
            ) from None
        try:
            await conn.execute(
                f"SET lock_timeout = {int(timeouts.lock_ms)}; SET statement_timeout = {int(timeouts.statement_ms)}"
            )
            yield conn
        finally:
            if _usable(conn):
                try:
                    await conn.execute("RESET lock_timeout; RESET statement_timeout")
                    await conn.execute("SELECT pg_advisory_unlock($1)", APPLY_LOCK_KEY)
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                    conn.terminate()  # the pool replaces it; the server releases the lock with the session


def _usable(conn: asyncpg.Connection) -> bool:
    """False once the connection is closed (or the pool already took a broken one back)."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:
        return False


async def _lock_holder(conn: asyncpg.Connection) -> str:
    row = await conn.fetchrow(
        """SELECT a.pid, a.application_name, a.backend_start FROM pg_locks l JOIN pg_stat_activity a USING (pid)
           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
             AND l.classid = ($1::bigint >> 32)::oid AND l.objid = ($1::bigint & 4294967295)::oid
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())""",
        APPLY_LOCK_KEY,
    )
    return f" (session pid {row['pid']} holds the apply lock)" if row else ""


async def target_fingerprint(conn: asyncpg.Connection) -> str:
    """The target's schema fingerprint, which approvals are bound to."""
    from pgshift.tools.introspect import introspect

    return (await introspect(conn)).fingerprint()


# ---------------------------------------------------------------------------------------------- running


def excerpt(sql: str, limit: int = 160) -> str:
    one_line = " ".join(sql.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def describe_failure(exc: BaseException, timeouts: Timeouts) -> tuple[str, str | None]:
    """What PostgreSQL said, in a sentence, and the SQLSTATE."""
    if isinstance(exc, Unfinished):
        return f"its work is not finished: {fence_text('; '.join(exc.problems))}", None
    if isinstance(exc, asyncpg.LockNotAvailableError):
        return (
            f"could not get a lock within lock_timeout ({timeouts.lock_ms} ms): another session holds a lock on "
            "an object this statement changes",
            exc.sqlstate,
        )
    if isinstance(exc, asyncpg.QueryCanceledError):
        return f"cancelled by statement_timeout ({timeouts.statement_ms} ms) or by another session", exc.sqlstate
    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.AdminShutdownError | asyncpg.InterfaceError | OSError):
        said = fence_text(exc) if isinstance(exc, asyncpg.PostgresError) else str(exc)
        return f"the connection was lost ({type(exc).__name__}: {said})", getattr(exc, "sqlstate", None)
    if isinstance(exc, asyncpg.PostgresError):
        detail = f" ({exc.detail})" if getattr(exc, "detail", None) else ""
        return f"PostgreSQL error {exc.sqlstate}: {fence_text(f'{exc}{detail}')}", exc.sqlstate
    return f"{type(exc).__name__}: {exc}", None


_CONNECTION_LOST = (asyncpg.PostgresConnectionError, asyncpg.AdminShutdownError, asyncpg.InterfaceError, OSError)


async def _run(conn: asyncpg.Connection, statement: Statement) -> None:
    await run_statement(conn, statement)  # one command: PostgreSQL refuses a second one in the text


def _begin(c: TxCharacteristics) -> dict[str, Any]:
    """`conn.transaction()` options that open a transaction with the characteristics the script asks for."""
    return {"isolation": c.isolation, "readonly": bool(c.read_only), "deferrable": bool(c.deferrable)}


async def execute_migration(
    conn: asyncpg.Connection,
    environment: str,
    migration: Migration,
    prepared: Prepared,
    timeouts: Timeouts,
    *,
    client: str = "pgshift",
    prisma_schema: str = ledger.DEFAULT_PRISMA_SCHEMA,
    snapshots: SnapshotOptions | None = None,
) -> ApplyResult:
    """Run the prepared statements of `migration` on `conn` (holding the apply lock) and record the history.

    Each step (`plan_steps`) runs as the script asks: its transactions opened with the isolation level, read only
    and deferrable the script sets (before any query, ours included), its COMMITs honoured, statements that cannot
    run in a transaction alone. The history rows are written in the last transaction, after checking that nothing
    the migration builds concurrently or validates was left unfinished (`tools.migrations.leftovers`); an index an
    interrupted earlier run left INVALID is dropped and built again before its statement runs.

    With `snapshots`, the schema is snapshotted first and what lossy statements destroy is kept (`tools.undo`)."""
    statements = prepared.statements
    planned = planned_statements(prepared)
    steps = plan_steps(statements)
    single = len(steps) <= 1 and all(step.transactional for step in steps)
    started_at = datetime.now(UTC)
    t0 = time.perf_counter()
    index_of = {id(s): i for i, s in enumerate(body(statements), start=1)}
    ran: list[Statement] = []  # committed statements (stepwise mode)
    done: list[Step] = []  # committed steps
    rebuilt: list[str] = []  # invalid indexes dropped to be built again
    label = f"migration {migration.version} ({migration.name})"
    total = len(planned)
    current: Statement | None = None
    failing: Step | None = None
    # Losses are read from the author's statements: a rewrite can wrap one in a guard (a DO block) that hides it.
    authored = [dataclasses.replace(s, text=o) for s, o in zip(statements, prepared.originals, strict=True)]
    author_of = {id(s): a for s, a in zip(statements, authored, strict=True)}
    capture = None if snapshots is None else await _capture(conn, snapshots, migration, authored, timeouts, label)
    settings = session_settings.changed_by(authored)
    session = await _before_first(conn, session_settings.read(conn, settings), migration, timeouts, label)

    async def record(outcome: Literal["applied", "failed"], error: str | None) -> None:
        await ledger.record(
            conn,
            migration,
            statements=[s.text for s in body(statements if outcome == "applied" else ran)],
            started_at=started_at,
            duration_ms=int((time.perf_counter() - t0) * 1000),
            outcome=outcome,
            error=error,
            client=client,
            prisma_schema=prisma_schema,
        )

    async def finish() -> None:
        """Record the migration as applied, in the open transaction, once nothing it did is left unfinished."""
        problems = await leftovers.unfinished(conn, body(authored))
        if problems:
            raise Unfinished(problems)
        await record("applied", None)

    try:
        first_read_only = bool(steps) and steps[0].transactional and bool(steps[0].characteristics.read_only)
        if capture is not None and steps and (not single or first_read_only):
            async with conn.transaction():  # committed first: a half-applied migration can be rolled back to it
                await undo.save(conn, capture, migration)
        recorded = False
        for n, step in enumerate(steps, start=1):
            failing = step
            last = n == len(steps)
            if step.transactional:
                writable = not step.characteristics.read_only  # a read-only transaction destroys nothing
                async with conn.transaction(**_begin(step.characteristics)):
                    if capture is not None and capture.snapshot_id is None:
                        await undo.save(conn, capture, migration)  # commits (or not) with the migration
                    for current in step.statements:
                        if capture is not None and writable:
                            await undo.keep_for(conn, capture, index_of[id(current)])
                        await _run(conn, current)
                    if last and writable:
                        current = None
                        await finish()
                        recorded = True
                ran.extend(step.statements)
            else:
                (current,) = step.statements
                build = leftovers.index_build(author_of[id(current)])
                if build is not None:
                    dropped = await leftovers.drop_invalid_index(conn, build)
                    if dropped is not None:
                        rebuilt.append(dropped)
                await _run(conn, current)
                if build is not None and (invalid := await leftovers.invalid_index(conn, build)) is not None:
                    raise Unfinished([f"index {invalid} is INVALID after the statement (its build did not finish)"])
                ran.append(current)
            done.append(step)
        if not recorded:
            failing, current = None, None
            async with conn.transaction():
                await finish()
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, Unfinished) as exc:
        reason, sqlstate = describe_failure(exc, timeouts)
        where = (
            f"statement {index_of[id(current)]} of {total} (line {current.line}: {excerpt(current.text)})"
            if current is not None
            else "while recording the history"
        )
        lost = isinstance(exc, _CONNECTION_LOST)
        build = leftovers.index_build(author_of[id(current)]) if current is not None else None
        state = failure_state(
            lost=lost,
            index_note=build is not None or isinstance(exc, Unfinished),
            index_name=build.name if build is not None else None,
            rebuilt=rebuilt,
            nothing_committed=single or not ran,
            failing=failing,
            ran=[index_of[id(s)] for s in ran],
            current=index_of[id(current)] if current is not None else None,
            total=total,
            committed=[segment_text(step, index_of) for step in done],
            rolled_back=segment_text(failing, index_of) if failing is not None and failing.transactional else None,
        )
        if single or not ran:
            if lost:
                raise ConnectionLost(f"{label} failed at {where}: {reason}. {state}", sqlstate, migration) from None
            raise DatabaseError(f"{label} failed at {where}: {reason}. {state}", sqlstate) from None
        recorded_note = ""
        if not lost:
            try:
                async with conn.transaction():
                    await record("failed", f"{where}: {reason}")
                recorded_note = " The migration is NOT recorded as applied: the attempt is recorded as failed in " + (
                    "pgshift.migrations and _prisma_migrations (Prisma's failed state)"
                    if migration.prisma_name
                    else "pgshift.migrations"
                )
                recorded_note += (
                    ". Fix the cause, then apply this migration again (apply_migration runs it again from the start:"
                    " make the statements that committed re-runnable, e.g. IF NOT EXISTS) or finish it by hand"
                    + (
                        f" and mark it resolved (`prisma migrate resolve --applied {migration.prisma_name}`)."
                        if migration.prisma_name
                        else "."
                    )
                )
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                recorded_note = (
                    " The migration is NOT recorded as applied; recording the failed attempt failed too: the "
                    "history tables do not mention it."
                )
        if lost:
            recorded_note = (
                " The connection was lost, so the attempt could not be recorded as failed; the migration is NOT "
                "recorded as applied and runs again from its first statement at the next deploy."
            )
        message = f"{label} failed at {where}: {reason}. {state}{recorded_note}"
        if lost:
            raise ConnectionLost(message, sqlstate, migration) from None
        raise DatabaseError(message, sqlstate) from None
    finally:
        await session_settings.restore(conn, session)
    places = [ledger.LEDGER, ledger.SUPABASE] + ([ledger.prisma_table(prisma_schema)] if migration.prisma_name else [])
    kept = capture.kept if capture is not None else []
    asked = sorted({step.characteristics.sql for step in steps if step.transactional and step.characteristics.sql})
    notes = ""
    if asked:
        notes += f" Its transactions ran as the script asks ({'; '.join(asked)})."
    if not single:
        notes += (
            f" It ran as {len(steps)} steps: the script's own COMMITs and statements that cannot run in a "
            "transaction say so."
        )
    if rebuilt:
        notes += (
            f" Index(es) {fence_text(', '.join(rebuilt))} that an interrupted earlier run left INVALID were dropped "
            "(DROP INDEX CONCURRENTLY) and built again."
        )
    return ApplyResult.of(
        migration,
        environment,
        status="applied",
        mode="single_transaction" if single else "stepwise",
        statements=planned,
        recorded_in=places,
        duration_ms=int((time.perf_counter() - t0) * 1000),
        snapshot_id=capture.snapshot_id if capture is not None else None,
        kept_data=kept,
        kept_bytes=sum(k.bytes for k in kept) if capture is not None else None,
        message=f"{label} applied to '{environment}' ({total} statements) and recorded in {', '.join(places)}."
        + notes
        + _undo_note(capture),
    )


def _undo_note(capture: undo.Capture | None) -> str:
    if capture is None or capture.snapshot_id is None:
        return ""
    kept = (
        f"; the data it destroyed is kept ({len(capture.kept)} copies, {sum(k.bytes for k in capture.kept)} bytes)"
        if capture.kept
        else ""
    )
    unkept = (
        f" Not kept (their table has no primary or NOT NULL unique key): {fence_text(', '.join(capture.unkept))}."
        if capture.unkept
        else ""
    )
    return f" Snapshot {capture.snapshot_id} holds the schema before it (rollback returns to it){kept}.{unkept}"


async def _before_first(
    conn: asyncpg.Connection,
    read: Awaitable[T],
    migration: Migration,
    timeouts: Timeouts,
    label: str,
    while_: str = "",
) -> T:
    """`read`, which runs before the migration's first statement: a failure there runs nothing (`while_` names what
    it was doing, for the message)."""
    try:
        return await read
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        reason, sqlstate = describe_failure(exc, timeouts)
        message = (
            f"{label} failed before its first statement{while_}: {reason}. None of its statements ran: nothing of "
            "this migration remains and the history tables are unchanged."
        )
        if isinstance(exc, _CONNECTION_LOST):
            raise ConnectionLost(message, sqlstate, migration) from None
        raise DatabaseError(message, sqlstate) from None


async def _capture(
    conn: asyncpg.Connection,
    options: SnapshotOptions,
    migration: Migration,
    statements: Sequence[Statement],
    timeouts: Timeouts,
    label: str,
) -> undo.Capture:
    """The snapshot to roll back to, read before anything of the migration runs; a failure here runs nothing."""
    taking = undo.prepare(conn, options, migration, statements, timeouts.lock_ms)
    return await _before_first(conn, taking, migration, timeouts, label, ", while taking the snapshot to roll back to")


EXISTING_TABLES = """
SELECT n.nspname || '.' || c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
"""


async def existing_tables(conn: asyncpg.Connection) -> set[str]:
    """`schema.table` of every table on the target (the linter flags locks only on tables that exist)."""
    return {r[0] for r in await conn.fetch(EXISTING_TABLES)}


def refuse_forbidden(migration: Migration, statements: Sequence[Statement]) -> None:
    """Refuse a migration holding what no migration may do (`tools.safety.apply_refusal`: two-phase commit, COPY
    to or from a program or server file, SET SESSION AUTHORIZATION), before any of its statements runs."""
    for index, s in enumerate(body(statements), start=1):
        reason = apply_refusal(s)
        if reason is not None:
            raise NotAllowed(
                f"migration {migration.version} ({migration.name}), statement {index} (line {s.line}): {reason} "
                "Nothing was run and the history is unchanged."
            )


async def preflight(
    conn: asyncpg.Connection, environment: str, migration: Migration, statements: Sequence[Statement]
) -> None:
    """Refuse, before any statement runs, what a migration may never do (`refuse_forbidden`) and what the target
    cannot do: extensions it does not have, roles the script names that do not exist (those the script creates
    count)."""
    refuse_forbidden(migration, statements)
    extensions = {r["name"] for r in await conn.fetch(EXTENSIONS_SQL)}
    roles = {r["rolname"] for r in await conn.fetch(ROLES_SQL)}
    missing_ext, missing_roles = find_missing(statements, extensions, roles)
    problems = []
    if missing_ext:
        names = ", ".join(sorted({m.name for m in missing_ext}))
        problems.append(
            f"needs extension(s) {names}, which '{environment}' does not have (not in pg_available_extensions): "
            "install it on the server (or enable it in the Supabase dashboard), or remove it from the migration"
        )
    if missing_roles:
        names = ", ".join(sorted({m.name for m in missing_roles}))
        problems.append(f"names role(s) {names}, which do not exist on '{environment}': create them first")
    if problems:
        raise NotAllowed(
            f"migration {migration.version} ({migration.name}) {'; it also '.join(problems)}. "
            "Nothing was run and the history is unchanged."
        )


async def refuse_lock_conflicts(
    conn: asyncpg.Connection, environment: str, what: str, statements: Sequence[Statement], lock_wait_ms: int
) -> None:
    """Refuse, before anything runs, a migration whose tables are locked by a session that will not let go within
    the migration's lock timeout (idle in an old transaction, or in one that has lasted a minute): waiting would only
    end in a lock timeout, and meanwhile every query queued behind the migration's own lock request would wait too."""
    reason = await lock_conflicts(conn, environment, named_relations(statements), lock_wait_ms / 1000)
    if reason is not None:
        raise NotAllowed(
            f"{what} would wait for a lock that will not be released within its lock timeout ({lock_wait_ms} ms): "
            f"{reason}. Nothing was run and the history is unchanged. Ask that session's owner to commit or roll "
            "back (or end it with pg_terminate_backend(pid) yourself), then try again; check_locks shows who blocks "
            "whom."
        )


def already_applied(history: ledger.History, migration: Migration, environment: str) -> bool:
    """True when the history records `migration`; refuse when it was recorded with another checksum."""
    if not history.is_applied(migration):
        return False
    recorded = history.recorded_checksum(migration)
    if recorded is not None and not checksum_matches(migration.sql, recorded):
        raise NotAllowed(
            f"migration {migration.version} ({migration.name}) was applied to '{environment}' with checksum "
            f"{fence_text(recorded[:12])}…, but the script now has {migration.checksum[:12]}…: it was edited after "
            "it was applied. Nothing was run. Restore the applied script and put the change in a new migration."
        )
    return True


async def verified_loss(db: Databases, environment: str, lost: ConnectionLost, prisma_schema: str) -> DatabaseError:
    """The error for a lost connection, after reading the history on a new connection.

    A session can die after PostgreSQL committed but before we heard back: the history says which happened.
    """
    m = lost.migration
    try:
        async with db.read_only(environment) as conn:
            history = await ledger.read_history(conn, prisma_schema)
    except (PgshiftError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        return DatabaseError(
            f"{lost} Could not reconnect to check the history: run list_migrations before retrying.", lost.sqlstate
        )
    if history.is_applied(m):
        return DatabaseError(
            f"the connection to '{environment}' was lost while applying migration {m.version} ({m.name}), but a new "
            "connection shows it committed: it is applied and recorded. Nothing more to do for it.",
            lost.sqlstate,
        )
    return DatabaseError(f"{lost} Checked on a new connection: {m.version} is not recorded as applied.", lost.sqlstate)
