"""The catalog fingerprint behind drift's fast path, and its cache file.

Each DDL below writes one kind of catalog row the introspection reads (most of them that kind alone: a column
rename touches only pg_attribute, ALTER SEQUENCE only pg_sequence, ADD VALUE only pg_enum); each must change
the fingerprint, and writing data must not. Runs on PostgreSQL 18 and 15 (15 has no not-null constraints).
"""

from __future__ import annotations

import stat
from pathlib import Path

import asyncpg
import pytest

from pgshift.tools.errors import PgshiftError
from pgshift.tools.watch.fingerprint import FINGERPRINTED_CATALOGS, CacheEntry, DriftCache, catalog_fingerprint

# (catalog written, DDL): run in order, each on an autocommit connection.
DDL_BY_CATALOG: tuple[tuple[str, str], ...] = (
    ("pg_namespace", "CREATE SCHEMA s"),
    ("pg_class", "CREATE TABLE s.t (id int, w int)"),
    ("pg_class", "ALTER TABLE s.t RENAME TO t2"),
    ("pg_class", "GRANT SELECT ON s.t2 TO PUBLIC"),
    ("pg_attribute", "ALTER TABLE s.t2 RENAME COLUMN id TO ident"),
    ("pg_attribute", "ALTER TABLE s.t2 ALTER COLUMN ident SET NOT NULL"),
    ("pg_attribute", "ALTER TABLE s.t2 ALTER COLUMN w SET STATISTICS 500"),
    ("pg_attribute", "ALTER TABLE s.t2 ADD COLUMN gone text"),
    ("pg_attribute", "ALTER TABLE s.t2 DROP COLUMN gone"),
    ("pg_attrdef", "ALTER TABLE s.t2 ALTER COLUMN ident SET DEFAULT 1"),
    ("pg_attrdef", "ALTER TABLE s.t2 ALTER COLUMN ident SET DEFAULT 2"),
    ("pg_constraint", "ALTER TABLE s.t2 ADD CONSTRAINT positive CHECK (ident > 0)"),
    ("pg_constraint", "ALTER TABLE s.t2 RENAME CONSTRAINT positive TO pos"),
    ("pg_index", "CREATE INDEX t2_w ON s.t2 (w)"),
    ("pg_index", "ALTER TABLE s.t2 CLUSTER ON t2_w"),
    ("pg_inherits", "CREATE TABLE s.child (ident int NOT NULL, w int, CONSTRAINT pos CHECK (ident > 0))"),
    ("pg_inherits", "ALTER TABLE s.child INHERIT s.t2"),
    ("pg_partitioned_table", "CREATE TABLE s.p (k int) PARTITION BY RANGE (k)"),
    ("pg_sequence", "CREATE SEQUENCE s.q"),
    ("pg_sequence", "ALTER SEQUENCE s.q INCREMENT 5"),
    ("pg_proc", "CREATE FUNCTION s.f(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + b'"),
    ("pg_proc", "CREATE OR REPLACE FUNCTION s.f(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a - b'"),
    ("pg_aggregate", "CREATE AGGREGATE s.total(int) (SFUNC = int4pl, STYPE = int)"),
    ("pg_type", "CREATE TYPE s.comp AS (a int)"),
    ("pg_enum", "CREATE TYPE s.e AS ENUM ('a')"),
    ("pg_enum", "ALTER TYPE s.e ADD VALUE 'b'"),
    ("pg_range", "CREATE TYPE s.r AS RANGE (subtype = int4)"),
    ("pg_collation", 'CREATE COLLATION s.c FROM "C"'),
    ("pg_rewrite", "CREATE VIEW s.v AS SELECT 1 AS one"),
    ("pg_rewrite", "CREATE OR REPLACE VIEW s.v AS SELECT 2 AS one"),
    ("pg_trigger", "CREATE FUNCTION s.tf() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'"),
    ("pg_trigger", "CREATE TRIGGER tr BEFORE INSERT ON s.t2 FOR EACH ROW EXECUTE FUNCTION s.tf()"),
    ("pg_trigger", "ALTER TABLE s.t2 DISABLE TRIGGER tr"),
    ("pg_event_trigger", "CREATE FUNCTION s.etf() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END'"),
    ("pg_event_trigger", "CREATE EVENT TRIGGER et ON ddl_command_end EXECUTE FUNCTION s.etf()"),
    ("pg_event_trigger", "ALTER EVENT TRIGGER et DISABLE"),
    ("pg_policy", "CREATE POLICY own ON s.t2 USING (ident > 0)"),
    ("pg_policy", "ALTER POLICY own ON s.t2 USING (ident > 1)"),
    ("pg_description", "COMMENT ON TABLE s.t2 IS 'people'"),
    ("pg_default_acl", "ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT SELECT ON TABLES TO PUBLIC"),
    ("pg_statistic_ext", "CREATE STATISTICS s.st ON ident, w FROM s.t2"),
    ("pg_publication", "CREATE PUBLICATION pub WITH (publish = 'insert')"),
    ("pg_publication_rel", "ALTER PUBLICATION pub ADD TABLE s.t2"),
    ("pg_foreign_data_wrapper", "CREATE FOREIGN DATA WRAPPER w"),
    ("pg_foreign_server", "CREATE SERVER srv FOREIGN DATA WRAPPER w"),
    ("pg_foreign_table", "CREATE FOREIGN TABLE s.ft (a int) SERVER srv"),
    ("pg_foreign_table", "ALTER FOREIGN TABLE s.ft OPTIONS (ADD note 'x')"),
    ("pg_cast", "CREATE CAST (s.comp AS text) WITH INOUT"),
    ("pg_operator", "CREATE OPERATOR s.=== (FUNCTION = s.f, LEFTARG = int, RIGHTARG = int)"),
    ("pg_class", "DROP TABLE s.child"),
    ("pg_class", "CREATE TABLE s.data (a int PRIMARY KEY, b int)"),
    ("pg_extension", "DROP EXTENSION plpgsql CASCADE"),
    ("pg_extension", "CREATE EXTENSION plpgsql"),
)
# Data, sequences and statistics: the fingerprint must stay.
NOT_DDL = (
    "INSERT INTO s.data SELECT g, g FROM generate_series(1, 500) g",
    "SELECT nextval('s.q')",
    "ANALYZE s.data",
    "UPDATE s.data SET b = b + 1",
    "DELETE FROM s.data WHERE b > 100",
    "VACUUM s.data",
)


