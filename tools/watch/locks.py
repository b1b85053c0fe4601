"""check_locks: who blocks whom, idle-in-transaction and long-running sessions, connection saturation.

Three catalog reads (sessions, relation locks, connection counts) in one READ ONLY snapshot, shaped by pure
functions. `migration_blockers` is the pure answer the apply path needs: which sessions would block a migration
touching given tables, and for how long they have held (or waited for) their locks. Nothing here terminates a
backend. Statement text and application names of other sessions are untrusted and come back fenced; statement
text is redacted first (`redact_statement`: every string constant masked, and only the statement's kind when the
text does not parse), so a password, a pgcrypto key or a connection string in another session's statement is never
shown.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from pgshift.tools.catalog import split_table_name
from pgshift.tools.databases import Databases
from pgshift.tools.redact import redact_statement
from pgshift.tools.sql import qualified
from pgshift.tools.untrusted import Untrusted, fence, fence_text

MAX_SESSIONS = 200
WARN_RATIO = 0.8
CRITICAL_RATIO = 0.95

# Ages are measured from now(), our transaction's start, so the three reads agree with one another.
# Client sessions of this database, except idle ones (they hold no locks) and our own.
SESSIONS_SQL = f"""
SELECT a.pid, a.usename::text AS usename, a.application_name, a.state, a.wait_event_type, a.wait_event,
       greatest(extract(epoch FROM now() - a.xact_start), 0)::float8 AS xact_seconds,
       greatest(extract(epoch FROM now() - a.query_start), 0)::float8 AS query_seconds,
       greatest(extract(epoch FROM now() - a.state_change), 0)::float8 AS state_seconds,
       pg_catalog.pg_blocking_pids(a.pid) AS blocked_by,
       a.query
FROM pg_catalog.pg_stat_activity a
WHERE a.backend_type = 'client backend'
  AND a.datname = current_database()
  AND a.pid <> pg_catalog.pg_backend_pid()
  AND (a.state IS DISTINCT FROM 'idle' OR cardinality(pg_catalog.pg_blocking_pids(a.pid)) > 0)
ORDER BY a.xact_start NULLS LAST, a.pid
LIMIT {MAX_SESSIONS}
"""

# Locks on tables (and table-like relations) of this database, held or awaited by other sessions.
LOCKS_SQL = """
SELECT l.pid, n.nspname::text AS table_schema, c.relname::text AS table_name, l.mode, l.granted,
       greatest(extract(epoch FROM now() - l.waitstart), 0)::float8 AS waiting_seconds
