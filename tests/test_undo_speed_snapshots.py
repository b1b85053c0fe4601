"""Snapshot reuse at the cost of one catalog query: while no DDL ran since the last snapshot, a new one neither reads
the schema nor runs pg_dump; any DDL, or a stamp changed outside pgshift, means a full read. Proven by counting the
calls, never by timing; judged on `pgshift.snapshots` with our own connection."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from support_apply import run_sql, target

import pgshift.tools.migrations.runner as runner_module
import pgshift.tools.undo.store as store_module
from pgshift.tools.introspect import introspect
from pgshift.tools.undo.snapshots import list_snapshots, snapshot_schema

BASE = "CREATE TABLE item (id int PRIMARY KEY, label text);\n"


def count_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count schema reads (`target_fingerprint`) and dumps (`dump_schema`), both still running."""
    calls = {"fingerprint": 0, "dump": 0}
    real_fingerprint, real_dump = runner_module.target_fingerprint, store_module.dump_schema

    def counted(name: str, real: Callable[..., Awaitable[str]]) -> Callable[..., Awaitable[str]]:
        async def wrapper(*args: object, **kwargs: object) -> str:
            calls[name] += 1
            return await real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(runner_module, "target_fingerprint", counted("fingerprint", real_fingerprint))
    monkeypatch.setattr(store_module, "dump_schema", counted("dump", real_dump))
    return calls


async def newest(url: str) -> tuple[str, str | None, str]:
    """The newest snapshot's fingerprint and catalog stamp, and the live schema's fingerprint now."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow("SELECT fingerprint, catalog_stamp FROM pgshift.snapshots ORDER BY id DESC LIMIT 1")
        assert row is not None
        return row["fingerprint"], row["catalog_stamp"], (await introspect(conn)).fingerprint()
    finally:
        await conn.close()


async def test_an_unchanged_schema_reuses_the_last_snapshot_without_reading_the_schema_or_running_pg_dump(
    db18: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await run_sql(db18, BASE)
    db = target(db18)
    try:
        await snapshot_schema(db, "target")  # creates pgshift's tables: the catalogs change once more
        await snapshot_schema(db, "target")  # same fingerprint: reused, and the stamp recorded with it
        calls = count_calls(monkeypatch)
        reused = await snapshot_schema(db, "target")
        after_reuse = dict(calls)
        await run_sql(db18, "ALTER TABLE item ADD COLUMN added int")
        changed = await snapshot_schema(db, "target")
        listed = await list_snapshots(db, "target")
    finally:
        await db.close()
    assert after_reuse == {"fingerprint": 0, "dump": 0} and "reused" in reused.message
    assert calls == {"fingerprint": 1, "dump": 1} and "reused" not in changed.message
    recorded, stamp, live = await newest(db18)
    assert recorded == live and stamp is not None
    assert listed.unverified == 0 and all(s.integrity == "ok" for s in listed.snapshots.data)


async def test_a_catalog_stamp_forged_to_match_after_ddl_is_never_trusted(
    db18: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await run_sql(db18, BASE)
    db = target(db18)
    try:
        await snapshot_schema(db, "target")
        await snapshot_schema(db, "target")
        await run_sql(db18, "ALTER TABLE item ADD COLUMN added int")
        conn = await asyncpg.connect(db18)
        try:  # what a writer of the pgshift schema could do: make the last snapshot claim the catalogs as they are now
            stamp = await store_module.catalog_fingerprint(conn)
            await conn.execute(
                "UPDATE pgshift.snapshots SET catalog_stamp = $1 WHERE id = (SELECT max(id) FROM pgshift.snapshots)",
                stamp,
            )
        finally:
            await conn.close()
        calls = count_calls(monkeypatch)
        taken = await snapshot_schema(db, "target")
        listed = await list_snapshots(db, "target")
    finally:
        await db.close()
    recorded, _, live = await newest(db18)
    assert recorded == live and "reused" not in taken.message and calls["fingerprint"] == 1
    flagged = {s.id: s.integrity for s in listed.snapshots.data}
    assert flagged[taken.snapshot.data.id - 1] == "failed" and flagged[taken.snapshot.data.id] == "ok"
