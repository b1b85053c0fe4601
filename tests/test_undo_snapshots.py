"""Snapshots: taken, reused, listed, verified by loading them, written to a file, kept data discarded; the tools over
MCP with honest annotations, and the CLI commands."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import asyncpg
import pytest
from conftest import create_database, drop_database
from mcp import Client
from support_apply import run_sql, target

from pgshift.server.app import build_app
from pgshift.server.undo_commands import add_undo_commands
from pgshift.server.undo_tools import register_undo_tools
from pgshift.tools.apply import apply_migration
from pgshift.tools.databases import Environment
from pgshift.tools.introspect import introspect
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.undo.snapshots import discard_kept_data, list_snapshots, snapshot_schema, verify_snapshot

BASE = "CREATE TABLE item (id int PRIMARY KEY, label text);\nINSERT INTO item VALUES (1, 'one'), (2, 'two');\n"


async def test_a_snapshot_is_recorded_reused_while_the_schema_is_unchanged_verified_and_written_to_a_file(
    db18: str, pg18: LocalPostgres, tmp_path: Path
) -> None:
    await run_sql(db18, BASE)
    db = target(db18)
    try:
        first = await snapshot_schema(db, "target", "before release", project=tmp_path)
        second = await snapshot_schema(db, "target")
        listed = await list_snapshots(db, "target")
        page = await list_snapshots(db, "target", limit=1)
        verified = await verify_snapshot(db, "target", first.snapshot.data.id, shadow=pg18)
    finally:
        await db.close()
    assert "reused" not in first.message and "reused" in second.message
    shots = listed.snapshots.data
    assert [(s.label, s.fingerprint == shots[0].fingerprint) for s in shots] == [(None, True), ("before release", True)]
    assert (page.total, page.next_offset, [s.id for s in page.snapshots.data]) == (2, 1, [shots[0].id])  # newest first
    assert shots[0].ddl_bytes > 0 and shots[0].server_version
    assert first.file is not None and "CREATE TABLE public.item" in await asyncio.to_thread(Path(first.file).read_text)
    assert Path(first.file).relative_to(tmp_path).parts[:3] == (".pgshift", "snapshots", "target")
    assert verified.verified and verified.loaded_fingerprint == verified.recorded_fingerprint
    conn = await asyncpg.connect(db18)
    try:
        schema = await introspect(conn)
    finally:
        await conn.close()
    assert {t.schema for t in schema.tables} == {"public"}  # pgshift.snapshots and kept tables are never compared


async def test_kept_data_is_listed_with_its_snapshot_and_discarding_it_frees_the_space(db18: str) -> None:
    db = target(db18)
    try:
        await apply_migration(db, "target", "base", sql=BASE, version="1")
        applied = await apply_migration(db, "target", "drop", sql="DROP TABLE item;", version="2")
        listed = await list_snapshots(db, "target")
        freed = await discard_kept_data(db, "target")
        after = await list_snapshots(db, "target")
    finally:
        await db.close()
    (kept,) = applied.kept_data
    assert (kept.kind, kept.rows) == ("drop_table", 2)
    shot = next(s for s in listed.snapshots.data if s.id == applied.snapshot_id)
    assert (shot.precedes_version, shot.kept_rows, shot.kept_bytes) == ("2", 2, kept.bytes)
    assert freed.discarded == 1 and freed.freed_bytes == kept.bytes == listed.total_kept_bytes
    assert after.total_kept_bytes == 0
    conn = await asyncpg.connect(db18)
    try:
        assert await conn.fetchval("SELECT to_regclass($1)", f"pgshift.{kept.kept_table}") is None
    finally:
        await conn.close()


async def test_the_undo_tools_are_listed_with_honest_annotations_and_answer_over_mcp(db18: str) -> None:
    await run_sql(db18, BASE)
    app = build_app(lambda: [Environment(name="local", url=db18)])
    if "rollback" not in {t.name for t in await app.list_tools()}:
        register_undo_tools(app)  # until the lead wires it into build_app
    async with Client(app, raise_exceptions=False) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        taken = await client.call_tool("snapshot_schema", {"environment": "local", "label": "mcp"})
        listed = await client.call_tool("list_snapshots", {"environment": "local"})
        refused = await client.call_tool("rollback", {"environment": "local", "snapshot": 42})
    hints = {
        name: tools[name].annotations for name in ("snapshot_schema", "list_snapshots", "verify_snapshot", "rollback")
    }
    assert all(h is not None for h in hints.values())
    assert hints["list_snapshots"].read_only_hint and hints["verify_snapshot"].read_only_hint  # type: ignore[union-attr]
    assert not hints["snapshot_schema"].read_only_hint and not hints["snapshot_schema"].destructive_hint  # type: ignore[union-attr]
    assert hints["rollback"].destructive_hint and not hints["rollback"].read_only_hint  # type: ignore[union-attr]
    assert not taken.is_error and not listed.is_error
    assert listed.structured_content is not None
    assert [s["label"] for s in listed.structured_content["snapshots"]["data"]] == ["mcp"]
    assert refused.is_error and "snapshot 42 does not exist" in refused.content[0].text  # type: ignore[union-attr]


async def _exists(url: str, table: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table))
    finally:
        await conn.close()


def test_the_snapshot_snapshots_rollback_and_discard_commands_answer_with_their_exit_codes(
    pg18: LocalPostgres, capsys: pytest.CaptureFixture[str]
) -> None:
    url = asyncio.run(create_database(pg18, "undo"))
    try:
        parser = argparse.ArgumentParser()
        add_undo_commands(parser.add_subparsers())
        for argv in (["snapshot", "--target", url, "--label", "cli"], ["snapshots", "--target", url, "--json"]):
            args = parser.parse_args(argv)
            assert args.func(args) == 0
        out = capsys.readouterr().out
        listed = json.loads(out[out.index("{") :])
        assert [s["label"] for s in listed["snapshots"]["data"]] == ["cli"]
        asyncio.run(run_sql(url, "CREATE TABLE later (id int)"))
        args = parser.parse_args(["rollback", "--target", url, "--snapshot", "1"])
        assert args.func(args) == 2  # a raw URL is protected: confirmation needed, nothing run
        assert "DROP TABLE public.later" in capsys.readouterr().out
        assert asyncio.run(_exists(url, "later"))
        discard = parser.parse_args(["discard-kept", "--target", url])
        assert discard.func(discard) == 2  # protected without --yes: nothing dropped
        discard = parser.parse_args(["discard-kept", "--target", url, "--yes"])
        assert discard.func(discard) == 0
    finally:
        asyncio.run(drop_database(pg18, url))
