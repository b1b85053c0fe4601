"""Dry-run a migration: run it where nothing it does can last, and report the schema change it would make.

Two ways, chosen by what the script holds:

- in a transaction on the target itself, ALWAYS rolled back: the schema is read (our introspection) before and
  after inside that same transaction and diffed. The statements take the locks they take for real, bounded by a
  short `lock_timeout`, and do their work (an index build really builds) before everything is discarded.
- on a shadow database, when a statement cannot run inside a transaction (CREATE INDEX CONCURRENTLY, VACUUM, ...)
  or may not run on the real database (see below): a database on the scratch server `tools.scratch` picks (the
  environment's shadow_url, else a local install of the target's major, else the embedded 18; what it cannot
  reproduce is noted), loaded over the protocol (`tools.script_loader`) with the target's
  `pg_dump --schema-only --no-owner`, where each statement runs the way it needs, as a fresh role created without
  superuser, file or program privileges that owns the copy (the script's CREATE EXTENSION alone runs as the scratch
  server's admin). The target is only read (pg_dump).

Before anything runs on the target, every statement is parsed again and checked by
`tools.safety.dry_run_refusal` (transaction control, COPY to a program or file, functions that act outside the
transaction, dynamic SQL that cannot be checked; also inside DO blocks and function bodies). A script holding
such a statement is dry-run on the shadow instead (`shadow_instead`); one holding what no migration may contain
(`tools.safety.apply_refusal`) is a tool error and nothing runs; `dry_run_in_transaction` itself refuses any of
them. Every statement goes through the one statement runner (`tools.statement_runner`): one command each.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from pgshift.tools.databases import Databases
from pgshift.tools.diff import Change, diff_schemas
from pgshift.tools.errors import DatabaseError, NotAllowed
from pgshift.tools.introspect import introspect
from pgshift.tools.judge import dump_schema
from pgshift.tools.localpg import LocalPostgres, embedded_bin_dir
from pgshift.tools.migrations.parse import StatementKind
from pgshift.tools.migrations.parse import statement as parse_one
from pgshift.tools.model import Schema
from pgshift.tools.redact import scrub
from pgshift.tools.safety import FunctionPolicy, apply_refusal, dry_run_refusal, load_function_policy
from pgshift.tools.scratch import create_extensions, sandboxed_database
from pgshift.tools.script_loader import load_pieces, pieces, roles_acted_for
from pgshift.tools.statement_runner import run_statement
from pgshift.tools.untrusted import Untrusted, fence, fence_text

DRY_RUN_LOCK_TIMEOUT_MS = 3_000
DRY_RUN_STATEMENT_TIMEOUT_MS = 120_000


@dataclass(frozen=True)
class Runnable:
    """What the dry run needs of a statement."""

    index: int
    line: int
    sql: str
    transactional: bool
    tx_control: bool = False


class SchemaChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str = Field(description="Object kind: table, column, index, constraint, enum, function, policy, ...")
    key: str = Field(description="Qualified name")
    change: Literal["added", "removed", "changed"]
    fields: tuple[str, ...] = Field((), description="For 'changed': what differs")


class DryRunFailure(BaseModel):
    model_config = ConfigDict(frozen=True)

    statement: int = Field(description="1-based position of the failing statement (0: reading the schema failed)")
    line: int
    sqlstate: str | None
    message: str


def _no_changes() -> Untrusted[tuple[SchemaChange, ...]]:
    return fence(())


class DryRunResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    mode: Literal["transaction", "shadow", "not_run"]
    succeeded: bool
    statements_run: int = Field(description="Statements that completed before the end or the failure")
    changes: Untrusted[tuple[SchemaChange, ...]] = Field(
        default_factory=_no_changes,
        description="The schema change the script makes (empty on failure), fenced: names are read from the database",
    )
    failure: DryRunFailure | None = None
    duration_ms: int = 0
    notes: tuple[str, ...] = Field((), description="Caveats: why not run, what the shadow could not reproduce")
    schema_fingerprint: str | None = Field(
        None, description="Fingerprint of the schema the script leaves (transaction dry runs that succeeded)"
    )


def _changes(before: Schema, after: Schema) -> tuple[SchemaChange, ...]:
    diff = diff_schemas(after, before)  # what must change in `before` to become `after`
    return tuple(_change(c) for c in diff.changes)


def _change(c: Change) -> SchemaChange:
    return SchemaChange(kind=c.kind, key=c.key, change=c.change, fields=tuple(f.field for f in c.fields))


async def _read_schema(conn: asyncpg.Connection) -> Schema:
    """Introspect inside a savepoint that is rolled back, so introspection's own settings do not leak out."""
    savepoint = conn.transaction()
    await savepoint.start()
    try:
        return await introspect(conn, include_managed=True, with_dependencies=False)
    finally:
        await savepoint.rollback()


