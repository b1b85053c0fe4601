"""A plan says before it runs when the target's rows would make it fail: NULLs under a new NOT NULL, rows under a new
NOT NULL column without a default, duplicates under a new PRIMARY KEY or UNIQUE. Counted read-only and bounded
(`tools.plan.rows`); the target is checked afterwards on its own connection.
"""

from __future__ import annotations

import asyncio

import asyncpg
from conftest import create_database, drop_database
from support_plan import apply_plan, read_schema, run_sql

from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.plan import plan_migration
from pgshift.tools.plan.rows import count_blockers

OLD = """
CREATE TABLE public.users (id int, email text, plan text);
INSERT INTO public.users VALUES (1, 'a@x', NULL), (1, 'b@x', 'pro'), (2, 'a@x', NULL), (3, NULL, 'free');
CREATE TABLE public.empty (id int);
"""
NEW = """
CREATE TABLE public.users (
  id int PRIMARY KEY, email text UNIQUE, plan text NOT NULL DEFAULT current_user, seats int NOT NULL
);
CREATE TABLE public.empty (id int, seats int NOT NULL);
"""


async def _blocked(pg: LocalPostgres, old: str, new: str, **bounds: int) -> tuple[list[tuple[str, int | None]], str]:
    """(object, rows) of each blocker counted on a target holding `old` for a plan to `new`, and their messages."""
    target, source = await asyncio.gather(create_database(pg), create_database(pg))
    try:
        await asyncio.gather(run_sql(target, old), run_sql(source, new))
        plan = plan_migration(await read_schema(source), await read_schema(target))
        conn = await asyncpg.connect(target)
        try:
            counted = await count_blockers(conn, plan, **bounds)
            rows = await conn.fetchval("SELECT count(*) FROM public.users WHERE plan IS NULL")
        finally:
            await conn.close()
        assert rows == 2  # counting changed nothing
        messages = "\n".join(b.message for b in counted.blockers)
        return [(b.object, b.rows) for b in counted.blockers], messages
    finally:
        await asyncio.gather(drop_database(pg, target), drop_database(pg, source))


async def test_a_plan_counts_the_target_rows_each_new_not_null_or_unique_would_reject(pg: LocalPostgres) -> None:
    blockers, messages = await _blocked(pg, OLD, NEW)
    assert sorted(blockers) == [
        ("column public.users.plan", 2),
        ("column public.users.seats", 4),
        ("constraint public.users.users_email_key", 1),
        ("constraint public.users.users_pkey", 1),
    ]
    assert "UPDATE public.users SET plan = CURRENT_USER WHERE plan IS NULL" in messages  # offered, not planned
    assert not any("public.empty" in b for b, _ in blockers)  # an empty table is in nobody's way


async def test_a_huge_table_is_not_counted_and_its_blockers_say_so(pg18: LocalPostgres) -> None:
    blockers, messages = await _blocked(pg18, OLD + "ANALYZE public.users;", NEW, max_rows=1)
    assert {rows for _, rows in blockers} == {None}
    assert "were not counted (about 4 rows, more than 1)" in messages


async def test_the_backfill_a_blocker_offers_clears_the_way_for_the_plan(pg18: LocalPostgres) -> None:
    old = "CREATE TABLE public.t (id int, plan text); INSERT INTO public.t VALUES (1, NULL), (2, 'pro');"
    new = "CREATE TABLE public.t (id int, plan text NOT NULL DEFAULT current_user);"  # a constant is backfilled
    target, source = await asyncio.gather(create_database(pg18), create_database(pg18))
    try:
        await asyncio.gather(run_sql(target, old), run_sql(source, new))
        src = await read_schema(source)
        plan = plan_migration(src, await read_schema(target))
        conn = await asyncpg.connect(target)
        try:
            (blocker,) = (await count_blockers(conn, plan)).blockers
            assert blocker.rows == 1 and blocker.backfill is not None
            await conn.execute(blocker.backfill)
            assert (await count_blockers(conn, plan)).blockers == ()
        finally:
            await conn.close()
        await apply_plan(target, plan)
        assert plan_migration(src, await read_schema(target)).is_empty
    finally:
        await asyncio.gather(drop_database(pg18, target), drop_database(pg18, source))


async def test_a_count_that_takes_too_long_is_unknown_and_the_callers_transaction_goes_on(pg18: LocalPostgres) -> None:
    old = "CREATE TABLE public.t (id int); INSERT INTO public.t SELECT NULL FROM generate_series(1, 300000);"
    target, source = await asyncio.gather(create_database(pg18), create_database(pg18))
    try:
        await asyncio.gather(run_sql(target, old), run_sql(source, "CREATE TABLE public.t (id int NOT NULL);"))
        plan = plan_migration(await read_schema(source), await read_schema(target))
        conn = await asyncpg.connect(target)
        try:
            async with conn.transaction(readonly=True):
                await conn.execute("SET LOCAL statement_timeout = '42s'")
                (blocker,) = (await count_blockers(conn, plan, timeout_ms=1)).blockers
                assert await conn.fetchval("SHOW statement_timeout") == "42s"
                assert await conn.fetchval("SELECT count(*) FROM public.t") == 300000
        finally:
            await conn.close()
        assert blocker.rows is None and "took longer than 1 ms" in blocker.message
    finally:
        await asyncio.gather(drop_database(pg18, target), drop_database(pg18, source))
