"""The expected schema of one history is replayed once and kept (tools/watch/expected_store.py).

A second check proves it did not replay without timing anything: it runs with no shadow server given and the
environment's shadow_url pointing at a port nothing listens on, so any replay would fail (drift unknown, or an
error). Tampered copies are judged on the file system and on what the check reports about the live database.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from conftest import create_database, drop_database
from test_drift import ENV, PRISMA_CHAIN, deployed, execute, write_prisma

from pgshift.tools.databases import Databases, Environment
from pgshift.tools.introspect import introspect
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.migrations.folder import read_migrations
from pgshift.tools.scratch import TargetExtension, TargetFacts
from pgshift.tools.watch import expected_store
from pgshift.tools.watch.drift import detect_drift
from pgshift.tools.watch.expected_store import ExpectedStore, chain_key

NOWHERE = "postgresql://nobody@127.0.0.1:9/none"  # discard port: a replay here cannot even connect


def kept_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json.gz"))


def forged(path: Path, edit: str, *, fix_digest: bool) -> None:
    """Rewrite a kept file's schema (drop the table named `edit` from it), optionally recomputing its sha256."""
    head, _, body = gzip.decompress(path.read_bytes()).partition(b"\n")
    header = json.loads(head)
    schema = json.loads(body)
    schema["tables"] = [t for t in schema["tables"] if t["name"] != edit]
    new_body = json.dumps(schema).encode()
    if fix_digest:
        header["sha256"] = hashlib.sha256(new_body).hexdigest()
    path.chmod(0o600)
    path.write_bytes(gzip.compress(json.dumps(header).encode() + b"\n" + new_body))


async def drifted_target(pg18: LocalPostgres, tmp_path: Path) -> tuple[str, Path]:
    url = await create_database(pg18, "kept")
    folder = write_prisma(tmp_path)
    db = Databases([Environment(name=ENV, url=url)])
    try:
        await deployed(db, folder)
    finally:
        await db.close()
    await execute(url, "ALTER TABLE account ADD COLUMN nickname text")
    return url, folder


def without_replay(url: str) -> Databases:
    return Databases([Environment(name=ENV, url=url, shadow_url=NOWHERE)])


def drift_names(found: object) -> set[tuple[str, str, str]]:
    return {(d.kind, d.name, d.change) for d in found.differences.data}  # type: ignore[attr-defined]


async def test_a_second_check_with_the_same_history_reads_the_kept_schema_and_never_replays(
    pg18: LocalPostgres, tmp_path: Path
) -> None:
    url, folder = await drifted_target(pg18, tmp_path)
    db = Databases([Environment(name=ENV, url=url)])
    try:
        first = await detect_drift(db, ENV, str(folder), shadow=pg18, state_dir=tmp_path / "state", project=tmp_path)
    finally:
        await db.close()
    assert first.drift_path == "replay" and first.state == "drift"
    state_copy = kept_files(tmp_path / "state" / "expected")
    project_copy = kept_files(tmp_path / ".pgshift" / "expected")
    assert len(state_copy) == 1 and len(project_copy) == 1
    assert state_copy[0].stat().st_mode & 0o077 == 0  # the state copy is private

    # A fresh CI runner: an empty state directory, the project's copy committed; no scratch server reachable.
    db = without_replay(url)
    try:
        cold = await detect_drift(db, ENV, str(folder), state_dir=tmp_path / "runner", project=tmp_path)
        warm = await detect_drift(db, ENV, str(folder), state_dir=tmp_path / "state", project=tmp_path, refresh=True)
        fast = await detect_drift(db, ENV, str(folder), state_dir=tmp_path / "state", project=tmp_path)
    finally:
        await db.close()
    for found, path in ((cold, "kept-expected"), (warm, "kept-expected"), (fast, "fingerprint")):
        assert found.state == "drift" and found.drift_path == path, found.error
        assert drift_names(found) == drift_names(first) == {("column", "public.account.nickname", "added")}
    assert cold.expected_note is not None and str(project_copy[0]) in cold.expected_note
    assert warm.expected_note is not None and str(state_copy[0]) in warm.expected_note
    assert "replay" not in cold.timings_ms and "replay" not in warm.timings_ms
    await drop_database(pg18, url)