def _failure(
    statement: Runnable, exc: asyncpg.PostgresError | asyncpg.InterfaceError, secrets_: Sequence[str]
) -> DryRunFailure:
    return DryRunFailure(
        statement=statement.index,
        line=statement.line,
        sqlstate=getattr(exc, "sqlstate", None),
        message=scrub(f"{type(exc).__name__}: {fence_text(exc)}", list(secrets_)),
    )


def _unreadable(exc: DatabaseError, when: str, started: float, run: int = 0) -> DryRunResult:
    """The schema could not be read inside the dry run's transaction (typically a lock held by another session)."""
    return DryRunResult(
        mode="transaction",
        succeeded=False,
        statements_run=run,
        failure=DryRunFailure(statement=0, line=0, sqlstate=exc.sqlstate, message=f"reading the schema {when}: {exc}"),
        duration_ms=int((time.monotonic() - started) * 1000),
        notes=("rolled back: the target is unchanged",),
    )


async def _execute_all(
    conn: asyncpg.Connection,
    statements: Sequence[Runnable],
    secrets_: Sequence[str],
    *,
    superuser: asyncpg.Connection | None = None,
) -> tuple[int, DryRunFailure | None]:
    """Run the statements in order (the script's own BEGIN/COMMIT skipped): how many ran, and the first failure.

    Each goes through the one statement runner (one command each, refused by PostgreSQL otherwise). On the
    shadow, CREATE EXTENSION runs on the `superuser` connection (untrusted extensions need one); everything else
    runs as the unprivileged role of `conn`. Inside a transaction (the target), a statement that ends it is an
    error: nothing after it runs.
    """
    in_transaction = conn.is_in_transaction()
    run = 0
    for s in statements:
        if s.tx_control:
            continue
        on = superuser if superuser is not None and _creates_extension(s) else conn
        try:
            await run_statement(on, s.sql)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            return run, _failure(s, exc, secrets_)
        if in_transaction and not conn.is_in_transaction():
            raise DatabaseError(
                f"statement {s.index} (line {s.line}) ended the dry run's transaction: pgshift stopped there. Check "
                "the target: what ran before it may have been committed."
            )
        run += 1
    return run, None


def _creates_extension(s: Runnable) -> bool:
    return parse_one(s.sql).kind is StatementKind.CREATE_EXTENSION


def _first_refusal(statements: Sequence[Runnable], policy: FunctionPolicy) -> tuple[Runnable, str] | None:
    """The first statement that may not run in a dry run on the real target, and why (`tools.safety`).

    Each statement's text is parsed again here, as exactly one statement: what is checked is what is sent.
    The script's own BEGIN/COMMIT are not sent (the whole script runs in our transaction) and not checked.
    """
    for s in statements:
        if s.tx_control:
            continue
        reason = dry_run_refusal(parse_one(s.sql), policy)
        if reason is not None:
            return s, reason
    return None


async def shadow_instead(db: Databases, environment: str, statements: Sequence[Runnable]) -> str | None:
    """Before a dry run on the target: why the script must be dry-run on the shadow instead, or None.

    A statement `tools.safety.dry_run_refusal` keeps off the real database (one that could act outside the dry
    run's transaction, or that cannot be checked before it runs, such as a DO block running dynamic SQL) sends
    the whole dry run to the shadow, where it runs without privileges on a copy. A statement no migration may
    hold (`tools.safety.apply_refusal`) is refused outright (NotAllowed): it could never be applied either.
    """
    async with db.read_only(environment) as conn:
        policy = await load_function_policy(conn)
    refusal = _first_refusal(statements, policy)
    if refusal is None:
        return None
    s, reason = refusal
    forbidden = apply_refusal(parse_one(s.sql))
    if forbidden is not None:
        raise NotAllowed(f"statement {s.index} (line {s.line}): {forbidden} Nothing was run; the target is untouched.")
    return f"statement {s.index} (line {s.line}) does not run on '{environment}': {reason}"


