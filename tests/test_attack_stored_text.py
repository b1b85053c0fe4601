"""Attacks on the text pgshift loads into scratch databases (issue 16, finding 1): a snapshot's DDL, a dump.

Stored text is loaded over the protocol as a role created without superuser, file or program rights; a psql
meta-command refuses the whole load. Each attack is judged on the file system (a marker file a successful attack
would create in /tmp, writable by everyone, so the server's user could create it too) or on the scratch database
itself (what the loading role was while it ran), never on the tool's answer alone.

The planted snapshots pass through the real loader: `read_snapshot` is wrapped to hand back hostile text after the
real read, as a snapshot signed by pgshift would be if the dump it stored had been crafted (pg_dump before
15.14/16.10/17.6 let a hostile server inject meta-commands, CVE-2025-8714). The integrity MAC, which refuses a row
edited in the database, is tested with the store.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from support_apply import new_database, prisma_folder, remove_database, run_sql, target

from pgshift.tools.errors import NotAllowed, PgshiftError
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.migrations.folder import read_migrations
from pgshift.tools.scratch import Sandboxed, role_is_powerless, sandboxed_database
from pgshift.tools.script_loader import MetaCommandRefused, load_script
from pgshift.tools.undo import rollback as rollback_module
from pgshift.tools.undo import snapshots as snapshots_module
from pgshift.tools.undo.rollback import rollback
from pgshift.tools.undo.shadow import load_ddl
from pgshift.tools.undo.snapshots import snapshot_schema, verify_snapshot
from pgshift.tools.watch import drift as drift_module
from pgshift.tools.watch.drift import ShadowStart, shadow_schema, since_last_apply

BASE = "CREATE TABLE item (id int PRIMARY KEY, label text);\n"

# What the loading role is, recorded by the text itself into a table read back afterwards.
PROBE = """
CREATE TABLE IF NOT EXISTS probe (step text, su text, strong boolean, files boolean, who text);
INSERT INTO probe SELECT {step!r}, pg_catalog.current_setting('is_superuser'),
  (SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls
   FROM pg_catalog.pg_roles WHERE rolname = current_user),
  pg_catalog.pg_has_role(current_user, 'pg_execute_server_program', 'USAGE')
  OR pg_catalog.pg_has_role(current_user, 'pg_read_server_files', 'USAGE')
  OR pg_catalog.pg_has_role(current_user, 'pg_write_server_files', 'USAGE'),
  current_user;
