"""Session settings a migration changes, put back after it.

A migration's own `SET` (not `SET LOCAL`) lasts past its transaction, in the apply session: `SET search_path`,
`SET statement_timeout = 0`, `RESET ALL`. psql runs each file in a new session, so nothing of one file reaches the
next; pgshift runs a whole deploy in one session, so it reads those settings (from the parse tree) before the
migration and restores them after it: the next migration of the deploy runs in the session pgshift set up, with the
apply's lock and statement timeouts. Transaction characteristics never reach the session (`steps.plan_steps`).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from pglast import ast

from pgshift.tools.migrations.parse import SqlStatement

ALWAYS = ("lock_timeout", "statement_timeout")
"""The apply session's timeouts (`runner.apply_session`): restored after a migration that sets anything for the
session (a RESET ALL resets them too)."""

READ = "SELECT n, pg_catalog.current_setting(n, true) FROM unnest($1::text[]) AS n"
WRITE = "SELECT pg_catalog.set_config(n, v, false) FROM unnest($1::text[], $2::text[]) AS t(n, v)"

Settings = list[tuple[str, str | None]]


def changed_by(statements: Sequence[SqlStatement]) -> list[str]:
    """The settings the statements change for the session (SET / RESET without LOCAL), with the apply's timeouts;
    empty when they change none (then nothing is read or restored: no round trip per migration)."""
    names: list[str] = []
    for s in statements:
        if s.node_type != "VariableSetStmt" or s.tx_control is not None:
            continue
        node = s.node
        if not isinstance(node, ast.VariableSetStmt) or node.is_local:
            continue
        name = str(node.name or "").lower()  # RESET ALL has no name: it resets the timeouts too
        for changed in (*ALWAYS, name):
            if changed and changed not in names and changed not in ("transaction", "session characteristics"):
                names.append(changed)
    return names


async def read(conn: asyncpg.Connection, names: Sequence[str]) -> Settings:
    """The current value of each setting (None for a custom one that does not exist yet)."""
    return [(r[0], r[1]) for r in await conn.fetch(READ, list(names))] if names else []


async def restore(conn: asyncpg.Connection, settings: Settings) -> None:
    """Put the settings back (outside any transaction, in one query); a session that cannot be put back is
    terminated, so the pool never hands it to anyone."""
    known = [(name, value) for name, value in settings if value is not None]  # a custom one created stays: harmless
    if not known:
        return
    try:
        if conn.is_closed() or conn.is_in_transaction():
            return
    except asyncpg.InterfaceError:  # the pool already took a broken connection back
        return
    try:
        await conn.execute(WRITE, [n for n, _ in known], [v for _, v in known])
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        conn.terminate()
