"""check_migration over the real chains, each migration checked and then applied, as a release would go.

hoppscotch on PostgreSQL 15: every dry run succeeds and reports a change. chatbot-ui on a Supabase-shaped
PostgreSQL 18 (the build with pgvector): its setup migration is refused before anything runs, naming `http`;
it is then applied without that one statement so the rest of the chain can be checked, and every later dry run
succeeds.
"""

from __future__ import annotations

import asyncpg
import pytest
from conftest import create_database, drop_database
from support_prepare import Chain, available_extensions, chains, make_supabase_shaped, without_unavailable_extensions

from pgshift.tools.databases import Databases
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.migrations.check import check_migration
from pgshift.tools.migrations.parse import split_statements
from pgshift.tools.migrations.rewrite import rewrite_for_target


@pytest.mark.parametrize("chain", chains(), ids=lambda c: c.name)
async def test_every_migration_of_a_chain_checks_clean_except_the_one_needing_a_missing_extension(
    chain: Chain, request: pytest.FixtureRequest
) -> None:
    server: LocalPostgres = request.getfixturevalue("pg18" if chain.supabase else "pg15")
    url = await create_database(server, "chk")
    db = Databases.from_urls({"production": url})
    try:
        if chain.supabase:
            await make_supabase_shaped(url)
        available = await available_extensions(url)
        refused: list[tuple[str, list[str]]] = []
        for path in chain.files:
            label = chain.label(path)
            # The server doubles as the shadow for scripts kept off the target (no server started per migration).
            result = await check_migration(db, "production", migration=str(path), shadow=server)
            assert result.supabase_target is chain.supabase
            assert result.dry_run is not None
            script = result.script
            if result.missing_extensions:
                refused.append((label, [m.name for m in result.missing_extensions]))
                assert result.dry_run.mode == "not_run" and result.dry_run.statements_run == 0
                kept, _ = without_unavailable_extensions(path.read_text(), available)
                script = rewrite_for_target(split_statements(kept), supabase=chain.supabase).script
            else:
                assert result.dry_run.succeeded, f"{label}: {result.blockers}"
                assert result.ok, f"{label}: {result.blockers}"
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(script)
            finally:
                await conn.close()
        expected = [("20240108234540_setup", ["http"])] if chain.supabase else []
        assert refused == expected
    finally:
        await db.close()
        await drop_database(server, url)
