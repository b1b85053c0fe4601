"""Real schemas, real histories: a Prisma migration chain replayed by plans, and a large drifted schema.

- hoppscotch's 21 Prisma migrations, on PostgreSQL 15: after each one the plan brings a second database (which only ever
  receives our plans) to the same state; at the end the judge finds both equal, a re-plan is empty, and
  a plan to an empty database drops everything.
- chatbot-ui's 25 Supabase migrations on a Supabase-shaped PostgreSQL 18 (the build with pgvector), read as a
  compare reads them by default (the app's trigger on auth.users and its policies on storage.objects count without
  the managed schemas): replayed by plans step by step, judged equal at the end.
  Its `http` extension exists on no local server: `create extension http` is left out of the replay.
- genschema's 200-table base and its drifted twin: the plan converges by the judge with an empty re-plan.
"""

from __future__ import annotations

import asyncio

from conftest import corpus_root, create_database, drop_database
from support_plan import apply_plan, read_schema, run_sql
from support_prepare import available_extensions, chains, make_supabase_shaped, without_unavailable_extensions

from pgshift.tools.judge import judge_equal
from pgshift.tools.localpg import LocalPostgres, embedded_bin_dir
from pgshift.tools.plan import plan_migration

HOPPSCOTCH = corpus_root() / "prisma" / "hoppscotch" / "migrations"
GENSCHEMA = corpus_root() / "genschema"  # base.sql and target.sql: genschema.py --tables 200 --seed 7


async def test_plans_replay_the_hoppscotch_prisma_chain_and_then_drop_everything(pg: LocalPostgres) -> None:
    chain = sorted(p / "migration.sql" for p in HOPPSCOTCH.iterdir() if (p / "migration.sql").exists())
    assert len(chain) == 21
    truth, walker, empty = await asyncio.gather(create_database(pg), create_database(pg), create_database(pg))
    try:
        for migration in chain:
            await run_sql(truth, migration.read_text())
            src, tgt = await asyncio.gather(read_schema(truth), read_schema(walker))
            await apply_plan(walker, plan_migration(src, tgt, allow_data_loss=True))
        equal, diff = await judge_equal(walker, truth, embedded_bin_dir())
        assert equal, diff
        assert plan_migration(await read_schema(truth), await read_schema(walker)).is_empty
        teardown = plan_migration(await read_schema(empty), await read_schema(walker))
        assert teardown.blocked_by_data_loss
        await apply_plan(walker, teardown.model_copy(update={"allow_data_loss": True}))
        assert (await judge_equal(walker, empty, embedded_bin_dir()))[0]
    finally:
        await asyncio.gather(*(drop_database(pg, u) for u in (truth, walker, empty)))


async def test_plans_replay_the_chatbot_ui_supabase_chain(pg18: LocalPostgres) -> None:
    (chain,) = [c for c in chains() if c.supabase]
    truth, walker = await create_database(pg18), await create_database(pg18)
    try:
        for url in (truth, walker):  # one after the other: both create the same cluster-wide roles
            await make_supabase_shaped(url)
        available = await available_extensions(truth)
        left_out: list[str] = []
        for path in chain.files:
            script, missing = without_unavailable_extensions(path.read_text(), available)
            left_out += missing
            await run_sql(truth, script)
            src, tgt = await asyncio.gather(read_schema(truth), read_schema(walker))
            await apply_plan(walker, plan_migration(src, tgt, allow_data_loss=True))
        assert left_out == ["http"]
        app = await read_schema(truth)
        assert any(t.table == "auth.users" for t in app.triggers)
        assert sum(p.table == "storage.objects" for p in app.policies) >= 10
        equal, diff = await judge_equal(walker, truth, embedded_bin_dir())
        assert equal, diff
        assert plan_migration(await read_schema(truth), await read_schema(walker)).is_empty
    finally:
        await drop_database(pg18, truth)
        await drop_database(pg18, walker)


async def test_a_large_drifted_schema_converges(pg: LocalPostgres) -> None:
    base, drifted = (GENSCHEMA / "base.sql").read_text(), (GENSCHEMA / "target.sql").read_text()
    target, source = await asyncio.gather(create_database(pg), create_database(pg))
    try:
        await asyncio.gather(run_sql(target, base), run_sql(source, drifted))
        src, tgt = await asyncio.gather(read_schema(source), read_schema(target))
        plan = plan_migration(src, tgt, allow_data_loss=True)
        assert len(plan.statements) > 100
        await apply_plan(target, plan)
        equal, diff = await judge_equal(target, source, embedded_bin_dir())
        assert equal, diff
        assert plan_migration(src, await read_schema(target)).is_empty
    finally:
        await asyncio.gather(drop_database(pg, target), drop_database(pg, source))