async def dry_run_in_transaction(
    conn: asyncpg.Connection,
    statements: Sequence[Runnable],
    *,
    lock_timeout_ms: int = DRY_RUN_LOCK_TIMEOUT_MS,
    statement_timeout_ms: int = DRY_RUN_STATEMENT_TIMEOUT_MS,
    secrets_: Sequence[str] = (),
) -> DryRunResult:
    """Run the statements on `conn` in one transaction that is always rolled back; the schema change they make.

    The script's own BEGIN/COMMIT are skipped (the whole script runs in our transaction). Every statement must
    be transactional: the caller routes other scripts to the shadow.
    """
    if any(not s.transactional and not s.tx_control for s in statements):
        raise ValueError("dry_run_in_transaction needs transactional statements only")
    refusal = _first_refusal(statements, await load_function_policy(conn))
    if refusal is not None:
        s, reason = refusal
        raise NotAllowed(f"statement {s.index} (line {s.line}): {reason} Nothing was run; the target is untouched.")
    started = time.monotonic()
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
        await conn.execute(f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}")
        try:
            before = await _read_schema(conn)
        except DatabaseError as exc:
            return _unreadable(exc, "before", started)
        run, failure = await _execute_all(conn, statements, secrets_)
        if failure is not None:
            return DryRunResult(
                mode="transaction",
                succeeded=False,
                statements_run=run,
                failure=failure,
                duration_ms=int((time.monotonic() - started) * 1000),
                notes=("rolled back: the target is unchanged",),
            )
        try:
            after = await _read_schema(conn)
        except DatabaseError as exc:
            return _unreadable(exc, "after", started, run)
        return DryRunResult(
            mode="transaction",
            succeeded=True,
            statements_run=run,
            changes=fence(_changes(before, after)),
            duration_ms=int((time.monotonic() - started) * 1000),
            notes=("ran inside a transaction that was rolled back: the target is unchanged",),
            schema_fingerprint=after.fingerprint(),
        )
    finally:
        await tx.rollback()


# ---------------------------------------------------------------------------------------------------------------
# Shadow database


async def dry_run_on_shadow(
    target: asyncpg.Connection,
    target_url: str,
    statements: Sequence[Runnable],
    *,
    shadow: LocalPostgres | None = None,
    shadow_url: str | None = None,
    secrets_: Sequence[str] = (),
) -> DryRunResult:
    """Run the statements, each the way it needs, on a throw-away copy of the target's schema.

    The copy lives on the scratch server `tools.scratch` picks (`shadow`, a running local server; else the
    environment's `shadow_url`; else a local install of the target's major; else the embedded 18), loaded with the
    target's `pg_dump --schema-only --no-owner` over the protocol (`tools.script_loader`) by a role created without
    superuser, file or program privileges that owns the copy: it can change the schema, not the machine. The
    script's CREATE EXTENSION statements alone run as the scratch server's admin (an extension's script is the
    server's own file, not the author's text).
    """
    started = time.monotonic()
    notes: list[str] = []
    dump = await dump_schema(target_url, embedded_bin_dir(), no_owner=True, secrets=secrets_)
    todo = pieces(dump, what="the target's schema dump")
    acts_for = roles_acted_for(todo)
    async with sandboxed_database(target, "pgshift_shadow", shadow, shadow_url=shadow_url, acts_for=acts_for) as box:
        prepared = await create_extensions(box, {p.extension for p in todo if p.extension})
        notes.extend(box.fidelity_lost + prepared.fidelity_lost)
        loader = await box.connect()  # its own session: what the dump sets (search_path) ends with it
        try:
            loaded = await load_pieces(loader, todo, secrets_=[*secrets_, *box.secrets], prepared=prepared.done)
        finally:
            await loader.close()
        if loaded.errors_total:
            shown = "; ".join(str(e) for e in loaded.errors[:5])
            notes.append(
                f"the shadow could not reproduce everything of the target ({loaded.errors_total} error(s): {shown})"
            )
        conn = await box.connect()
        superuser = await asyncpg.connect(box.admin_url)
        try:
            before = await introspect(conn, include_managed=True, with_dependencies=False)
            run, failure = await _execute_all(conn, statements, secrets_, superuser=superuser)
            if failure is not None:
                return DryRunResult(
                    mode="shadow",
                    succeeded=False,
                    statements_run=run,
                    failure=failure,
                    duration_ms=int((time.monotonic() - started) * 1000),
                    notes=(*notes, SHADOW_NOTE),
                )
            after = await introspect(conn, include_managed=True, with_dependencies=False)
        finally:
            await conn.close()
            await superuser.close()
        return DryRunResult(
            mode="shadow",
            succeeded=True,
            statements_run=run,
            changes=fence(_changes(before, after)),
            duration_ms=int((time.monotonic() - started) * 1000),
            notes=(*notes, SHADOW_NOTE),
        )


SHADOW_NOTE = (
    "ran on a shadow copy of the target's schema, as a role without superuser, file or program privileges: "
    "the target was only read"
)
