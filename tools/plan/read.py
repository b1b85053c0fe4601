"""Read two databases and plan the migration between them: the I/O around the pure planner.

Used by the `pgshift plan` command (server/commands.py); `compare_schemas` plans from the schemas it
has already read (tools/compare.py).
"""

from __future__ import annotations

import asyncio

import asyncpg

from pgshift.tools.databases import Environment, connect
from pgshift.tools.introspect import introspect
from pgshift.tools.model import Schema
from pgshift.tools.plan.planner import plan_migration
from pgshift.tools.plan.rows import count_blockers
from pgshift.tools.plan.statement import Plan


async def _read(conn: asyncpg.Connection, schemas: list[str] | None, include_managed: bool) -> Schema:
    return await introspect(conn, schemas=schemas, include_managed=include_managed, with_dependencies=True)


async def plan_environments(
    source: Environment,
    target: Environment,
    *,
    schemas: list[str] | None = None,
    include_managed: bool = False,
    allow_data_loss: bool = False,
    online: bool = False,
) -> Plan:
    """The plan that makes `target` equal `source`, each read over one connection (read-only on both), with the
    target's rows that would make it fail counted as blockers (`tools.plan.rows`)."""

    async def read(env: Environment) -> Schema:
        conn = await connect(env)
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return await _read(conn, schemas, include_managed)
        finally:
            await conn.close()

    src, tgt = await asyncio.gather(read(source), read(target))
    plan = plan_migration(src, tgt, allow_data_loss=allow_data_loss, online=online)
    if not plan.row_checks:
        return plan
    conn = await connect(target)
    try:
        return await count_blockers(conn, plan)
    finally:
        await conn.close()
