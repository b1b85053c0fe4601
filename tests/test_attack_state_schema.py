"""Attack: a role with nothing but CREATE on the database squats pgshift's schema before pgshift does.

pgshift must then refuse to read or write `pgshift` at all (its ledger, snapshots and kept data) and say whose it is
and how to fix it; nothing is written into the squatter's tables, and the migration does not run. A schema that is
pgshift's but that another role may write is refused the same way. Judged on the database, on a connection of our
own, on PostgreSQL 15 and 18.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from support_apply import run_sql, target

from pgshift.tools.apply import apply_migration
from pgshift.tools.approval import ApprovalStore
from pgshift.tools.errors import NotAllowed
from pgshift.tools.ledger import read_history
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.undo.snapshots import list_snapshots, snapshot_schema
from pgshift.tools.watch.status import default_providers, gather_status

SNAPSHOTS_LOOKALIKE = """
CREATE SCHEMA pgshift;
CREATE TABLE pgshift.snapshots (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, label text, fingerprint text NOT NULL, ddl text,
    ddl_sha256 text NOT NULL, server_version text NOT NULL, precedes_version text, precedes_name text,
    taken_by text NOT NULL DEFAULT current_user, taken_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    environment text, chunks bytea[], ddl_bytes bigint, mac text);
CREATE TABLE pgshift.migrations (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, version text, name text,
    source text, checksum text, statements text[], applied_by text DEFAULT current_user, client text,
    started_at timestamptz, finished_at timestamptz DEFAULT clock_timestamp(), duration_ms integer, outcome text,
    error text);
