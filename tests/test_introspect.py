"""Introspection on real PostgreSQL 15 and 18: every object kind is read with its details, every kind of
change is detected by the diff, and the number of catalog queries does not grow with the database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import asyncpg
import pytest
from support_introspect import databases, describe, ensure_roles, read

from pgshift.tools.diff import SchemaDiff, diff_schemas
from pgshift.tools.introspect import introspect
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.model import Schema

ROLE = "pgshift_reader"

BASE = f"""
CREATE EXTENSION citext;
CREATE SCHEMA auth;
CREATE TABLE auth.users (id uuid PRIMARY KEY);
CREATE SCHEMA app;
COMMENT ON SCHEMA app IS 'application';
CREATE COLLATION app.posix_c (locale = 'POSIX');
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
COMMENT ON TYPE app.mood IS 'how it feels';
CREATE DOMAIN app.positive AS integer NOT NULL DEFAULT 1 CONSTRAINT positive_check CHECK (VALUE > 0);
CREATE TYPE app.pair AS (x integer, y text COLLATE "C");
CREATE SEQUENCE app.counter AS bigint START 10 INCREMENT 5 MINVALUE 10 MAXVALUE 1000 CACHE 1 CYCLE;
CREATE TABLE app.parent (id int PRIMARY KEY, note text COLLATE "C" CONSTRAINT note_required NOT NULL);
CREATE TABLE app.items (
  id bigint GENERATED ALWAYS AS IDENTITY (START WITH 100 INCREMENT BY 2) PRIMARY KEY,
  code text NOT NULL,
  mood app.mood DEFAULT 'ok',
  qty app.positive,
  price numeric(10,2),
  total numeric GENERATED ALWAYS AS (price * 2) STORED,
  parent_id int REFERENCES app.parent (id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED,
  owner_id uuid REFERENCES auth.users (id),
  serial_col serial,
  CONSTRAINT items_code_key UNIQUE (code)
);
COMMENT ON COLUMN app.items.code IS 'the code';
ALTER TABLE app.items ADD CONSTRAINT qty_small CHECK (qty < 1000) NOT VALID;
CREATE TABLE app.booking (during tsrange, EXCLUDE USING gist (during WITH &&));
CREATE INDEX items_lower_code ON app.items (lower(code)) INCLUDE (price) WHERE qty > 1;
CREATE INDEX items_code_pattern ON app.items USING btree (code text_pattern_ops DESC);
CREATE TABLE app.events (id int, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE app.events_2024 PARTITION OF app.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE INDEX events_at ON app.events (at);
CREATE TABLE app.child (extra text) INHERITS (app.parent);
CREATE UNLOGGED TABLE app.scratch (v text) WITH (fillfactor = 70);
ALTER TABLE app.items ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.items FORCE ROW LEVEL SECURITY;
ALTER TABLE app.scratch REPLICA IDENTITY FULL;
CREATE VIEW app.item_codes AS SELECT id, code FROM app.items;
CREATE MATERIALIZED VIEW app.item_totals AS SELECT mood, count(*) AS n FROM app.items GROUP BY mood;
CREATE INDEX item_totals_mood ON app.item_totals (mood);
CREATE FUNCTION app.add(a integer, b integer DEFAULT 1) RETURNS integer LANGUAGE sql IMMUTABLE STRICT
  AS 'SELECT a + b';
CREATE FUNCTION app.add(a numeric, b numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS 'SELECT a + b';
CREATE PROCEDURE app.reset() LANGUAGE plpgsql SECURITY DEFINER SET search_path = app
  AS $$ BEGIN DELETE FROM app.scratch; END $$;
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER items_touch BEFORE INSERT OR UPDATE OF code ON app.items
  FOR EACH ROW WHEN (NEW.code IS NOT NULL) EXECUTE FUNCTION app.touch();
COMMENT ON TRIGGER items_touch ON app.items IS 'keeps it fresh';
CREATE POLICY items_read ON app.items AS RESTRICTIVE FOR SELECT TO PUBLIC USING (qty > 0);
CREATE POLICY items_write ON app.items FOR INSERT TO {ROLE} WITH CHECK (price > 0);
GRANT USAGE ON SCHEMA app TO {ROLE};
GRANT SELECT, INSERT ON app.items TO {ROLE} WITH GRANT OPTION;
GRANT SELECT (note) ON app.parent TO {ROLE};
GRANT USAGE ON SEQUENCE app.counter TO {ROLE};
REVOKE EXECUTE ON FUNCTION app.add(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.add(integer, integer) TO {ROLE};
"""

CHANGES = f"""
CREATE SCHEMA extra;
COMMENT ON SCHEMA app IS 'the application';
DROP EXTENSION citext;
DROP COLLATION app.posix_c;
ALTER TYPE app.mood ADD VALUE 'angry' BEFORE 'sad';
ALTER DOMAIN app.positive SET DEFAULT 2;
ALTER TYPE app.pair ADD ATTRIBUTE z integer;
ALTER SEQUENCE app.counter INCREMENT BY 7;
ALTER TABLE app.scratch SET LOGGED;
ALTER TABLE app.items NO FORCE ROW LEVEL SECURITY;
ALTER TABLE app.items ALTER COLUMN code DROP NOT NULL;
ALTER TABLE app.items ALTER COLUMN id SET INCREMENT BY 3;
ALTER TABLE app.items ADD COLUMN note text;
COMMENT ON COLUMN app.items.code IS 'the item code';
ALTER TABLE app.items VALIDATE CONSTRAINT qty_small;
DROP INDEX app.items_code_pattern;
CREATE TABLE app.events_2025 PARTITION OF app.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE OR REPLACE VIEW app.item_codes AS SELECT id, code, price FROM app.items;
CREATE OR REPLACE FUNCTION app.add(a numeric, b numeric) RETURNS numeric LANGUAGE sql STABLE AS 'SELECT a + b';
ALTER TABLE app.items DISABLE TRIGGER items_touch;
ALTER POLICY items_read ON app.items USING (qty > 1);
REVOKE INSERT ON app.items FROM {ROLE};
"""

# (kind, key, change, field that must appear among the changed fields or None)
EXPECTED_CHANGES = [
    ("schema", "extra", "added", None),
    ("schema", "app", "changed", "comment"),
    ("extension", "citext", "removed", None),
    ("collation", "app.posix_c", "removed", None),
    ("enum", "app.mood", "changed", "values"),
    ("domain", "app.positive", "changed", "default"),
    ("composite_type", "app.pair", "changed", "attributes"),
    ("sequence", "app.counter", "changed", "options"),
    ("table", "app.scratch", "changed", "unlogged"),
    ("table", "app.items", "changed", "rls_forced"),
    ("table", "app.events_2025", "added", None),
    ("column", "app.items.code", "changed", "not_null"),
    ("column", "app.items.code", "changed", "comment"),
    ("column", "app.items.id", "changed", "identity"),
    ("column", "app.items.note", "added", None),
    ("constraint", "app.items.qty_small", "changed", "validated"),
    ("index", "app.items_code_pattern", "removed", None),
    ("view", "app.item_codes", "changed", "definition"),
    ("function", "app.add(a numeric, b numeric)", "changed", "volatility"),
    ("trigger", "app.items.items_touch", "changed", "enabled"),
    ("policy", "app.items.items_read", "changed", "using"),
    ("privilege", f"TABLE app.items TO {ROLE}", "changed", "privileges"),
]


@dataclass(frozen=True)
class Pair:
    server: str
    base: Schema
    changed: Schema
    diff: SchemaDiff  # what must change in base to equal changed


@pytest.fixture(scope="module", params=["pg18", "pg15"])
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    """BASE on one database and BASE + CHANGES on another, read once per server for this module."""
    server: LocalPostgres = request.getfixturevalue(request.param)

    async def build() -> Pair:
        await ensure_roles(server, (ROLE,))
        async with databases((server, BASE), (server, BASE + CHANGES)) as (base_url, changed_url):
            base, changed = await asyncio.gather(read(base_url), read(changed_url))
        return Pair(server.version, base, changed, diff_schemas(changed, base))

    yield asyncio.run(build())


def _one(objects: tuple, key: str):  # type: ignore[no-untyped-def,type-arg]
    found = [o for o in objects if o.key == key]
    assert len(found) == 1, f"{key} not found among {[o.key for o in objects]}"
    return found[0]


def _check_namespace(s: Schema) -> None:
    app = _one(s.namespaces, "app")
    assert app.comment == "application"
    assert "auth" not in {n.name for n in s.namespaces}  # Supabase-managed: excluded by default


def _check_extension(s: Schema) -> None:
    ext = _one(s.extensions, "citext")
    assert ext.schema == "public" and ext.version


def _check_collation(s: Schema) -> None:
    assert _one(s.collations, "app.posix_c").provider == "c"


def _check_enum(s: Schema) -> None:
    mood = _one(s.enums, "app.mood")
    assert mood.values == ("sad", "ok", "happy") and mood.comment == "how it feels"


def _check_domain(s: Schema) -> None:
    d = _one(s.domains, "app.positive")
    assert (d.base_type, d.not_null, d.default) == ("integer", True, "1")
    assert [(c.name, c.definition) for c in d.constraints] == [("positive_check", "CHECK ((VALUE > 0))")]


def _check_composite(s: Schema) -> None:
    t = _one(s.composite_types, "app.pair")
    assert [(a.name, a.type, a.collation) for a in t.attributes] == [("x", "integer", None), ("y", "text", '"C"')]


def _check_sequence(s: Schema) -> None:
    seq = _one(s.sequences, "app.counter")
    o = seq.options
    assert (o.data_type, o.start, o.increment, o.min_value, o.max_value, o.cache, o.cycle) == (
        "bigint", 10, 5, 10, 1000, 1, True,
    )  # fmt: skip
    assert seq.owned_by is None
    assert _one(s.sequences, "app.items_serial_col_seq").owned_by == "app.items.serial_col"
    assert "app.items_id_seq" not in {q.key for q in s.sequences}  # identity sequences live on their column


def _check_table(s: Schema) -> None:
    items = _one(s.tables, "app.items")
    assert (items.rls_enabled, items.rls_forced, items.unlogged) == (True, True, False)
    scratch = _one(s.tables, "app.scratch")
    assert (scratch.unlogged, scratch.replica_identity, scratch.options) == (True, "FULL", ("fillfactor=70",))
    events = _one(s.tables, "app.events")
    assert events.partitioned and events.partition_key == "RANGE (at)"
    part = _one(s.tables, "app.events_2024")
    assert part.partition_of == "app.events"
    assert part.partition_bound == "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"
    assert _one(s.tables, "app.child").inherits == ("app.parent",)


def _check_column(s: Schema) -> None:
    items = _one(s.tables, "app.items")
    cols = {c.name: c for c in items.columns}
    assert [c.name for c in items.columns][:3] == ["id", "code", "mood"]
    ident = cols["id"].identity
    assert ident is not None and ident.generation == "ALWAYS"
    assert (ident.options.start, ident.options.increment) == (100, 2)
    assert (cols["code"].type, cols["code"].not_null, cols["code"].comment) == ("text", True, "the code")
    assert (cols["mood"].type, cols["mood"].default) == ("app.mood", "'ok'::app.mood")
    assert cols["price"].type == "numeric(10,2)"
    assert (cols["total"].generated, cols["total"].generated_kind, cols["total"].default) == (
        "(price * (2)::numeric)", "STORED", None,
    )  # fmt: skip
    assert cols["serial_col"].default == "nextval('app.items_serial_col_seq'::regclass)"
    assert _one(s.tables, "app.parent").column("note").collation == '"C"'  # type: ignore[union-attr]
    note = _one(s.tables, "app.parent").column("note")
    assert note is not None and note.not_null
    # PostgreSQL 18 keeps a NOT NULL constraint's own name; 15 has none; a default name is not kept.
    assert note.not_null_name == ("note_required" if s.server_version_num >= 180000 else None)
    assert cols["code"].not_null_name is None
    assert _one(s.tables, "app.child").column("note").not_null_name is None  # type: ignore[union-attr]
    child = {c.name: c.inherited for c in _one(s.tables, "app.child").columns}
    assert child == {"id": True, "note": True, "extra": False}


def _check_constraint(s: Schema) -> None:
    fk = _one(s.constraints, "app.items.items_parent_id_fkey")
    assert (fk.type, fk.references, fk.referenced_columns, fk.on_delete, fk.deferrable, fk.initially_deferred) == (
        "FOREIGN KEY", "app.parent", ("id",), "SET NULL", True, True,
    )  # fmt: skip
    to_auth = _one(s.constraints, "app.items.items_owner_id_fkey")
    assert to_auth.references == "auth.users"  # a reference into a managed schema is kept
    assert _one(s.constraints, "app.items.qty_small").validated is False
    pk = _one(s.constraints, "app.items.items_pkey")
    assert (pk.type, pk.columns, pk.index) == ("PRIMARY KEY", ("id",), "app.items_pkey")
    assert _one(s.constraints, "app.booking.booking_during_excl").type == "EXCLUDE"
    assert not [c for c in s.constraints if c.table == "app.events_2024"]  # no partition clones


def _check_index(s: Schema) -> None:
    idx = _one(s.indexes, "app.items_lower_code")
    assert (idx.method, idx.key_columns, idx.include, idx.predicate) == (
        "btree", ("lower(code)",), ("price",), "((qty)::integer > 1)",
    )  # fmt: skip
    assert "text_pattern_ops DESC" in _one(s.indexes, "app.items_code_pattern").definition
    assert _one(s.indexes, "app.items_pkey").constraint == "app.items.items_pkey"
    assert _one(s.indexes, "app.events_2024_at_idx").parent_index == "app.events_at"
    assert _one(s.indexes, "app.item_totals_mood").table == "app.item_totals"


def _check_view(s: Schema) -> None:
    view = _one(s.views, "app.item_codes")
    assert not view.materialized and "app.items" in view.definition
    assert [c.name for c in view.columns] == ["id", "code"]
    assert _one(s.views, "app.item_totals").materialized


def _check_function(s: Schema) -> None:
    add = _one(s.functions, "app.add(a integer, b integer)")
    assert (add.kind, add.result, add.language, add.volatility, add.strict) == (
        "FUNCTION", "integer", "sql", "IMMUTABLE", True,
    )  # fmt: skip
    assert add.arguments == "a integer, b integer DEFAULT 1"
    assert "CREATE OR REPLACE FUNCTION app.add" in add.definition
    _one(s.functions, "app.add(a numeric, b numeric)")  # the overload is its own object
    reset = _one(s.functions, "app.reset()")
    assert (reset.kind, reset.security_definer, reset.config, reset.result) == (
        "PROCEDURE", True, ("search_path=app",), None,
    )  # fmt: skip


def _check_trigger(s: Schema) -> None:
    t = _one(s.triggers, "app.items.items_touch")
    assert (t.timing, t.events, t.level, t.function, t.when, t.comment) == (
        "BEFORE", ("INSERT", "UPDATE"), "ROW", "app.touch", "(new.code IS NOT NULL)", "keeps it fresh",
    )  # fmt: skip
    assert not [t for t in s.triggers if t.name.startswith("RI_")]  # no internal FK triggers


def _check_policy(s: Schema) -> None:
    read_ = _one(s.policies, "app.items.items_read")
    assert (read_.command, read_.permissive, read_.roles, read_.using) == (
        "SELECT",
        False,
        ("public",),
        "((qty)::integer > 0)",
    )
    write = _one(s.policies, "app.items.items_write")
    assert (write.command, write.roles, write.with_check) == ("INSERT", (ROLE,), "(price > (0)::numeric)")


def _check_privilege(s: Schema) -> None:
    grants = {p.key: p for p in s.privileges}
    table = grants[f"TABLE app.items TO {ROLE}"]
    assert (table.privileges, table.grantable) == (("INSERT", "SELECT"), ("INSERT", "SELECT"))
    assert grants[f"COLUMN app.parent.note TO {ROLE}"].privileges == ("SELECT",)
    assert grants[f"SCHEMA app TO {ROLE}"].privileges == ("USAGE",)
    assert grants[f"SEQUENCE app.counter TO {ROLE}"].privileges == ("USAGE",)
    assert grants[f"FUNCTION app.add(a integer, b integer) TO {ROLE}"].privileges == ("EXECUTE",)
    assert "FUNCTION app.add(a integer, b integer) TO PUBLIC" not in grants  # revoked
    assert "FUNCTION app.add(a numeric, b numeric) TO PUBLIC" in grants  # the default
    assert not [p for p in s.privileges if p.grantee == "postgres"]  # the owner is not listed


CHECKS: dict[str, Callable[[Schema], None]] = {
    "schema": _check_namespace,
    "extension": _check_extension,
    "collation": _check_collation,
    "enum": _check_enum,
    "domain": _check_domain,
    "composite_type": _check_composite,
    "sequence": _check_sequence,
    "table": _check_table,
    "column": _check_column,
    "constraint": _check_constraint,
    "index": _check_index,
    "view": _check_view,
    "function": _check_function,
    "trigger": _check_trigger,
    "policy": _check_policy,
    "privilege": _check_privilege,
}


@pytest.mark.parametrize("kind", list(CHECKS))
def test_each_kind_is_read_with_its_details(pair: Pair, kind: str) -> None:
    CHECKS[kind](pair.base)


@pytest.mark.parametrize(("kind", "key", "change", "field"), EXPECTED_CHANGES, ids=lambda v: str(v))
def test_a_change_of_each_kind_is_detected(pair: Pair, kind: str, key: str, change: str, field: str | None) -> None:
    found = [c for c in pair.diff.changes if (c.kind, c.key) == (kind, key)]
    assert found, f"no {change} {kind} {key} in:\n{describe(pair.diff)}"
    assert found[0].change == change
    if field is not None:
        assert field in [f.field for f in found[0].fields]


def test_the_diff_holds_only_the_changes_made(pair: Pair) -> None:
    expected = {(k, key) for k, key, _, _ in EXPECTED_CHANGES}
    # Side effects of the changes that are real differences too: the new partition's index and
    # the view's new output column.
    side_effects = {("index", "app.events_2025_at_idx")}
    unexpected = [c for c in pair.diff.changes if (c.kind, c.key) not in expected | side_effects]
    assert not unexpected, describe(SchemaDiff(tuple(unexpected)))


def test_the_same_schema_read_twice_has_the_same_fingerprint_and_no_difference(pair: Pair) -> None:
    assert diff_schemas(pair.base, pair.base).in_sync
    assert pair.base.fingerprint() != pair.changed.fingerprint()


def test_dependencies_are_read_as_qualified_names(pair: Pair) -> None:
    deps = {(d.kind, d.key, d.on_kind, d.on_key) for d in pair.base.dependencies}
    assert ("view", "app.item_codes", "column", "app.items.code") in deps
    assert ("column", "app.items.mood", "enum", "app.mood") in deps
    assert ("column", "app.items.serial_col", "sequence", "app.items_serial_col_seq") in deps
    assert ("trigger", "app.items.items_touch", "function", "app.touch()") in deps
    assert ("constraint", "app.items.items_owner_id_fkey", "table", "auth.users") in deps or (
        "constraint", "app.items.items_owner_id_fkey", "column", "auth.users.id",
    ) in deps  # fmt: skip


async def _queries(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    queries: list[str] = []
    conn.add_query_logger(lambda record: queries.append(record.query))
    try:
        await introspect(conn)
    finally:
        await conn.close()
    return queries


async def test_the_number_of_catalog_queries_does_not_grow_with_the_database(pg18: LocalPostgres) -> None:
    small = "CREATE TABLE t0 (id int PRIMARY KEY, v text);"
    big = "\n".join(
        f"CREATE TABLE t{i} (id int PRIMARY KEY, v text REFERENCES t0 (v)); CREATE INDEX ON t{i} (v);"
        f"CREATE VIEW v{i} AS SELECT * FROM t{i}; COMMENT ON TABLE t{i} IS 'x';"
        for i in range(1, 40)
    )
    async with databases((pg18, small), (pg18, small.replace("v text", "v text UNIQUE") + big)) as (one, two):
        few, many = await asyncio.gather(_queries(one), _queries(two))
        schema = await read(two)
    assert len(schema.tables) == 40 and len(schema.views) == 39
    assert len(few) == len(many), "\n".join(many)
    assert len(many) <= 26  # BEGIN, setup, 23 catalog queries (one per kind, one for those not compared), COMMIT


async def test_managed_schemas_are_read_when_asked_for(pg18: LocalPostgres) -> None:
    async with databases((pg18, BASE.split("CREATE SCHEMA app;")[0])) as (url,):
        default = await read(url)
        managed = await read(url, include_managed=True)
        named = await read(url, schemas=["auth"])
    assert "auth.users" not in {t.key for t in default.tables}
    assert "auth.users" in {t.key for t in managed.tables}
    assert {t.key for t in named.tables} == {"auth.users"}
    # Extensions are database-wide: listed by default, only those installed in the named schemas otherwise.
    assert [e.name for e in default.extensions] == ["citext"] and named.extensions == ()


def test_columns_come_out_in_table_order_whatever_order_the_rows_arrive_in() -> None:
    from pgshift.tools.introspect.relations import columns

    def row(rel: str, attnum: int, name: str) -> tuple[object, ...]:
        return ("public", rel, attnum, name, "text", False, None, "", "", None, None, True, None, None)

    rows = [row("t", 3, "c"), row("u", 1, "x"), row("t", 1, "a"), row("t", 2, "b")]
    grouped = columns(rows, {})  # type: ignore[arg-type]
    assert [c.name for c in grouped[("public", "t")]] == ["a", "b", "c"]
    assert [c.name for c in grouped[("public", "u")]] == ["x"]


async def test_reading_over_helper_connections_gives_the_same_model(pg: LocalPostgres) -> None:
    await ensure_roles(pg, (ROLE,))
    async with databases((pg, BASE)) as (url,):
        alone = await read(url)
        conn, *helpers = await asyncio.gather(*(asyncpg.connect(url) for _ in range(3)))
        try:
            shared = await introspect(conn, helpers=helpers)
            assert not any(h.is_in_transaction() for h in helpers)  # their transactions were rolled back
        finally:
            await asyncio.gather(conn.close(), *(h.close() for h in helpers))
    assert shared == alone and shared.fingerprint() == alone.fingerprint()
    assert shared.dependencies and shared.dependencies == alone.dependencies
