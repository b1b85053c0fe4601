"""The planner without a database: hand-built models in, ordered statements with hazards out."""

from __future__ import annotations

import dataclasses

from pgshift.tools.model import (
    Column,
    Constraint,
    Dependency,
    Enum,
    Extension,
    Function,
    Index,
    Privilege,
    Schema,
    Table,
    View,
)
from pgshift.tools.plan import HazardKind, Plan, Statement, plan_migration
from pgshift.tools.plan.graph import Step, order_steps


def table(name: str, *columns: Column, **kw: object) -> Table:
    return Table("public", name, tuple(columns), **kw)  # type: ignore[arg-type]


def col(name: str, type_: str = "integer", **kw: object) -> Column:
    return Column(name, type_, kw.pop("not_null", False), **kw)  # type: ignore[arg-type]


def sqls(plan: Plan) -> list[str]:
    return [s.sql for s in plan.statements]


def position(plan: Plan, fragment: str) -> int:
    return next(i for i, s in enumerate(plan.statements) if fragment in s.sql)


def kinds(statement: Statement) -> set[HazardKind]:
    return {h.kind for h in statement.hazards}


def test_an_identical_schema_plans_nothing() -> None:
    schema = Schema(tables=(table("t", col("a")),))
    plan = plan_migration(schema, schema)
    assert plan.is_empty
    assert plan.script == ""
    assert not plan.blocked_by_data_loss


def test_dropping_a_column_is_marked_as_data_loss_and_blocks_the_plan_unless_allowed() -> None:
    target = Schema(tables=(table("t", col("a"), col("b")),))
    source = Schema(tables=(table("t", col("a")),))
    refused = plan_migration(source, target)
    assert sqls(refused) == ["ALTER TABLE public.t DROP COLUMN b"]
    assert refused.blocked_by_data_loss
    assert [s.sql for s in refused.destructive] == ["ALTER TABLE public.t DROP COLUMN b"]
    assert kinds(refused.statements[0]) == {HazardKind.DELETES_DATA}
    allowed = plan_migration(source, target, allow_data_loss=True)
    assert not allowed.blocked_by_data_loss
    assert allowed.destructive == refused.destructive


def test_the_plan_serialises_with_its_script_destructive_statements_and_refusal() -> None:
    plan = plan_migration(Schema(), Schema(tables=(table("gone", col("a")),)))
    data = plan.model_dump(mode="json")
    assert data["script"] == "DROP TABLE public.gone;\n"
    assert data["blocked_by_data_loss"] is True
    assert data["destructive"][0]["hazards"][0]["kind"] == "deletes_data"


def test_a_foreign_key_cycle_is_added_after_both_tables_exist() -> None:
    a = table("a", col("id", not_null=True), col("b_id"))
    b = table("b", col("id", not_null=True), col("a_id"))
    fk_a = Constraint(
        "public",
        "public.a",
        "a_b_fk",
        "FOREIGN KEY",
        "FOREIGN KEY (b_id) REFERENCES public.b(id)",
        ("b_id",),
        references="public.b",
    )
    fk_b = Constraint(
        "public",
        "public.b",
        "b_a_fk",
        "FOREIGN KEY",
        "FOREIGN KEY (a_id) REFERENCES public.a(id)",
        ("a_id",),
        references="public.a",
    )
    pk_a = Constraint("public", "public.a", "a_pkey", "PRIMARY KEY", "PRIMARY KEY (id)", ("id",))
    pk_b = Constraint("public", "public.b", "b_pkey", "PRIMARY KEY", "PRIMARY KEY (id)", ("id",))
    plan = plan_migration(Schema(tables=(a, b), constraints=(fk_a, fk_b, pk_a, pk_b)), Schema())
    creates = max(position(plan, "CREATE TABLE public.a"), position(plan, "CREATE TABLE public.b"))
    assert position(plan, "ADD CONSTRAINT a_b_fk") > max(creates, position(plan, "ADD CONSTRAINT b_pkey"))
    assert position(plan, "ADD CONSTRAINT b_a_fk") > max(creates, position(plan, "ADD CONSTRAINT a_pkey"))
    # New tables hold no rows: no lock or scan hazards on what is built for them.
    assert all(not s.hazards for s in plan.statements)


def test_an_enum_value_added_in_the_middle_runs_alone_outside_a_transaction() -> None:
    target = Schema(enums=(Enum("public", "e", ("a", "c")),))
    source = Schema(enums=(Enum("public", "e", ("a", "b", "c", "d")),))
    plan = plan_migration(source, target)
    assert sqls(plan) == ["ALTER TYPE public.e ADD VALUE 'b' BEFORE 'c'", "ALTER TYPE public.e ADD VALUE 'd' AFTER 'c'"]
    assert all(not s.transactional for s in plan.statements)


