"""Helpers for the planner's acceptance tests: load DDL, read a schema, apply a plan the way a runner would."""

from __future__ import annotations

import asyncpg

from pgshift.tools.introspect import introspect
from pgshift.tools.model import Schema
from pgshift.tools.plan import Plan

ROLE = "schemainspect_test_role"


async def ensure_role(admin_url: str, role: str = ROLE) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"CREATE ROLE {role}")
    except asyncpg.DuplicateObjectError:
        pass
    finally:
        await conn.close()


async def has_icu(url: str) -> bool:
    """Whether the server was built with ICU (creating an ICU collation, rolled back, is the only sure test)."""
    conn = await asyncpg.connect(url)
    try:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("CREATE COLLATION pgshift_icu_probe (provider = icu, locale = 'und')")
            return True
        except asyncpg.FeatureNotSupportedError:
            return False
        finally:
            await tx.rollback()
    finally:
        await conn.close()


async def run_sql(url: str, sql: str) -> None:
    """Run a script (several statements, simple query protocol)."""
    if not sql.strip():
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def read_schema(url: str) -> Schema:
    conn = await asyncpg.connect(url)
    try:
        return await introspect(conn)
    finally:
        await conn.close()


async def apply_plan(url: str, plan: Plan) -> None:
    """Transactional statements run together in one transaction per run; the others alone, committed."""
    conn = await asyncpg.connect(url)
    try:
        batch: list[str] = []

        async def flush() -> None:
            if batch:
                async with conn.transaction():
                    for sql in batch:
                        await conn.execute(sql)
                batch.clear()

        for statement in plan.statements:
            if statement.transactional:
                batch.append(statement.render())
            else:
                await flush()
                if statement.lock_timeout_ms is not None:
                    await conn.execute(f"SET lock_timeout = {int(statement.lock_timeout_ms)}")
                await conn.execute(statement.sql)
        await flush()
    finally:
        await conn.close()
