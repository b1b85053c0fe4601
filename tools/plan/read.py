"""Read two databases and plan the migration between them: the I/O around the pure planner.

Used by the `pgshift plan` command (server/commands.py); `compare_schemas` plans from the schemas it
has already read (tools/compare.py).
"""

from __future__ import annotations

import asyncio

import asyncpg

from pgshift.tools.databases import Environment, connect, snapshot_pair
from pgshift.tools.introspect import gc_paused, introspect
from pgshift.tools.model import Schema
from pgshift.tools.plan.planner import plan_migration
from pgshift.tools.plan.rows import count_blockers
from pgshift.tools.plan.statement import Plan


async def _read(
    conn: asyncpg.Connection, helpers: list[asyncpg.Connection], schemas: list[str] | None, include_managed: bool
) -> Schema:
    return await introspect(
        conn, schemas=schemas, include_managed=include_managed, with_dependencies=True, helpers=helpers
    )


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
        async with snapshot_pair(env) as (conn, helper):  # two connections per database, as compare reads
            return await _read(conn, [helper], schemas, include_managed)

    with gc_paused():  # as compare: the models and the plan are many small objects without cycles
        src, tgt = await asyncio.gather(read(source), read(target))
        plan = plan_migration(src, tgt, allow_data_loss=allow_data_loss, online=online)
        del src, tgt
    if not plan.row_checks:
        return plan
    conn = await connect(target)
    try:
        return await count_blockers(conn, plan)
    finally:
        await conn.close()
