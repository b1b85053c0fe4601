"""After a rollback the three histories agree that the migration is not applied, and deploying again re-applies it
(PostgreSQL 15 as the production stand-in, a Prisma folder, a protected environment approved by a person)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from conftest import create_database, drop_database
from support_apply import prisma_folder, run_sql, target

from pgshift.tools import ledger
from pgshift.tools.approval import ApprovalStore
from pgshift.tools.deploy import deploy
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.migrations.folder import read_migrations
from pgshift.tools.undo.rollback import rollback

INIT = 'CREATE TABLE "User" (id serial PRIMARY KEY, email text NOT NULL, bio text);\n'
DROP_BIO = 'ALTER TABLE "User" DROP COLUMN "bio";\n'
ROWS = """INSERT INTO "User" (email, bio) VALUES ('a@x', 'hello'), ('b@x', NULL)"""


async def test_a_rolled_back_prisma_migration_is_pending_in_every_history_and_deploys_again(
    pg15: LocalPostgres, pg18: LocalPostgres, tmp_path: Path
) -> None:
    url = await create_database(pg15, "undo")
    folder = prisma_folder(tmp_path, {"20240101000000_init": INIT})
    approvals = ApprovalStore(tmp_path / "state")
    db = target(url, protected=True)
    try:
        first = await deploy(db, "target", str(folder), approvals=approvals)
        approvals.approve(first.approval_id or "")
        await deploy(db, "target", str(folder), first.approval_id, approvals=approvals)
        await run_sql(url, ROWS)
        (folder / "20240102000000_drop_bio").mkdir()
        (folder / "20240102000000_drop_bio" / "migration.sql").write_text(DROP_BIO)
        second = await deploy(db, "target", str(folder), approvals=approvals)
        approvals.approve(second.approval_id or "")
        await deploy(db, "target", str(folder), second.approval_id, approvals=approvals)

        asked = await rollback(db, "target", migration="20240102000000", shadow=pg18, approvals=approvals)
        assert asked.status == "confirmation_required" and asked.approval_id
        request = approvals.load(asked.approval_id)
        assert any("restores" in h and "bio" in h for h in request.hazards)
        approvals.approve(asked.approval_id)
        done = await rollback(
            db, "target", migration="20240102000000", approval_id=asked.approval_id, shadow=pg18, approvals=approvals
        )
        assert done.status == "rolled_back", done

        conn = await asyncpg.connect(url)
        try:
            assert [tuple(r) for r in await conn.fetch('SELECT email, bio FROM "User" ORDER BY id')] == [
                ("a@x", "hello"),
                ("b@x", None),
            ]
            history = await ledger.read_history(conn)
        finally:
            await conn.close()
        pending = read_migrations(str(folder)).migrations[1]
        assert not history.is_applied(pending) and not history.is_failed(pending)
        assert "20240102000000" not in history.supabase_versions()
        assert [r.migration_name for r in history.prisma] == ["20240101000000_init"]
        assert [r.outcome for r in history.ledger if r.version == "20240102000000"] == ["applied", "rolled_back"]

        again = await deploy(db, "target", str(folder), approvals=approvals)
        approvals.approve(again.approval_id or "")
        redeployed = await deploy(db, "target", str(folder), again.approval_id, approvals=approvals)
        assert [a.version for a in redeployed.applied] == ["20240102000000"]
    finally:
        await db.close()
        await drop_database(pg15, url)