async def test_a_forged_state_copy_and_a_corrupted_project_copy_are_refused_and_the_history_is_replayed(
    pg18: LocalPostgres, tmp_path: Path
) -> None:
    url, folder = await drifted_target(pg18, tmp_path)
    db = Databases([Environment(name=ENV, url=url)])
    try:
        await detect_drift(db, ENV, str(folder), shadow=pg18, state_dir=tmp_path / "state", project=tmp_path)
        (state_copy,) = kept_files(tmp_path / "state" / "expected")
        (project_copy,) = kept_files(tmp_path / ".pgshift" / "expected")
        # Someone without the MAC key rewrites the state copy consistently (digest recomputed), so that the
        # expected schema lacks `post` (it would read as added by hand); the project copy is corrupted.
        forged(state_copy, "post", fix_digest=True)
        forged(project_copy, "post", fix_digest=False)
        project_bytes = project_copy.read_bytes()
        again = await detect_drift(
            db, ENV, str(folder), shadow=pg18, state_dir=tmp_path / "state", project=tmp_path, refresh=True
        )
    finally:
        await db.close()
    assert again.drift_path == "replay"
    assert drift_names(again) == {("column", "public.account.nickname", "added")}  # `post` was not taken as drift
    assert again.expected_note is not None and "integrity" in again.expected_note and "digest" in again.expected_note
    # The state copy was replaced by the replay's (its MAC holds again); the project copy is never overwritten.
    store = ExpectedStore(tmp_path / "state")
    (key,) = [p.name.removesuffix(".json.gz") for p in kept_files(tmp_path / "state" / "expected")]
    found = store.find(key)
    assert found.source == "state" and found.schema is not None and not found.refused
    assert any(t.name == "post" for t in found.schema.tables)
    assert project_copy.read_bytes() == project_bytes
    await drop_database(pg18, url)


def test_a_changed_migration_file_or_target_changes_the_key(tmp_path: Path) -> None:
    folder = write_prisma(tmp_path)
    facts = TargetFacts(18, (TargetExtension("plpgsql", "pg_catalog", "1.0"),), ("app", "postgres"), ("public",))
    key = chain_key(read_migrations(folder).migrations, kind="prisma", supabase=False, facts=facts)
    assert key == chain_key(read_migrations(folder).migrations, kind="prisma", supabase=False, facts=facts)
    first = next(iter(PRISMA_CHAIN))
    (folder / first / "migration.sql").write_text(PRISMA_CHAIN[first] + "-- reviewed\n")
    edited = chain_key(read_migrations(folder).migrations, kind="prisma", supabase=False, facts=facts)
    assert edited != key
    migrations = read_migrations(folder).migrations
    others = {
        chain_key(migrations[:1], kind="prisma", supabase=False, facts=facts),
        chain_key(migrations, kind="prisma", supabase=True, facts=facts),
        chain_key(migrations, kind="prisma", supabase=False, facts=replace(facts, major=15)),
        chain_key(migrations, kind="prisma", supabase=False, facts=replace(facts, extensions=())),
        chain_key(migrations, kind="prisma", supabase=False, facts=replace(facts, roles=("app",))),
        chain_key(migrations, kind="prisma", supabase=False, facts=replace(facts, search_path=("app",))),
    }
    assert edited not in others and len(others) == 6