def test_an_enum_value_removed_recreates_the_type_and_casts_its_columns_with_their_defaults() -> None:
    t_old = table("t", col("x", "public.e", default="'a'::public.e"), col("xs", "public.e[]"))
    target = Schema(enums=(Enum("public", "e", ("a", "b")),), tables=(t_old,))
    source = Schema(enums=(Enum("public", "e", ("a",)),), tables=(t_old,))
    plan = plan_migration(source, target, allow_data_loss=True)
    assert sqls(plan) == [
        "ALTER TYPE public.e RENAME TO e__pgshift_old",
        "CREATE TYPE public.e AS ENUM ('a')",
        "ALTER TABLE public.t ALTER COLUMN x DROP DEFAULT",
        "ALTER TABLE public.t ALTER COLUMN x TYPE public.e USING x::text::public.e",
        "ALTER TABLE public.t ALTER COLUMN x SET DEFAULT 'a'::public.e",
        "ALTER TABLE public.t ALTER COLUMN xs TYPE public.e[] USING xs::text[]::public.e[]",
        "DROP TYPE public.e__pgshift_old",
    ]
    assert kinds(plan.statements[-1]) == {HazardKind.DELETES_DATA}
    assert plan.blocked_by_data_loss is False


def test_a_view_over_a_column_whose_type_changes_is_dropped_before_and_recreated_after() -> None:
    view = View("public", "v", False, " SELECT a\n   FROM public.t;", (col("a"),))
    dep = (Dependency("view", "public.v", "column", "public.t.a"),)
    target = Schema(tables=(table("t", col("a")),), views=(view,), dependencies=dep)
    view_big = View("public", "v", False, " SELECT a\n   FROM public.t;", (col("a", "bigint"),))
    source = Schema(tables=(table("t", col("a", "bigint")),), views=(view_big,), dependencies=dep)
    plan = plan_migration(source, target)
    assert sqls(plan) == [
        "DROP VIEW public.v",
        "ALTER TABLE public.t ALTER COLUMN a TYPE bigint USING a::bigint",
        "CREATE VIEW public.v AS\nSELECT a\n   FROM public.t",
    ]
    assert kinds(plan.statements[1]) == {HazardKind.TABLE_REWRITE}


def _function(result: str) -> Function:
    return Function(
        "public",
        "f",
        "FUNCTION",
        "",
        "",
        result,
        "plpgsql",
        "VOLATILE",
        False,
        False,
        False,
        "UNSAFE",
        (),
        "begin return 1; end",
        f"CREATE OR REPLACE FUNCTION public.f()\n RETURNS {result}\n LANGUAGE plpgsql\nAS $$begin return 1; end$$\n",
    )


def test_a_function_whose_return_type_changes_is_dropped_and_recreated_with_its_dependants() -> None:
    view = View("public", "v", False, " SELECT public.f() AS x;", (col("x"),))
    dep = (Dependency("view", "public.v", "function", "public.f()"),)
    default_grant = (Privilege("FUNCTION", "public.f()", "PUBLIC", ("EXECUTE",)),)
    target = Schema(functions=(_function("integer"),), views=(view,), dependencies=dep, privileges=default_grant)
    source = Schema(functions=(_function("bigint"),), views=(view,), dependencies=dep, privileges=default_grant)
    plan = plan_migration(source, target)
    assert [s.sql.splitlines()[0] for s in plan.statements] == [
        "DROP VIEW public.v",
        "DROP FUNCTION public.f()",
        "CREATE OR REPLACE FUNCTION public.f()",
        "CREATE VIEW public.v AS",
    ]
    assert kinds(plan.statements[2]) == {HazardKind.UNTRACKABLE_DEPENDENCY}
    # Without the default grant in the source, the recreated function must lose it too.
    revoked = plan_migration(Schema(functions=(_function("bigint"),), views=(view,), dependencies=dep), target)
    assert revoked.statements[-1].sql == "REVOKE EXECUTE ON FUNCTION public.f() FROM PUBLIC"


def test_a_function_body_change_is_replaced_in_place() -> None:
    old, new = _function("integer"), _function("integer")
    new = dataclasses.replace(new, definition=new.definition.replace("return 1", "return 2"))
    plan = plan_migration(Schema(functions=(new,)), Schema(functions=(old,)))
    assert len(plan.statements) == 1
    assert plan.statements[0].sql.startswith("CREATE OR REPLACE FUNCTION public.f()")


def test_online_mode_builds_indexes_concurrently_outside_transactions_with_a_lock_timeout() -> None:
    t = table("t", col("a"))
    idx = Index(
        "public", "t_a", "public.t", "CREATE INDEX t_a ON public.t USING btree (a)", "btree", False, False, ("a",)
    )
    plan = plan_migration(Schema(tables=(t,), indexes=(idx,)), Schema(tables=(t,)), online=True)
    (statement,) = plan.statements
    assert statement.sql == "CREATE INDEX CONCURRENTLY t_a ON public.t USING btree (a)"
    assert not statement.transactional
    assert statement.lock_timeout_ms is not None
    assert kinds(statement) == {HazardKind.INDEX_BUILD}
    assert plan.script.startswith(f"SET lock_timeout = '{statement.lock_timeout_ms}ms';\nCREATE INDEX CONCURRENTLY")
    offline = plan_migration(Schema(tables=(t,), indexes=(idx,)), Schema(tables=(t,)))
    assert offline.statements[0].transactional
    assert kinds(offline.statements[0]) == {HazardKind.INDEX_BUILD, HazardKind.SHARE_LOCK}


