"""Snapshot storage per migration is bounded: the DDL is stored as content-addressed, compressed chunks (one schema's
run of pg_dump entries each), so a platform part that did not change (Supabase's auth and storage) is stored once, not
copied on every apply; and only the newest `keep_snapshots` snapshots stay (never the newest, never one with kept
data). Judged on the database."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from support_prepare import make_supabase_shaped

from pgshift.tools.apply import apply_migration
from pgshift.tools.databases import Databases, Environment
from pgshift.tools.undo.store import read_snapshot, split_ddl

# A platform part big enough to matter, as Supabase's auth schema is (70 migrations of tables, functions, indexes).
PLATFORM = "\n".join(
    f"CREATE TABLE auth.platform_{i} (id uuid PRIMARY KEY, instance_id uuid, payload jsonb, created_at timestamptz, "
    f"note_{i} text); CREATE INDEX platform_{i}_instance ON auth.platform_{i} (instance_id);"
    for i in range(60)
)

DUMP = """--
-- PostgreSQL database dump
--

SET statement_timeout = 0;

--
-- Name: auth; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA auth;

--
-- Name: users; Type: TABLE; Schema: auth; Owner: -
--

CREATE TABLE auth.users (id uuid);

--
-- Name: sessions; Type: TABLE; Schema: auth; Owner: -
--

CREATE TABLE auth.sessions (id uuid);

--
-- Name: person; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.person (id int);

--
-- PostgreSQL database dump complete
--

"""


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))


def test_the_dump_is_cut_into_runs_of_one_schema_that_join_back_exactly() -> None:
    pieces = split_ddl(DUMP)
    assert "".join(pieces) == DUMP
    assert any("auth.users" in p and "auth.sessions" in p for p in pieces)  # one schema's run stays together
    assert not any("auth.users" in p and "public.person" in p for p in pieces)
    assert pieces[-1].startswith("--\n-- PostgreSQL database dump complete")
    assert split_ddl("") == [] and "".join(split_ddl("no headers at all")) == "no headers at all"


async def _stored_per_snapshot(url: str) -> list[tuple[int, int, int]]:
    """(snapshot id, its DDL's size, bytes it added: its row plus the chunks it was first to use), oldest first."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT id, ddl_bytes, chunks, pg_column_size(s.*) AS row FROM pgshift.snapshots s")
        seen: set[bytes] = set()
        out = []
        for r in sorted(rows, key=lambda r: r["id"]):
            new = [bytes(d) for d in r["chunks"] if bytes(d) not in seen]
            seen.update(new)
            size = await conn.fetchval(
                "SELECT coalesce(sum(pg_column_size(data) + 40), 0) FROM pgshift.snapshot_chunks "
                "WHERE sha256 = ANY($1::bytea[])",
                new,
            )
            out.append((int(r["id"]), int(r["ddl_bytes"]), int(r["row"]) + int(size)))
        return out
    finally:
        await conn.close()


async def test_an_unchanged_platform_schema_is_stored_once_not_on_every_apply(db18: str) -> None:
    await make_supabase_shaped(db18)
    conn = await asyncpg.connect(db18)
    try:
        await conn.execute(PLATFORM)
    finally:
        await conn.close()
    db = Databases([Environment(name="target", url=db18)])
    try:
        for n in range(1, 5):
            await apply_migration(
                db, "target", f"m{n}", sql=f"CREATE TABLE app_{n} (id int PRIMARY KEY);", version=str(n)
            )
        conn = await asyncpg.connect(db18)
        try:
            for (snapshot_id,) in await conn.fetch("SELECT id FROM pgshift.snapshots"):
                _, ddl = await read_snapshot(conn, snapshot_id)  # every snapshot joins back and verifies
                assert "auth.platform_59" in ddl
        finally:
            await conn.close()
    finally:
        await db.close()
    stored = await _stored_per_snapshot(db18)
    assert len(stored) == 4
    first, *later = stored
    assert first[2] < first[1]  # compressed
    for _, ddl_bytes, added in later:
        assert added * 10 < ddl_bytes, stored  # an apply adds well under a tenth of the whole dump


async def test_only_the_newest_snapshots_stay_but_one_with_kept_data_is_never_removed(db18: str) -> None:
    db = Databases([Environment(name="target", url=db18, keep_snapshots=2)])
    try:
        await apply_migration(db, "target", "base", sql="CREATE TABLE p (id int PRIMARY KEY, v text);", version="1")
        await apply_migration(db, "target", "lossy", sql="ALTER TABLE p DROP COLUMN v;", version="2")
        for n in range(3, 7):
            await apply_migration(db, "target", f"m{n}", sql=f"CREATE TABLE t{n} (id int PRIMARY KEY);", version=str(n))
    finally:
        await db.close()
    conn = await asyncpg.connect(db18)
    try:
        kept = await conn.fetch("SELECT precedes_version FROM pgshift.snapshots ORDER BY id")
        orphans = await conn.fetchval(
            "SELECT count(*) FROM pgshift.snapshot_chunks c "
            "WHERE NOT EXISTS (SELECT FROM pgshift.snapshots s WHERE c.sha256 = ANY(s.chunks))"
        )
        missing = await conn.fetchval(
            "SELECT count(*) FROM pgshift.snapshots s, unnest(s.chunks) d "
            "WHERE NOT EXISTS (SELECT FROM pgshift.snapshot_chunks c WHERE c.sha256 = d)"
        )
    finally:
        await conn.close()
    assert [r[0] for r in kept] == ["2", "5", "6"]  # 2 has kept data; 5 and 6 are the newest two
    assert orphans == 0 and missing == 0