FROM pg_catalog.pg_locks l
JOIN pg_catalog.pg_class c ON c.oid = l.relation
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE l.locktype = 'relation'
  AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())
  AND l.pid <> pg_catalog.pg_backend_pid()
  AND c.relkind IN ('r', 'p', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY l.pid, n.nspname, c.relname, l.mode
"""

# Connection saturation across the whole server (every database counts against max_connections).
CONNECTIONS_SQL = """
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved,
       coalesce((SELECT jsonb_object_agg(s.state, s.n) FROM (
           SELECT coalesce(a.state, 'unknown') AS state, count(*) AS n
           FROM pg_catalog.pg_stat_activity a WHERE a.backend_type = 'client backend' GROUP BY 1) s), '{}')::text
         AS by_state
"""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class RelationLock(Frozen):
    table_schema: str
    table_name: str
    table: str = Field(description="Schema-qualified, quoted as needed")
    mode: str = Field(description="PostgreSQL lock mode, e.g. AccessExclusiveLock")
    granted: bool = Field(description="Held (true) or waited for (false)")
    waiting_seconds: float | None = Field(default=None, description="How long it has waited, when not granted")


class SessionInfo(Frozen):
    pid: int
    user: str | None
    state: str | None = Field(description="active, idle in transaction, ... (pg_stat_activity.state)")
    wait_event_type: str | None
    wait_event: str | None
    transaction_seconds: float | None = Field(description="Age of its open transaction")
    query_seconds: float | None = Field(description="Age of its current (or last) statement")
    state_seconds: float | None = Field(description="Time since its state last changed")
    blocked_by: list[int] = Field(description="pids it waits for (pg_blocking_pids)")
    locks: list[RelationLock]


class StatementText(Frozen):
    pid: int
    application_name: str | None
    query: str | None = Field(
        description="Current or last statement, redacted: string constants masked, comments dropped; only its kind "
        "when the text does not parse (cut at track_activity_query_size); empty when we may not see it"
    )


class BlockNode(Frozen):
    pid: int
    blocks: list[BlockNode] = Field(description="Sessions waiting for this one")


class ConnectionUsage(Frozen):
    max_connections: int
    reserved_connections: int = Field(description="superuser_reserved_connections")
    used: int = Field(description="Client connections on the whole server")
    by_state: dict[str, int]
    used_ratio: float = Field(description="used / (max_connections - reserved_connections)")
    status: str = Field(description="ok, warning (>= 80%) or critical (>= 95%)")


class MigrationBlocker(Frozen):
    pid: int
    table: str
    mode: str
    granted: bool
    state: str | None
    held_seconds: float | None = Field(
        description="For a held lock: age of the transaction holding it (locks live until it ends)"
    )
    waiting_seconds: float | None = Field(description="For an awaited lock: how long it has waited")


class LockReport(Frozen):
    environment: str
    min_duration_seconds: float
    sessions: list[SessionInfo] = Field(description=f"Non-idle client sessions here (at most {MAX_SESSIONS})")
    blocking_tree: list[BlockNode] = Field(description="Roots hold what others wait for; children wait for parents")
    blocked: list[int] = Field(description="pids waiting for another session")
    idle_in_transaction: list[int] = Field(description="pids idle inside an open transaction (they keep their locks)")
    long_running: list[int] = Field(description="pids whose statement has run at least min_duration_seconds")
    long_transactions: list[int] = Field(description="pids whose transaction is at least min_duration_seconds old")
    tables: list[str] = Field(description="The tables asked about (a pending migration's tables)")
    migration_blockers: list[MigrationBlocker] = Field(
        description="Sessions holding or awaiting a lock on those tables: a migration would wait for them"
    )
    connections: ConnectionUsage
    statements: Untrusted[list[StatementText]] = Field(description="Each session's application name and statement")
    warnings: list[str]


def parse_tables(tables: Iterable[str]) -> list[tuple[str, str]]:
    """'table' or 'schema.table' (quoted parts allowed) → sorted distinct (schema, table)."""
    return sorted({split_table_name(t) for t in tables})


def relation_lock(row: Mapping[str, Any]) -> RelationLock:
    granted = bool(row["granted"])
    return RelationLock(
        table_schema=row["table_schema"],
        table_name=row["table_name"],
        table=qualified(row["table_schema"], row["table_name"]),
        mode=row["mode"],
        granted=granted,
        waiting_seconds=None if granted else _rounded(row["waiting_seconds"]),
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def session_info(row: Mapping[str, Any], locks: Sequence[RelationLock]) -> SessionInfo:
    return SessionInfo(
        pid=row["pid"],
        user=row["usename"],
        state=row["state"],
        wait_event_type=row["wait_event_type"],
        wait_event=row["wait_event"],
        transaction_seconds=_rounded(row["xact_seconds"]),
        query_seconds=_rounded(row["query_seconds"]),
        state_seconds=_rounded(row["state_seconds"]),
        blocked_by=sorted(row["blocked_by"] or []),
        locks=list(locks),
    )


def statement_text(row: Mapping[str, Any]) -> StatementText:
    """Another session's statement, redacted before it goes anywhere (answers, refusals, logs)."""
    return StatementText(pid=row["pid"], application_name=row["application_name"], query=redact_statement(row["query"]))


def blocking_tree(sessions: Sequence[SessionInfo]) -> list[BlockNode]:
    """Forest of who blocks whom: roots wait for nobody (or for a session outside the list)."""
    waiters: dict[int, list[int]] = {}
    for s in sessions:
        for blocker in s.blocked_by:
            waiters.setdefault(blocker, []).append(s.pid)
    waiting = {s.pid for s in sessions if s.blocked_by}
    roots = sorted(p for p in waiters if p not in waiting)
    if not roots and waiters:  # a cycle (a deadlock about to be broken): start anywhere
        roots = [min(waiters)]

    def node(pid: int, seen: frozenset[int]) -> BlockNode:
        children = [c for c in sorted(waiters.get(pid, [])) if c not in seen]
        return BlockNode(pid=pid, blocks=[node(c, seen | {c}) for c in children])

    return [node(r, frozenset({r})) for r in roots]


def connection_usage(row: Mapping[str, Any]) -> ConnectionUsage:
    by_state = {str(k): int(v) for k, v in json.loads(row["by_state"]).items()}
    used = sum(by_state.values())
    usable = max(int(row["max_connections"]) - int(row["reserved"]), 1)
    ratio = round(used / usable, 4)
    status = "critical" if ratio >= CRITICAL_RATIO else "warning" if ratio >= WARN_RATIO else "ok"
    return ConnectionUsage(
        max_connections=row["max_connections"],
        reserved_connections=row["reserved"],
        used=used,
        by_state=dict(sorted(by_state.items())),
        used_ratio=ratio,
        status=status,
    )


def migration_blockers(report: LockReport, tables: Iterable[str]) -> list[MigrationBlocker]:
    """Sessions that would block a migration touching `tables`: any lock on them, held or queued, conflicts with
    the ACCESS EXCLUSIVE lock most DDL takes. Longest-held first."""
    wanted = set(parse_tables(tables))
    found: list[MigrationBlocker] = []
    for s in report.sessions:
        for lock in s.locks:
            if (lock.table_schema, lock.table_name) not in wanted:
                continue
            found.append(
                MigrationBlocker(
                    pid=s.pid,
                    table=lock.table,
                    mode=lock.mode,
                    granted=lock.granted,
                    state=s.state,
                    held_seconds=s.transaction_seconds if lock.granted else None,
                    waiting_seconds=lock.waiting_seconds,
                )
            )
    return sorted(found, key=lambda b: (-(b.held_seconds or b.waiting_seconds or 0.0), b.pid, b.table, b.mode))


def _warnings(report: LockReport) -> list[str]:
    out: list[str] = []
    c = report.connections
    if c.status != "ok":
        out.append(f"connections {c.status}: {c.used} of {c.max_connections - c.reserved_connections} usable in use")
    if report.blocked:
        out.append(f"{len(report.blocked)} session(s) waiting for a lock held by another session")
    if report.idle_in_transaction:
        out.append(f"{len(report.idle_in_transaction)} session(s) idle in transaction, keeping their locks")
    if report.migration_blockers:
        pids = sorted({b.pid for b in report.migration_blockers})
        out.append(f"a migration touching {', '.join(report.tables)} would wait for pid(s) {pids}")
    return out


def build_report(
    environment: str,
    session_rows: Sequence[Mapping[str, Any]],
    lock_rows: Sequence[Mapping[str, Any]],
    connections_row: Mapping[str, Any],
    tables: Sequence[str] = (),
    min_duration_seconds: float = 60.0,
) -> LockReport:
    """The report from the three catalog reads (pure)."""
    locks_by_pid: dict[int, list[RelationLock]] = {}
    for row in lock_rows:
        locks_by_pid.setdefault(row["pid"], []).append(relation_lock(row))
    sessions = [session_info(r, locks_by_pid.get(r["pid"], [])) for r in session_rows]
    asked = [qualified(s, t) for s, t in parse_tables(tables)]

    def at_least(seconds: float | None) -> bool:
        return seconds is not None and seconds >= min_duration_seconds

    report = LockReport(
        environment=environment,
        min_duration_seconds=min_duration_seconds,
        sessions=sessions,
        blocking_tree=blocking_tree(sessions),
        blocked=sorted(s.pid for s in sessions if s.blocked_by),
        idle_in_transaction=sorted(s.pid for s in sessions if (s.state or "").startswith("idle in transaction")),
        long_running=sorted(s.pid for s in sessions if s.state == "active" and at_least(s.query_seconds)),
        long_transactions=sorted(s.pid for s in sessions if at_least(s.transaction_seconds)),
        tables=asked,
        migration_blockers=[],
        connections=connection_usage(connections_row),
        statements=fence([statement_text(r) for r in session_rows]),
        warnings=[],
    )
    report = report.model_copy(update={"migration_blockers": migration_blockers(report, tables)})
    return report.model_copy(update={"warnings": _warnings(report)})


async def check_locks(
    db: Databases, environment: str, tables: Sequence[str] | None = None, min_duration_seconds: float = 60.0
) -> LockReport:
    """Read sessions, locks and connection counts in one READ ONLY snapshot and shape them."""
    wanted = list(tables or [])
    parse_tables(wanted)  # a bad name is the caller's error, before any I/O
    async with db.read_only(environment, snapshot=True) as conn:
        sessions = await conn.fetch(SESSIONS_SQL)
        locks = await conn.fetch(LOCKS_SQL)
        connections = await conn.fetchrow(CONNECTIONS_SQL)
    assert connections is not None
    return build_report(environment, sessions, locks, connections, wanted, min_duration_seconds)


# ---------------------------------------------------------------------------------------------------------------
# Before an apply: would the migration wait on a lock that a long or idle transaction holds?

RESOLVE_TABLES_SQL = """
SELECT DISTINCT n.nspname AS table_schema, c.relname AS table_name
FROM unnest($1::text[]) AS t(name)
JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(t.name)
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
"""


LONG_TRANSACTION_SECONDS = 60.0


def stuck_blockers(report: LockReport, lock_wait_seconds: float) -> list[MigrationBlocker]:
    """Held locks on the migration's tables that will not be released within the migration's lock wait: the holder
    sits idle in a transaction older than that wait, or its transaction has lasted a minute or more."""

    def stuck(b: MigrationBlocker) -> bool:
        age = b.held_seconds or 0.0
        idle = (b.state or "").startswith("idle in transaction")
        return age >= LONG_TRANSACTION_SECONDS or (idle and age >= lock_wait_seconds)

    return [b for b in report.migration_blockers if b.granted and stuck(b)]


def describe_blockers(report: LockReport, blockers: Sequence[MigrationBlocker]) -> str:
    """One clause per blocking session, its statement fenced (it is another session's text)."""
    queries = {s.pid: s.query for s in report.statements.data}
    parts = []
    for pid in dict.fromkeys(b.pid for b in blockers):
        mine = [b for b in blockers if b.pid == pid]
        held = ", ".join(f"{b.mode} on {b.table}" for b in mine)
        age = mine[0].held_seconds
        parts.append(
            f"pid {pid} ({mine[0].state}, transaction open for {age:.0f} s) holds {held}; its last statement: "
            f"{fence_text(queries.get(pid) or '')}"
        )
    return "; ".join(parts)


async def lock_conflicts(
    conn: asyncpg.Connection, environment: str, relations: Sequence[str], lock_wait_seconds: float
) -> str | None:
    """Why the statements naming `relations` would wait for a lock that will not be released in time, or None.
    Reads only the catalogs, on the apply's own session (which the session list leaves out)."""
    if not relations:
        return None
    tables = [qualified(r["table_schema"], r["table_name"]) for r in await conn.fetch(RESOLVE_TABLES_SQL, relations)]
    if not tables:
        return None
    sessions, locks = await conn.fetch(SESSIONS_SQL), await conn.fetch(LOCKS_SQL)
    connections = await conn.fetchrow(CONNECTIONS_SQL)
    assert connections is not None
    report = build_report(environment, sessions, locks, connections, tables, LONG_TRANSACTION_SECONDS)
    blockers = stuck_blockers(report, lock_wait_seconds)
    return describe_blockers(report, blockers) if blockers else None