async def fingerprint_of(url: str) -> str:
    conn = await asyncpg.connect(url)  # a connection of its own, as the fast path's is
    try:
        return await catalog_fingerprint(conn)
    finally:
        await conn.close()


async def test_every_kind_of_catalog_row_a_ddl_writes_changes_the_fingerprint_and_data_writes_do_not(
    fresh_db: str,
) -> None:
    assert {catalog for catalog, _ in DDL_BY_CATALOG} == set(FINGERPRINTED_CATALOGS)
    conn = await asyncpg.connect(fresh_db)
    try:
        before = await fingerprint_of(fresh_db)
        unchanged = []
        for catalog, ddl in DDL_BY_CATALOG:
            await conn.execute(ddl)
            after = await fingerprint_of(fresh_db)
            if after == before:
                unchanged.append(f"{catalog}: {ddl}")
            before = after
        assert unchanged == []
        changed = []
        for sql in NOT_DDL:
            await conn.execute(sql)
            if await fingerprint_of(fresh_db) != before:
                changed.append(sql)
        assert changed == []
    finally:
        await conn.close()


def test_the_cache_answers_only_at_its_fingerprint_and_reads_a_foreign_file_as_a_miss(tmp_path: Path) -> None:
    cache = DriftCache(tmp_path / "drift")
    here, there = "a" * 64, "b" * 64
    assert cache.hit("k", here) is None
    with pytest.raises(PgshiftError):  # a line break in the fingerprint would shift the file's first line
        cache.store("k", CacheEntry(fingerprint=here + "\n", result="{}"))
    cache.store("k", CacheEntry(fingerprint=here, result='{"state": "none"}\n{"more": 1}'))
    assert cache.hit("k", here) == '{"state": "none"}\n{"more": 1}'
    assert cache.hit("k", there) is None
    path = tmp_path / "drift" / "k.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "drift").stat().st_mode) == 0o700
    path.write_text('{"fingerprint": "' + here + '", "result": "{}"}')  # the old format, or anything else
    assert cache.hit("k", here) is None
    with pytest.raises(PgshiftError):  # a line break in the fingerprint would shift the file's first line
        cache.store("k", CacheEntry(fingerprint=here + "\n", result="{}"))