def test_online_not_null_goes_through_a_validated_check_constraint() -> None:
    plan = plan_migration(
        Schema(tables=(table("t", col("a", not_null=True)),)), Schema(tables=(table("t", col("a")),)), online=True
    )
    assert sqls(plan) == [
        "ALTER TABLE public.t ADD CONSTRAINT t_a_not_null_chk CHECK (a IS NOT NULL) NOT VALID",
        "ALTER TABLE public.t VALIDATE CONSTRAINT t_a_not_null_chk",
        "ALTER TABLE public.t ALTER COLUMN a SET NOT NULL",
        "ALTER TABLE public.t DROP CONSTRAINT t_a_not_null_chk",
    ]
    assert all(not s.transactional and s.lock_timeout_ms for s in plan.statements)


def test_a_column_added_with_a_volatile_default_is_a_table_rewrite_and_a_stable_one_is_not() -> None:
    target = Schema(tables=(table("t", col("a")),))
    volatile = plan_migration(
        Schema(tables=(table("t", col("a"), col("u", "uuid", default="gen_random_uuid()")),)), target
    )
    stable = plan_migration(Schema(tables=(table("t", col("a"), col("c", "timestamptz", default="now()")),)), target)
    assert kinds(volatile.statements[0]) == {HazardKind.TABLE_REWRITE}
    assert kinds(stable.statements[0]) == set()


def test_a_table_swapped_for_a_view_of_the_same_name_is_dropped_first() -> None:
    view = View("public", "x", False, " SELECT 1 AS a;", (col("a"),))
    plan = plan_migration(Schema(views=(view,)), Schema(tables=(table("x", col("a")),)), allow_data_loss=True)
    assert [s.sql.splitlines()[0] for s in plan.statements] == ["DROP TABLE public.x", "CREATE VIEW public.x AS"]


def test_steps_follow_their_dependencies_and_otherwise_keep_generation_order() -> None:
    steps = [Step("c", []), Step("a", [], after={"b"}), Step("b", []), Step("d", [], after={"unknown"})]
    assert [s.id for s in order_steps(steps)] == ["c", "b", "a", "d"]
    cycle = [Step("x", [], after={"y"}), Step("y", [], after={"x"})]
    assert sorted(s.id for s in order_steps(cycle)) == ["x", "y"]


def test_a_view_as_postgres_15_and_18_print_it_plans_nothing() -> None:
    on15 = View("public", "v", False, " SELECT t.a\n   FROM public.t;", (col("a"),))
    on18 = dataclasses.replace(on15, definition=" SELECT a\n   FROM public.t;")
    tables = (table("t", col("a")),)
    assert plan_migration(
        Schema(tables=tables, views=(on18,), server_version_num=180001),
        Schema(tables=tables, views=(on15,), server_version_num=150014),
    ).is_empty


def test_an_extension_is_planned_without_a_version_the_target_cannot_install() -> None:
    source = Schema(extensions=(Extension("citext", "public", "1.8"), Extension("hstore", "public", "1.8")))
    target = Schema(
        extensions=(Extension("hstore", "public", "1.7"),),
        available_extensions=frozenset({("citext", "1.6"), ("hstore", "1.7"), ("hstore", "1.8")}),
    )
    assert sqls(plan_migration(source, target)) == [
        "CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public",
        "ALTER EXTENSION hstore UPDATE TO '1.8'",
    ]
    unreachable = dataclasses.replace(target, available_extensions=frozenset({("citext", "1.8"), ("hstore", "1.7")}))
    assert sqls(plan_migration(source, unreachable)) == [
        "CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public VERSION '1.8'"
    ]


def test_an_extension_in_a_schema_outside_the_model_creates_that_schema_first() -> None:
    source = Schema(extensions=(Extension("uuid-ossp", "extensions", "1.1", platform=True),))
    assert sqls(plan_migration(source, Schema())) == [
        "CREATE SCHEMA IF NOT EXISTS extensions",
        "CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\" WITH SCHEMA extensions VERSION '1.1'",
    ]


def test_an_extension_moved_to_extensions_on_a_supabase_target_plans_nothing() -> None:
    local = Schema(extensions=(Extension("pg_trgm", "public", "1.6"),))
    supabase = Schema(extensions=(Extension("pg_trgm", "extensions", "1.6"),), supabase=True)
    assert plan_migration(local, supabase).is_empty
    assert sqls(plan_migration(local, dataclasses.replace(supabase, supabase=False))) == [
        "ALTER EXTENSION pg_trgm SET SCHEMA public"
    ]