GRANT ALL ON SCHEMA pgshift TO PUBLIC;
GRANT ALL ON ALL TABLES IN SCHEMA pgshift TO PUBLIC;
"""


async def _fetch(url: str, query: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()


@pytest.fixture
async def squatter(pg: LocalPostgres, fresh_db: str) -> AsyncIterator[tuple[str, str]]:
    """A login role with only CREATE on `fresh_db` (and its URL there)."""
    role = f"eve_{secrets.token_hex(4)}"
    database = fresh_db.rsplit("/", 1)[1]
    await run_sql(
        fresh_db,
        f"CREATE ROLE {role} LOGIN PASSWORD 'eve-pass'; GRANT CREATE ON DATABASE \"{database}\" TO {role}",
    )
    yield role, pg.url(database, user=role, password="eve-pass")
    await run_sql(fresh_db, f'DROP SCHEMA IF EXISTS pgshift CASCADE; REVOKE ALL ON DATABASE "{database}" FROM {role}')
    await run_sql(fresh_db, f"DROP OWNED BY {role}; DROP ROLE {role}")


async def test_a_squatted_pgshift_schema_is_refused_and_nothing_is_written_into_it(
    fresh_db: str, squatter: tuple[str, str]
) -> None:
    role, eve_url = squatter
    await run_sql(eve_url, SNAPSHOTS_LOOKALIKE)
    db = target(fresh_db)
    try:
        with pytest.raises(NotAllowed) as refused:
            await apply_migration(db, "target", "t", sql="CREATE TABLE t (id int PRIMARY KEY);", version="1")
        with pytest.raises(NotAllowed):
            await snapshot_schema(db, "target", label="after squat")
        with pytest.raises(NotAllowed):  # a read-only tool reports it (a tool error), never reads the squatter's rows
            await list_snapshots(db, "target")
    finally:
        await db.close()
    message = str(refused.value)
    assert f"owned by role {role}" in message and "not by postgres" in message
    assert "ALTER SCHEMA pgshift OWNER TO postgres" in message and "Nothing was changed" in message
    assert await _fetch(eve_url, "SELECT count(*) FROM pgshift.snapshots") == [(0,)]
    assert await _fetch(eve_url, "SELECT count(*) FROM pgshift.migrations") == [(0,)]
    assert await _fetch(fresh_db, "SELECT to_regclass('public.t') IS NULL") == [(True,)]  # the migration never ran


async def test_a_squatted_schema_planted_with_a_snapshot_is_never_loaded(
    fresh_db: str, squatter: tuple[str, str]
) -> None:
    _, eve_url = squatter
    await run_sql(eve_url, SNAPSHOTS_LOOKALIKE)
    await run_sql(
        eve_url,
        "INSERT INTO pgshift.snapshots (fingerprint, ddl, ddl_sha256, server_version, precedes_version) "
        "VALUES ('f', 'CREATE TABLE planted (id int);', 'x', '18', '1')",
    )
    conn = await asyncpg.connect(fresh_db)
    try:
        with pytest.raises(NotAllowed, match="will not read or write it"):
            await read_history(conn)
    finally:
        await conn.close()
    assert await _fetch(fresh_db, "SELECT to_regclass('public.planted') IS NULL") == [(True,)]


async def test_a_pgshift_table_that_grants_insert_to_public_is_refused(fresh_db: str) -> None:
    db = target(fresh_db)
    try:
        await apply_migration(db, "target", "t", sql="CREATE TABLE t (id int PRIMARY KEY);", version="1")
        await run_sql(fresh_db, "GRANT INSERT ON pgshift.snapshots TO PUBLIC")
        before = await _fetch(fresh_db, "SELECT count(*) FROM pgshift.snapshots")
        with pytest.raises(NotAllowed) as refused:
            await apply_migration(db, "target", "u", sql="CREATE TABLE u (id int PRIMARY KEY);", version="2")
        with pytest.raises(NotAllowed):
            await list_snapshots(db, "target")
    finally:
        await db.close()
    assert "PUBLIC may INSERT snapshots" in str(refused.value)
    assert await _fetch(fresh_db, "SELECT count(*) FROM pgshift.snapshots") == before
    assert await _fetch(fresh_db, "SELECT to_regclass('public.u') IS NULL") == [(True,)]


async def test_a_role_allowed_to_create_in_pgshifts_schema_is_refused(fresh_db: str, squatter: tuple[str, str]) -> None:
    role, _ = squatter
    db = target(fresh_db)
    try:
        await apply_migration(db, "target", "t", sql="CREATE TABLE t (id int PRIMARY KEY);", version="1")
        await run_sql(fresh_db, f"GRANT CREATE ON SCHEMA pgshift TO {role}")
        with pytest.raises(NotAllowed, match=f"{role} may create objects in schema pgshift"):
            await snapshot_schema(db, "target")
    finally:
        await db.close()
    assert await _fetch(fresh_db, "SELECT count(*) FROM pgshift.snapshots") == [(1,)]


async def test_pgshifts_own_schema_grants_no_other_role_a_write(fresh_db: str) -> None:
    db = target(fresh_db)
    try:
        await apply_migration(db, "target", "t", sql="CREATE TABLE t (id int PRIMARY KEY);", version="1")
        await apply_migration(db, "target", "drop", sql="DROP TABLE t;", version="2")
    finally:
        await db.close()
    writers = await _fetch(
        fresh_db,
        """SELECT c.relname, a.grantee::regrole::text, a.privilege_type
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           CROSS JOIN LATERAL aclexplode(c.relacl) a
           WHERE n.nspname = 'pgshift' AND a.grantee <> c.relowner""",
    )
    owners = await _fetch(
        fresh_db,
        """SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'pgshift'""",
    )
    assert writers == []
    assert owners == [("postgres",)]


async def test_default_privileges_for_every_schema_give_no_role_a_write_on_pgshifts_tables_or_sequences(
    fresh_db: str,
) -> None:
    role = f"api_{secrets.token_hex(4)}"
    await run_sql(
        fresh_db,
        f"CREATE ROLE {role} NOLOGIN; ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO {role};"
        f" ALTER DEFAULT PRIVILEGES GRANT ALL ON SEQUENCES TO {role}",
    )
    db = target(fresh_db)
    try:
        await apply_migration(db, "target", "t", sql="CREATE TABLE t (id int PRIMARY KEY, v text);", version="1")
        await apply_migration(db, "target", "drop", sql="ALTER TABLE t DROP COLUMN v;", version="2")
        await snapshot_schema(db, "target", label="after")  # pgshift keeps using its own schema
    finally:
        await db.close()
    try:
        granted = await _fetch(
            fresh_db,
            """SELECT c.relname, a.privilege_type FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               CROSS JOIN LATERAL aclexplode(c.relacl) a
               WHERE n.nspname = 'pgshift' AND a.grantee <> c.relowner""",
        )
        kinds = {
            k
            for (k,) in await _fetch(
                fresh_db,
                "SELECT DISTINCT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'pgshift'",
            )
        }
    finally:
        await run_sql(fresh_db, f"DROP SCHEMA IF EXISTS pgshift CASCADE; DROP OWNED BY {role}; DROP ROLE {role}")
    assert granted == []
    assert "S" in kinds  # the identity sequences were there to be sealed


async def test_status_still_answers_on_a_squatted_schema_and_says_whose_it_is(
    fresh_db: str, squatter: tuple[str, str], tmp_path: Path
) -> None:
    role, eve_url = squatter
    await run_sql(eve_url, SNAPSHOTS_LOOKALIKE)
    folder = tmp_path / "supabase" / "migrations"
    folder.mkdir(parents=True)
    (folder / "20240101000000_t.sql").write_text("CREATE TABLE t (id int PRIMARY KEY);\n")
    db = target(fresh_db)
    try:
        status = await gather_status(
            db, str(folder), providers=default_providers(), approvals=ApprovalStore(tmp_path / "approvals")
        )
    finally:
        await db.close()
    said = status.model_dump_json()
    assert f"owned by role {role}" in said
    assert await _fetch(eve_url, "SELECT count(*) FROM pgshift.snapshots") == [(0,)]


async def test_a_reading_role_trusts_another_owner_only_when_its_own_settings_name_it(
    pg: LocalPostgres, fresh_db: str
) -> None:
    db = target(fresh_db)
    try:
        await apply_migration(db, "target", "t", sql="CREATE TABLE t (id int PRIMARY KEY);", version="1")
    finally:
        await db.close()
    role = f"ci_{secrets.token_hex(4)}"
    database = fresh_db.rsplit("/", 1)[1]
    await run_sql(
        fresh_db,
        f"CREATE ROLE {role} LOGIN PASSWORD 'ci-pass'; GRANT USAGE ON SCHEMA pgshift TO {role}; "
        f"GRANT SELECT ON ALL TABLES IN SCHEMA pgshift TO {role}; GRANT USAGE ON SCHEMA supabase_migrations TO {role}; "
        f"GRANT SELECT ON ALL TABLES IN SCHEMA supabase_migrations TO {role}",
    )
    try:
        conn = await asyncpg.connect(pg.url(database, user=role, password="ci-pass"))
        try:
            with pytest.raises(NotAllowed, match="owned by role postgres"):
                await read_history(conn)
        finally:
            await conn.close()
        await run_sql(fresh_db, f"ALTER ROLE {role} SET pgshift.state_owner = 'postgres'")
        conn = await asyncpg.connect(pg.url(database, user=role, password="ci-pass"))
        try:
            history = await read_history(conn)
        finally:
            await conn.close()
    finally:
        await run_sql(fresh_db, f"DROP OWNED BY {role}; DROP ROLE {role}")
    assert [r.version for r in history.ledger] == ["1"]
