"""Dry-run a migration: run it where nothing it does can last, and report the schema change it would make.

Two ways, chosen by what the script holds:

- in a transaction on the target itself, ALWAYS rolled back: the schema is read (our introspection) before and
  after inside that same transaction and diffed. The statements take the locks they take for real, bounded by a
  short `lock_timeout`, and do their work (an index build really builds) before everything is discarded.
- on a shadow database, when a statement cannot run inside a transaction (CREATE INDEX CONCURRENTLY, VACUUM, ...):
  an embedded PostgreSQL 18 database loaded with the target's `pg_dump --schema-only`, where each statement runs
  the way it needs. The target is only read (pg_dump).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import anyio
import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from tools.diff import Change, diff_schemas
from tools.errors import DatabaseError
from tools.introspect import introspect
from tools.judge import dump_schema
from tools.localpg import LocalPostgres, embedded_server
from tools.model import Schema
from tools.redact import scrub, url_password
from tools.sql import quote_ident

DRY_RUN_LOCK_TIMEOUT_MS = 3_000
DRY_RUN_STATEMENT_TIMEOUT_MS = 120_000
SHADOW_LOAD_TIMEOUT_S = 180.0


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


class DryRunResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    mode: Literal["transaction", "shadow", "not_run"]
    succeeded: bool
    statements_run: int = Field(description="Statements that completed before the end or the failure")
    changes: tuple[SchemaChange, ...] = Field((), description="The schema change the script makes (empty on failure)")
    failure: DryRunFailure | None = None
    duration_ms: int = 0
    notes: tuple[str, ...] = Field((), description="Caveats: why not run, what the shadow could not reproduce")


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


def _failure(statement: Runnable, exc: asyncpg.PostgresError, secrets_: Sequence[str]) -> DryRunFailure:
    return DryRunFailure(
        statement=statement.index,
        line=statement.line,
        sqlstate=getattr(exc, "sqlstate", None),
        message=scrub(f"{type(exc).__name__}: {exc}", list(secrets_)),
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
    conn: asyncpg.Connection, statements: Sequence[Runnable], secrets_: Sequence[str]
) -> tuple[int, DryRunFailure | None]:
    """Run the statements in order (the script's own BEGIN/COMMIT skipped): how many ran, and the first failure."""
    run = 0
    for s in statements:
        if s.tx_control:
            continue
        try:
            await conn.execute(s.sql)
        except asyncpg.PostgresError as exc:
            return run, _failure(s, exc, secrets_)
        run += 1
    return run, None


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
            changes=_changes(before, after),
            duration_ms=int((time.monotonic() - started) * 1000),
            notes=("ran inside a transaction that was rolled back: the target is unchanged",),
        )
    finally:
        await tx.rollback()


# ---------------------------------------------------------------------------------------------------------------
# Shadow database


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _pg_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    password = url_password(url)
    if password:
        env["PGPASSWORD"] = password
    return env


async def _load_with_psql(bin_dir: Path, url: str, script: str) -> list[str]:
    """Feed a schema dump to psql (errors do not stop it); the error lines it printed."""
    proc = await asyncio.create_subprocess_exec(
        str(bin_dir / "psql"),
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=0",
        "--dbname",
        _without_password(url),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=_pg_env(url),
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(script.encode()), timeout=SHADOW_LOAD_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise DatabaseError(f"loading the shadow database took over {SHADOW_LOAD_TIMEOUT_S:.0f} s") from None
    return [ln for ln in err.decode(errors="replace").splitlines() if "ERROR:" in ln]


async def _roles(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch("SELECT rolname FROM pg_catalog.pg_roles WHERE rolname !~ '^pg_' ORDER BY 1")
    return [r["rolname"] for r in rows]


async def dry_run_on_shadow(
    target: asyncpg.Connection,
    target_url: str,
    statements: Sequence[Runnable],
    *,
    shadow: LocalPostgres | None = None,
    secrets_: Sequence[str] = (),
) -> DryRunResult:
    """Run the statements, each the way it needs, on a throw-away copy of the target's schema.

    `shadow` is a running local server to use; without one an embedded PostgreSQL 18 is started and stopped.
    """
    started = time.monotonic()
    owned = shadow is None
    server = shadow or embedded_server()
    if owned:
        await anyio.to_thread.run_sync(server.start)
    name = f"pgshift_shadow_{secrets.token_hex(6)}"
    notes: list[str] = []
    try:
        admin = await asyncpg.connect(server.url())
        try:
            await admin.execute(f"CREATE DATABASE {quote_ident(name)}")
            existing = set(await _roles(admin))
            for role in await _roles(target):
                if role not in existing:
                    await admin.execute(f"CREATE ROLE {quote_ident(role)} NOLOGIN")
        finally:
            await admin.close()
        dump = await dump_schema(target_url, server.bin_dir)
        errors = await _load_with_psql(server.bin_dir, server.url(name), dump)
        if errors:
            shown = "; ".join(scrub(e, list(secrets_)) for e in errors[:5])
            notes.append(f"the shadow could not reproduce everything of the target ({len(errors)} error(s): {shown})")
        conn = await asyncpg.connect(server.url(name))
        try:
            before = await introspect(conn, include_managed=True, with_dependencies=False)
            run, failure = await _execute_all(conn, statements, secrets_)
            if failure is not None:
                return DryRunResult(
                    mode="shadow",
                    succeeded=False,
                    statements_run=run,
                    failure=failure,
                    duration_ms=int((time.monotonic() - started) * 1000),
                    notes=(*notes, "ran on a shadow copy of the target's schema: the target was only read"),
                )
            after = await introspect(conn, include_managed=True, with_dependencies=False)
        finally:
            await conn.close()
        return DryRunResult(
            mode="shadow",
            succeeded=True,
            statements_run=run,
            changes=_changes(before, after),
            duration_ms=int((time.monotonic() - started) * 1000),
            notes=(*notes, "ran on a shadow copy of the target's schema: the target was only read"),
        )
    finally:
        try:
            admin = await asyncpg.connect(server.url())
            try:
                await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
            finally:
                await admin.close()
        finally:
            if owned:
                await anyio.to_thread.run_sync(server.stop)