async def test_a_kept_schema_reads_back_equal_with_the_same_fingerprint(pg: LocalPostgres, tmp_path: Path) -> None:
    url = await create_database(pg, "kept")
    try:
        await execute(
            url,
            "CREATE TYPE mood AS ENUM ('ok', 'sad'); CREATE SEQUENCE s START 5;"
            "CREATE TABLE t (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, m mood DEFAULT 'ok', n int "
            "DEFAULT nextval('s') CHECK (n > 0)) PARTITION BY RANGE (id);"
            "CREATE TABLE t1 PARTITION OF t FOR VALUES FROM (0) TO (10);"
            "CREATE VIEW v AS SELECT id FROM t; CREATE INDEX t_m ON t (m); COMMENT ON TABLE t IS 'c';"
            "CREATE RULE r AS ON INSERT TO v DO INSTEAD NOTHING; ALTER TABLE t ENABLE ROW LEVEL SECURITY;"
            "CREATE POLICY p ON t USING (n > 1); CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql AS 'SELECT a';",
        )
        conn = await asyncpg.connect(url)
        try:
            schema = await introspect(conn, with_dependencies=True)
        finally:
            await conn.close()
    finally:
        await drop_database(pg, url)
    back = expected_store.load(expected_store.dump(schema))
    assert back == schema and back.fingerprint() == schema.fingerprint()
    assert back.uncompared == schema.uncompared and back.uncompared  # the rule: a field left out of `==`
    assert (back.server_version_num, back.supabase, back.included_schemas) == (
        schema.server_version_num,
        schema.supabase,
        schema.included_schemas,
    )
    assert back.available_extensions == schema.available_extensions
    assert back.default_extensions == schema.default_extensions
    store = ExpectedStore(tmp_path / "state", tmp_path)
    store.keep("k" * 64, schema)
    assert store.find("k" * 64).schema == schema


@pytest.mark.parametrize("planted", ["file", "folder"])
def test_a_link_planted_where_the_project_copy_goes_is_never_followed(tmp_path: Path, planted: str) -> None:
    from pgshift.tools.model import Schema

    outside = tmp_path / "outside"
    outside.mkdir()
    project = tmp_path / "project"
    (project / ".pgshift").mkdir(parents=True)
    key = "a" * 64
    if planted == "folder":
        (project / ".pgshift" / "expected").symlink_to(outside)
    else:
        (project / ".pgshift" / "expected").mkdir()
        (project / ".pgshift" / "expected" / f"{key}.json.gz").symlink_to(outside / "victim")
    notes = ExpectedStore(tmp_path / "state", project).keep(key, Schema())
    assert list(outside.iterdir()) == []
    assert any("not kept in the project" in n for n in notes) or planted == "file"


def test_only_the_newest_kept_copies_stay_and_nothing_else_in_the_folder_is_removed(tmp_path: Path) -> None:
    from pgshift.tools.model import Schema

    project = tmp_path / "project"
    folder = project / ".pgshift" / "expected"
    folder.mkdir(parents=True)
    (folder / "README.md").write_text("ours, not pgshift's\n")
    store = ExpectedStore(tmp_path / "state", project)
    keys = [f"{i:064x}" for i in range(expected_store.KEEP_IN_PROJECT + 2)]
    for age, key in enumerate(keys):
        store.keep(key, Schema())
        stamp = 1_000_000 + age  # strictly increasing modification times, whatever the clock's resolution
        os.utime(folder / f"{key}.json.gz", (stamp, stamp))
        os.utime(tmp_path / "state" / "expected" / f"{key}.json.gz", (stamp, stamp))
    store.keep("f" * 64, Schema())
    left = sorted(p.name for p in folder.iterdir())
    newest = [f"{k}.json.gz" for k in [*keys, "f" * 64][-expected_store.KEEP_IN_PROJECT :]]
    assert left == sorted(["README.md", *newest])
    assert len(kept_files(tmp_path / "state" / "expected")) == len(keys) + 1  # under the state directory's count


async def test_status_names_the_drift_path_it_took_and_skips_the_repair_plans(
    pg18: LocalPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pgshift.tools.watch.status import _drift_text, named_drift

    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))
    url, folder = await drifted_target(pg18, tmp_path)
    db = Databases([Environment(name=ENV, url=url, shadow_url=pg18.url())])
    try:
        first = await named_drift(db, ENV, str(folder))
        again = await named_drift(db, ENV, str(folder))
        planned = await detect_drift(db, ENV, str(folder))  # a cached verdict without plans does not answer this
    finally:
        await db.close()
    assert (first.state, first.drift_path, first.objects) == ("drift", "replay", 1)
    assert (again.state, again.drift_path) == ("drift", "fingerprint")
    assert _drift_text(first).endswith("(replay)") and _drift_text(again).endswith("(fingerprint)")
    assert planned.drift_path == "kept-expected" and planned.adopt is not None and planned.revert is not None
    await drop_database(pg18, url)
