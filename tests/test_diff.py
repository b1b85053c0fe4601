"""The keyed diff, pure: no database."""

from __future__ import annotations

import dataclasses

import pytest

from pgshift.tools.diff import canonical_view_sql, diff_schemas, relocate_references
from pgshift.tools.errors import ConfigError
from pgshift.tools.model import KINDS, Column, Enum, Extension, Index, Namespace, Schema, Table, View


def _table(name: str, *columns: Column, **fields: object) -> Table:
    return Table("public", name, tuple(columns), **fields)  # type: ignore[arg-type]


ID = Column("id", "bigint", True)
NAME = Column("name", "text", False)

SOURCE = Schema(
    namespaces=(Namespace("public", "standard public schema"),),
    enums=(Enum("public", "mood", ("sad", "ok", "happy")),),
    tables=(_table("orders", ID, NAME), _table("fresh", ID), _table("same", ID)),
    server_version_num=180000,
)
TARGET = Schema(
    namespaces=(Namespace("public", "standard public schema"),),
    enums=(Enum("public", "mood", ("sad", "ok")),),
    tables=(
        _table("orders", ID, dataclasses.replace(NAME, not_null=True), Column("legacy", "integer", False)),
        _table("stale", ID),
        _table("same", ID),
    ),
    server_version_num=180000,
)


def test_identical_schemas_have_no_difference() -> None:
    diff = diff_schemas(SOURCE, SOURCE)
    assert diff.in_sync and diff.changes == () and diff.summary() == {"added": 0, "removed": 0, "changed": 0}


def test_an_object_only_in_the_source_is_added_and_one_only_in_the_target_is_removed() -> None:
    tables = {c.key: c for c in diff_schemas(SOURCE, TARGET).of_kind("table")}
    assert tables["public.fresh"].change == "added" and tables["public.fresh"].source.name == "fresh"
    assert tables["public.stale"].change == "removed" and tables["public.stale"].target.name == "stale"
    assert "public.same" not in tables


def test_a_change_lists_only_the_fields_that_differ_from_the_target_value_to_the_source_value() -> None:
    (mood,) = diff_schemas(SOURCE, TARGET).of_kind("enum")
    assert mood.change == "changed"
    assert [(f.field, f.before, f.after) for f in mood.fields] == [("values", ("sad", "ok"), ("sad", "ok", "happy"))]


def test_columns_are_their_own_kind_and_are_not_repeated_for_an_added_or_removed_table() -> None:
    diff = diff_schemas(SOURCE, TARGET)
    columns = {c.key: c for c in diff.of_kind("column")}
    assert set(columns) == {"public.orders.name", "public.orders.legacy"}
    assert columns["public.orders.legacy"].change == "removed"
    assert columns["public.orders.legacy"].table == "public.orders"
    assert [(f.field, f.before, f.after) for f in columns["public.orders.name"].fields] == [("not_null", True, False)]
    assert not [c for c in diff.of_kind("table") if c.key == "public.orders"]  # only its columns changed


def test_changes_come_sorted_by_kind_in_creation_order_then_by_key() -> None:
    changes = diff_schemas(SOURCE, TARGET).changes
    order = [(KINDS.index(c.kind), c.key) for c in changes]
    assert order == sorted(order)
    assert diff_schemas(SOURCE, TARGET) == diff_schemas(SOURCE, TARGET)


def test_reversing_the_direction_swaps_added_and_removed() -> None:
    forward, backward = diff_schemas(SOURCE, TARGET), diff_schemas(TARGET, SOURCE)
    assert forward.summary()["added"] == backward.summary()["removed"]
    assert forward.summary()["removed"] == backward.summary()["added"]
    flipped = {c.key: c for c in backward.of_kind("enum")}["public.mood"].fields[0]
    assert (flipped.before, flipped.after) == (("sad", "ok", "happy"), ("sad", "ok"))


def test_kinds_limit_the_comparison_and_an_unknown_kind_is_a_config_error() -> None:
    only_enums = diff_schemas(SOURCE, TARGET, kinds=["enum"])
    assert {c.kind for c in only_enums.changes} == {"enum"}
    with pytest.raises(ConfigError, match="valid kinds"):
        diff_schemas(SOURCE, TARGET, kinds=["tables"])


def _view(definition: str) -> View:
    return View("public", "v", False, definition, ())


PG15_VIEW = " SELECT products.product_no,\n    products.name\n   FROM public.products;"
PG18_VIEW = " SELECT product_no,\n    name\n   FROM public.products;"


def test_a_view_as_postgres_15_and_18_print_it_compares_equal() -> None:
    on15 = Schema(views=(_view(PG15_VIEW),), server_version_num=150018)
    on18 = Schema(views=(_view(PG18_VIEW),), server_version_num=180006)
    assert diff_schemas(on15, on18).in_sync
    assert diff_schemas(on18, on15).in_sync