"""


@pytest.fixture
def marker() -> Iterator[Path]:
    """A path in /tmp that a successful attack would create; removed afterwards."""
    path = Path("/tmp") / f"pgshift-attack-{secrets.token_hex(8)}"
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture
async def url(pg: LocalPostgres) -> AsyncIterator[str]:
    found = await new_database(pg, "attack")
    await run_sql(found, BASE)
    yield found
    await remove_database(pg, found)


def absent(*paths: Path) -> bool:
    """Judged on the file system: none of the files a successful attack would have created exists."""
    return not any(os.path.lexists(p) for p in paths)


def meta_text(marker: Path) -> str:
    return f"CREATE TABLE before_it (id int);\n\\! touch {marker}\nCREATE TABLE after_it (id int);\n"


def power_text(marker: Path, copy_file: Path) -> str:
    return "\n".join(
        [
            PROBE.format(step="first"),
            f"COPY (SELECT 1) TO PROGRAM 'touch {marker}';",
            f"COPY (SELECT 1) TO '{copy_file}';",
            "CREATE EXTENSION IF NOT EXISTS file_fdw;",
            "ALTER ROLE CURRENT_USER SUPERUSER;",
            "GRANT pg_execute_server_program TO CURRENT_USER;",
            "CREATE FUNCTION evil() RETURNS int LANGUAGE c AS '$libdir/file_fdw', 'file_fdw_handler';",
            f"DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {marker}'''; END $$;",
            PROBE.format(step="last"),
        ]
    )


async def _fetch(url: str, query: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()


async def test_the_loader_refuses_a_text_holding_a_backslash_command_and_runs_none_of_it(
    url: str, pg: LocalPostgres, marker: Path
) -> None:
    conn = await asyncpg.connect(url)
    try:
        async with sandboxed_database(conn, "attack", pg) as box:
            loading = await box.connect()
            try:
                with pytest.raises(MetaCommandRefused, match=r"\\!.*line 2") as refused:
                    await load_script(loading, meta_text(marker))
            finally:
                await loading.close()
            tables = await _fetch(box.admin_url, "SELECT relname FROM pg_class WHERE relname LIKE '%_it'")
    finally:
        await conn.close()
    assert absent(marker)
    assert tables == []  # not even the statement before it ran
    assert "nothing ran" in str(refused.value)


async def test_pg_dumps_restrict_pair_is_skipped_and_any_other_restrict_line_refuses(
    url: str, pg: LocalPostgres
) -> None:
    dump = "--\n-- dump\n--\n\n\\restrict k3Y\n\nCREATE TABLE ok (id int);\n\n\\unrestrict k3Y\n\n"
    conn = await asyncpg.connect(url)
    try:
        async with sandboxed_database(conn, "attack", pg) as box:
            loading = await box.connect()
            try:
                report = await load_script(loading, dump)
                with pytest.raises(MetaCommandRefused, match="unrestrict"):
                    await load_script(loading, "CREATE TABLE a (id int);\n\\unrestrict k3Y\nCREATE TABLE b (id int);")
            finally:
                await loading.close()
            tables = await _fetch(box.admin_url, "SELECT relname FROM pg_class WHERE relname IN ('ok', 'a', 'b')")
    finally:
        await conn.close()
    assert report.errors == () and tables == [("ok",)]


async def test_stored_text_runs_as_a_role_that_never_holds_superuser_file_or_program_rights(
    url: str, pg: LocalPostgres, marker: Path
) -> None:
    copy_file = marker.with_name(marker.name + "-copy")
    conn = await asyncpg.connect(url)
    try:
        async with sandboxed_database(conn, "attack", pg) as box:
            powerless_before = await role_is_powerless(box)
            loading = await box.connect()
            try:
                report = await load_script(loading, power_text(marker, copy_file))
            finally:
                await loading.close()
            powerless_after = await role_is_powerless(box)
            probes = await _fetch(box.admin_url, "SELECT step, su, strong, files, who FROM probe ORDER BY step")
            extensions = await _fetch(box.admin_url, "SELECT extname FROM pg_extension WHERE extname = 'file_fdw'")
            functions = await _fetch(box.admin_url, "SELECT proname FROM pg_proc WHERE proname = 'evil'")
    finally:
        await conn.close()
    try:
        assert absent(marker, copy_file)
    finally:
        copy_file.unlink(missing_ok=True)
    assert powerless_before and powerless_after
    assert probes == [("first", "off", False, False, box.name), ("last", "off", False, False, box.name)]
    assert extensions == [] and functions == []
    assert report.errors_total == 7  # every attack failed, each reported with its line
    assert all(e.sqlstate == "42501" for e in report.errors if e.sqlstate != "0A000"), report.errors


async def test_a_snapshot_load_creates_only_the_targets_extensions_and_the_text_cannot_add_an_untrusted_one(
    url: str, pg: LocalPostgres, marker: Path
) -> None:
    conn = await asyncpg.connect(url)
    try:
        loaded = await load_ddl(power_text(marker, marker), conn, shadow=pg)
    finally:
        await conn.close()
    assert absent(marker)
    assert "file_fdw" not in {e.name for e in loaded.schema.extensions}
    assert {f.name for f in loaded.schema.functions}.isdisjoint({"evil"})
    assert loaded.fidelity_lost == ()  # a target of the scratch server's own major, with no extension


def _planted(real: Callable[..., Awaitable[tuple[object, str]]], text: str) -> Callable[..., Awaitable[object]]:
    async def read(conn: asyncpg.Connection, snapshot_id: int) -> tuple[object, str]:
        row, ddl = await real(conn, snapshot_id)
        return row, text + ddl

    return read


async def test_a_planted_backslash_command_in_a_snapshot_never_runs_in_verify_rollback_or_drift(
    url: str, pg: LocalPostgres, marker: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = target(url)
    try:
        taken = await snapshot_schema(db, "target")
        snapshot_id = taken.snapshot.data.id
        await run_sql(url, "CREATE TABLE later (id int)")
        hostile = meta_text(marker)
        for module in (snapshots_module, rollback_module, drift_module):
            monkeypatch.setattr(module, "read_snapshot", _planted(module.read_snapshot, hostile))
        with pytest.raises(MetaCommandRefused, match=r"\\!"):
            await verify_snapshot(db, "target", snapshot_id, shadow=pg)
        with pytest.raises(NotAllowed, match=r"\\!"):
            await rollback(db, "target", snapshot=snapshot_id, dry_run=True, shadow=pg)
        folder = read_migrations(prisma_folder(tmp_path, {"0001_init": BASE}))
        since = await since_last_apply(db, "target", folder, "live", compare=True, shadow=pg)
    finally:
        await db.close()
    assert absent(marker)
    assert since.state == "unknown" and since.note is not None and "meta-command" in since.note
    assert await _fetch(url, "SELECT relname FROM pg_class WHERE relname LIKE '%_it'") == []


async def test_drifts_shadow_refuses_a_snapshot_with_a_meta_command_before_creating_anything(
    url: str, pg: LocalPostgres, marker: Path
) -> None:
    conn = await asyncpg.connect(url)
    try:
        with pytest.raises(PgshiftError, match="meta-command"):
            await shadow_schema(
                conn,
                [],
                supabase=False,
                server_version_num=0,
                start=ShadowStart(ddl=meta_text(marker)),
                shadow=pg,
            )
    finally:
        await conn.close()
    assert absent(marker)
    left = await _fetch(pg.url(), "SELECT datname FROM pg_database WHERE datname LIKE 'pgshift_expected_%'")
    assert left == []


async def test_every_sandbox_pgshift_creates_is_a_role_without_rights(url: str, pg: LocalPostgres) -> None:
    conn = await asyncpg.connect(url)
    try:
        async with sandboxed_database(conn, "attack", pg) as box:
            assert isinstance(box, Sandboxed)
            row = await _fetch(
                box.admin_url,
                "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin, "
                "pg_get_userbyid(d.datdba) FROM pg_roles r, pg_database d "
                f"WHERE r.rolname = '{box.name}' AND d.datname = '{box.name}'",
            )
    finally:
        await conn.close()
    assert row == [(False, False, False, False, False, True, box.name)]  # and it owns its database


def test_no_child_process_gets_pgshifts_urls_or_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pg_dump (tools.judge) and initdb (tools.localpg), replaced by scripts that write their environment down."""
    import asyncio

    from pgshift.tools.judge import dump_schema
    from pgshift.tools.localpg import LocalServerError

    secret_url = "postgresql://postgres:prod-secret-pw@db.example.supabase.co:5432/postgres"
    monkeypatch.setenv("SUPABASE_DB_URL", secret_url)
    monkeypatch.setenv("DATABASE_URL", "postgresql://me:local-secret-pw@localhost/app")
    monkeypatch.setenv("PGSHIFT_TEST_TOKEN", "tok-123456789")
    monkeypatch.setenv("SOME_API_KEY", "key-123456789")
    monkeypatch.setenv("PGPASSWORD", "inherited-pw-123")
    root = Path("/tmp") / f"pgshift-fakebin-{secrets.token_hex(6)}"  # reachable by the server's user when root
    try:
        (root / "bin").mkdir(parents=True)
        (root / "share").mkdir()
        out = root / "out"
        out.mkdir()
        os.chmod(root, 0o755)
        os.chmod(root / "bin", 0o755)
        os.chmod(out, 0o777)
        for program in ("pg_dump", "initdb", "pg_ctl", "postgres"):
            script = root / "bin" / program
            script.write_text(f"#!/bin/sh\nenv > {out}/{program}.env\nexit 1\n")
            script.chmod(0o755)
        with pytest.raises(PgshiftError):
            asyncio.run(dump_schema("postgresql://app:the-one-pw@127.0.0.1:1/app", root / "bin"))
        with pytest.raises(LocalServerError):
            LocalPostgres(root / "bin").start()
        seen = {p.name: p.read_text() for p in out.iterdir()}
    finally:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    assert set(seen) == {"pg_dump.env", "initdb.env"}
    for env in seen.values():
        for leaked in ("prod-secret-pw", "local-secret-pw", "tok-123456789", "key-123456789", "inherited-pw-123"):
            assert leaked not in env
        assert "SUPABASE_DB_URL" not in env and "DATABASE_URL" not in env
    assert "PGPASSWORD=the-one-pw" in seen["pg_dump.env"]  # exactly the one connection's password
    assert "PGPASSWORD" not in seen["initdb.env"]
