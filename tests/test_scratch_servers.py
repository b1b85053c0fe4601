"""Scratch servers match the target (issue 17): one selection for snapshot verification, rollback's shadow, drift's
replay and the dry run's shadow — the caller's server, else the environment's shadow_url, else a local install of the
target's major, else the embedded 18 — and what the chosen server cannot reproduce is said as fidelity lost, never
as a corrupted snapshot."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from support_apply import new_database, remove_database, run_sql

from pgshift.server.config import load_environments
from pgshift.tools import localpg
from pgshift.tools.databases import Databases, Environment
from pgshift.tools.errors import DatabaseError
from pgshift.tools.localpg import EMBEDDED_MAJOR, LocalPostgres, bin_dir_for_major
from pgshift.tools.migrations.dryrun import Runnable, dry_run_on_shadow
from pgshift.tools.scratch import sandboxed_database, scratch_server
from pgshift.tools.undo import snapshots as snapshots_module
from pgshift.tools.undo.rollback import rollback
from pgshift.tools.undo.snapshots import snapshot_schema, verify_snapshot

CRYPTO = """
CREATE EXTENSION pgcrypto;
CREATE TABLE token (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), hash bytea DEFAULT digest('x', 'sha256'));
"""
NOT_CORRUPT = ("corrupt", "damaged", "altered")


@pytest.fixture
async def crypto15(pg15: LocalPostgres) -> AsyncIterator[str]:
    """A PostgreSQL 15 target with pgcrypto, as every hosted Supabase project has."""
    url = await new_database(pg15, "scratch")
    await run_sql(url, CRYPTO)
    yield url
    await remove_database(pg15, url)


def _db(url: str, shadow_url: str | None = None) -> Databases:
    return Databases([Environment(name="target", url=url, shadow_url=shadow_url)])


async def _version(box_url: str) -> int:
    conn = await asyncpg.connect(box_url)
    try:
        return int(await conn.fetchval("SELECT current_setting('server_version_num')::int"))
    finally:
        await conn.close()


def test_pgshift_pg_major_bin_names_the_install_of_that_major(tmp_path: Path) -> None:
    (tmp_path / "postgres").write_text("")
    assert bin_dir_for_major(16, environ={"PGSHIFT_PG16_BIN": str(tmp_path)}) == tmp_path
    assert bin_dir_for_major(16, environ={"PGSHIFT_PG16_BIN": str(tmp_path / "nowhere")}) in (
        None,
        Path("/usr/lib/postgresql/16/bin"),
    )


async def test_a_15_target_gets_a_local_15_scratch_server_with_its_extensions(crypto15: str) -> None:
    conn = await asyncpg.connect(crypto15)
    try:
        async with sandboxed_database(conn, "scratch") as box:  # nothing given: chosen from the target's catalog
            version = await _version(box.url)
    finally:
        await conn.close()
    assert box.server.kind == "local" and box.server.major == 15 and version // 10000 == 15
    assert box.fidelity_lost == ()


async def test_without_a_local_install_of_the_targets_major_the_embedded_18_is_the_fallback_and_says_so(
    crypto15: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(localpg, "DEBIAN_ROOT", Path("/nonexistent"))
    monkeypatch.delenv("PGSHIFT_PG15_BIN", raising=False)
    conn = await asyncpg.connect(crypto15)
    try:
        async with sandboxed_database(conn, "scratch") as box:
            version = await _version(box.url)
    finally:
        await conn.close()
    assert box.server.kind == "embedded" and version // 10000 == EMBEDDED_MAJOR
    said = " ".join(box.fidelity_lost)
    assert "PostgreSQL 18 (embedded)" in said and "pgcrypto" in said and "major version 15" in said
    assert "shadow_url" in said and "PGSHIFT_PG15_BIN" in said  # what to do about it


async def test_a_configured_shadow_url_is_the_scratch_server(pg15: LocalPostgres, pg18: LocalPostgres) -> None:
    url = await new_database(pg18, "scratch")
    try:
        conn = await asyncpg.connect(url)
        try:
            async with scratch_server(18, shadow_url=pg15.url()) as server:
                chosen = (server.kind, server.major)
            async with sandboxed_database(conn, "scratch", shadow_url=pg15.url()) as box:
                version = await _version(box.url)
                lost = box.fidelity_lost
        finally:
            await conn.close()
    finally:
        await remove_database(pg18, url)
    assert chosen == ("shadow_url", 15) and version // 10000 == 15
    assert any("not the target's major version 18" in x for x in lost)


def test_shadow_url_is_read_from_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "pgshift.toml").write_text(
        '[environments.production]\nurl_env = "PROD"\nshadow_url_env = "SHADOW"\n'
        '[environments.local]\nurl = "postgresql://a@localhost/app"\n'
    )
    envs = {
        e.name: e
        for e in load_environments(
            tmp_path, {"PROD": "postgresql://p:pw@db/postgres", "SHADOW": "postgresql://s:spw@shadow/postgres"}
        )
    }
    assert envs["production"].shadow_url == "postgresql://s:spw@shadow/postgres"
    assert envs["local"].shadow_url is None
    assert "spw" in Databases(list(envs.values())).secrets()  # scrubbed from every answer like the target's


async def test_a_missing_extension_is_fidelity_lost_and_never_called_corrupted_while_a_matching_server_verifies(
    crypto15: str, pg18: LocalPostgres, pg15: LocalPostgres
) -> None:
    db = _db(crypto15)
    try:
        taken = await snapshot_schema(db, "target")
        snapshot_id = taken.snapshot.data.id
        on_18 = await verify_snapshot(db, "target", snapshot_id, shadow=pg18)
        with pytest.raises(DatabaseError) as refused:
            await rollback(db, "target", snapshot=snapshot_id, dry_run=True, shadow=pg18)
        on_15 = await verify_snapshot(db, "target", snapshot_id, shadow=pg15)
        chosen = await verify_snapshot(db, "target", snapshot_id)  # a local 15 started for it
    finally:
        await db.close()
    assert not on_18.verified and "pgcrypto" in " ".join(on_18.fidelity_lost)
    assert "cannot be reproduced" in on_18.message and "says nothing against the snapshot" in on_18.message
    assert not any(word in on_18.message for word in NOT_CORRUPT)
    assert "cannot be reproduced" in str(refused.value) and "pgcrypto" in str(refused.value)
    assert not any(word in str(refused.value) for word in NOT_CORRUPT)
    assert on_15.verified and on_15.fidelity_lost == [], on_15.message
    assert chosen.verified and "local" in chosen.scratch_server, chosen.message


async def test_a_snapshot_changed_after_it_was_recorded_is_reported_as_damaged_on_a_matching_server(
    crypto15: str, pg15: LocalPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = snapshots_module.read_snapshot

    async def without_the_table(conn: asyncpg.Connection, snapshot_id: int) -> tuple[object, str]:
        row, ddl = await real(conn, snapshot_id)
        return row, ddl.replace("CREATE TABLE public.token", "CREATE TABLE public.token_elsewhere")

    reader: Callable[..., Awaitable[object]] = without_the_table
    db = _db(crypto15)
    try:
        taken = await snapshot_schema(db, "target")
        monkeypatch.setattr(snapshots_module, "read_snapshot", reader)
        result = await verify_snapshot(db, "target", taken.snapshot.data.id, shadow=pg15)
    finally:
        await db.close()
    assert not result.verified and result.fidelity_lost == []
    assert "damaged or altered" in result.message and "do not roll back" in result.message


async def test_the_dry_runs_shadow_says_what_fidelity_it_lost(crypto15: str, pg18: LocalPostgres) -> None:
    conn = await asyncpg.connect(crypto15)
    try:
        result = await dry_run_on_shadow(
            conn, crypto15, [Runnable(1, 1, "CREATE INDEX CONCURRENTLY token_hash ON token (hash)", False)], shadow=pg18
        )
    finally:
        await conn.close()
    assert any("lacks extension" in n and "pgcrypto" in n for n in result.notes), result.notes


@pytest.fixture
async def shadow_admin(pg: LocalPostgres) -> AsyncIterator[str]:
    """A shadow URL whose role may create databases and roles but is no superuser (as Supabase's `postgres`)."""
    name, password = f"shadow_admin_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    await run_sql(pg.url(), f"CREATE ROLE {name} LOGIN CREATEDB CREATEROLE PASSWORD '{password}'")
    yield pg.url(user=name, password=password)
    await run_sql(pg.url(), f"DROP OWNED BY {name}; DROP ROLE {name}")


async def test_a_shadow_url_whose_role_is_no_superuser_verifies_a_snapshot(
    pg: LocalPostgres, shadow_admin: str
) -> None:
    url = await new_database(pg, "scratch")
    try:
        await run_sql(url, "CREATE EXTENSION citext; CREATE TABLE person (id int PRIMARY KEY, email citext)")
        db = _db(url, shadow_url=shadow_admin)
        try:
            taken = await snapshot_schema(db, "target")
            result = await verify_snapshot(db, "target", taken.snapshot.data.id)
        finally:
            await db.close()
        left = await _fetch_roles(pg)
    finally:
        await remove_database(pg, url)
    assert result.verified and "shadow_url" in result.scratch_server, result.message
    assert left == []  # the sandboxed role and its database are gone


async def _fetch_roles(pg: LocalPostgres) -> list[str]:
    conn = await asyncpg.connect(pg.url())
    try:
        return [r[0] for r in await conn.fetch("SELECT rolname FROM pg_roles WHERE rolname LIKE 'pgshift_snapshot_%'")]
    finally:
        await conn.close()


async def test_default_privileges_for_a_role_that_is_the_given_servers_admin_are_reproduced_on_a_server_of_pgshifts(
    pg15: LocalPostgres,
) -> None:
    url = await new_database(pg15, "scratch")
    try:
        await run_sql(
            url,
            "CREATE TABLE note (id int); "
            "ALTER DEFAULT PRIVILEGES FOR ROLE postgres REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC",
        )
        db = _db(url)
        try:
            taken = await snapshot_schema(db, "target")
            result = await verify_snapshot(db, "target", taken.snapshot.data.id, shadow=pg15)
        finally:
            await db.close()
    finally:
        await remove_database(pg15, url)
    # `postgres` is the given server's superuser: the sandboxed role may never act for it there, so a server of
    # pgshift's own (admin `pgshift_admin`) is started instead, where `postgres` is a plain role of the copy.
    assert result.verified and "(local," in result.scratch_server, result.message
