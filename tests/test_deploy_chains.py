"""Every real chain in the corpus deploys into an empty PostgreSQL 15 like a raw psql replay of the same files."""

from __future__ import annotations

import pytest
from conftest import corpus_root
from support_apply import history_counts, new_database, remove_database, run_sql, snapshot, target
from test_deploy import DROP_HISTORY, SUPABASE_SHAPE, psql_replay

from pgshift.tools.deploy import deploy
from pgshift.tools.judge import judge_equal
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.migrations.folder import read_migrations

CHAINS = {
    "umami": (corpus_root() / "prisma" / "umami" / "migrations", False),
    "basejump": (corpus_root() / "supabase" / "basejump" / "supabase" / "migrations", True),
}


@pytest.mark.parametrize("chain", sorted(CHAINS))
async def test_a_real_chain_deploys_into_empty_pg15_like_a_raw_replay_and_a_second_deploy_changes_nothing(
    chain: str, pg15: LocalPostgres, pg18: LocalPostgres
) -> None:
    directory, supabase = CHAINS[chain]
    migrations = read_migrations(directory).migrations
    deployed, replayed = await new_database(pg15), await new_database(pg15)
    try:
        if supabase:
            for url in (deployed, replayed):
                await run_sql(url, SUPABASE_SHAPE.read_text())
        db = target(deployed)
        try:
            first = await deploy(db, "target", str(directory))
            after_first = await snapshot(deployed)
            second = await deploy(db, "target", str(directory))
        finally:
            await db.close()
        assert first.status == "deployed", first.message
        assert [a.version for a in first.applied] == [m.version for m in migrations]
        assert second.status == "up_to_date"
        assert await snapshot(deployed) == after_first
        n = len(migrations)
        assert await history_counts(deployed) == (n, n, 0 if supabase else n)

        await psql_replay(pg15.bin_dir, replayed, [m.path for m in migrations if m.path])
        await run_sql(deployed, DROP_HISTORY.replace("DROP TABLE", "DROP TABLE IF EXISTS"))
        equal, diff = await judge_equal(deployed, replayed, pg18.bin_dir)
        assert equal, diff
    finally:
        await remove_database(pg15, deployed)
        await remove_database(pg15, replayed)