def test_a_view_reading_another_column_differs_even_across_versions() -> None:
    on15 = Schema(views=(_view(PG15_VIEW),), server_version_num=150018)
    other = Schema(
        views=(_view(" SELECT product_no,\n    price\n   FROM public.products;"),), server_version_num=180006
    )
    (change,) = diff_schemas(on15, other).changes
    assert (change.kind, change.key, [f.field for f in change.fields]) == ("view", "public.v", ["definition"])


def test_view_text_is_compared_exactly_between_servers_that_print_alike() -> None:
    a = Schema(views=(_view(PG15_VIEW),), server_version_num=180006)
    b = Schema(views=(_view(PG18_VIEW),), server_version_num=180006)
    assert not diff_schemas(a, b).in_sync


def test_the_canonical_view_query_keeps_qualifiers_that_are_needed() -> None:
    joined = "SELECT a.x, b.y FROM public.t a JOIN public.u b ON a.id = b.id"
    assert "a.x" in canonical_view_sql(joined) and "b.y" in canonical_view_sql(joined)
    correlated = "SELECT t.a FROM public.t WHERE t.b > (SELECT max(u.x) FROM public.u WHERE u.k = t.a)"
    assert "u.k = t.a" in canonical_view_sql(correlated)
    assert canonical_view_sql("this is not sql (") == "this is not sql ("


def test_the_fingerprint_is_stable_ignores_collection_order_and_changes_with_the_model() -> None:
    shuffled = dataclasses.replace(SOURCE, tables=tuple(reversed(SOURCE.tables)))
    assert SOURCE.fingerprint() == shuffled.fingerprint() == SOURCE.normalised().fingerprint()
    assert len(SOURCE.fingerprint()) == 64
    assert SOURCE.fingerprint() != TARGET.fingerprint()
    # Metadata that is not part of the schema does not change it.
    assert dataclasses.replace(SOURCE, server_version_num=150000).fingerprint() == SOURCE.fingerprint()


def test_an_index_is_keyed_by_its_schema_qualified_name() -> None:
    idx = Index("Sales", "By Day", 'Sales."Orders"', "CREATE INDEX ...", "btree", False, False, ("day",))
    assert idx.key == '"Sales"."By Day"'
    assert _table("Orders").key == 'public."Orders"'


def _ext(name: str, schema: str = "public", version: str = "1.0", platform: bool = False) -> Extension:
    return Extension(name, schema, version, platform=platform)


def test_references_into_extensions_read_as_public_ones_only_on_a_supabase_target() -> None:
    def side(schema: str, supabase: bool) -> Schema:
        column = Column("id", "uuid", True, default=f"{schema}.uuid_generate_v4()")
        return Schema(extensions=(_ext("uuid-ossp", schema),), tables=(_table("t", column),), supabase=supabase)

    assert diff_schemas(side("public", False), side("extensions", True)).in_sync
    plain = diff_schemas(side("public", False), side("extensions", False))
    assert [(c.kind, [f.field for f in c.fields]) for c in plain.changes] == [
        ("extension", ["schema"]),
        ("column", ["default"]),
    ]
    # Another function of another schema is still different.
    other = dataclasses.replace(side("extensions", True), tables=(_table("t", Column("id", "uuid", True, "x.f()")),))
    assert [c.kind for c in diff_schemas(side("public", False), other).changes] == ["column"]


def test_relocating_references_leaves_string_literals_and_longer_names_alone() -> None:
    sql = "extensions.f('extensions.x') || \"extensions\".g || my_extensions.h || extensions_x.i"
    assert relocate_references(sql, "extensions", "public") == (
        "public.f('extensions.x') || public.g || my_extensions.h || extensions_x.i"
    )
    assert relocate_references("'unterminated", "extensions", "public") == "'unterminated"


def test_an_extension_version_the_target_cannot_install_or_each_servers_default_is_not_a_difference() -> None:
    source = Schema(extensions=(_ext("citext", version="1.8"),), default_extensions=frozenset({("citext", "1.8")}))
    reachable = Schema(
        extensions=(_ext("citext", version="1.6"),),
        available_extensions=frozenset({("citext", "1.6"), ("citext", "1.8")}),
    )
    unreachable = dataclasses.replace(reachable, available_extensions=frozenset({("citext", "1.6")}))
    assert diff_schemas(source, unreachable).in_sync
    assert not diff_schemas(source, reachable).in_sync
    both_default = dataclasses.replace(reachable, default_extensions=frozenset({("citext", "1.6")}))
    assert diff_schemas(source, both_default).in_sync


def test_an_extension_the_platform_installed_counts_only_when_the_source_has_it_and_the_target_lacks_it() -> None:
    platform = Schema(extensions=(_ext("pgcrypto", "extensions", platform=True),))
    assert diff_schemas(Schema(), platform).in_sync
    assert diff_schemas(
        platform, dataclasses.replace(platform, extensions=(_ext("pgcrypto", "extensions", "2.0", True),))
    ).in_sync
    (added,) = diff_schemas(platform, Schema()).changes
    assert (added.kind, added.key, added.change) == ("extension", "pgcrypto", "added")
