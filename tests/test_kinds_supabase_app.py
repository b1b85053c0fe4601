"""A Supabase app's own objects on the platform's tables are compared and planned by default, without the platform's
schemas: a trigger on auth.users calling the app's function, policies on storage.objects, tables in the
`supabase_realtime` publication, the app's publications and its default privileges.

Each plan is applied to a Supabase-shaped database, judged equal to the source by `pg_dump`, and planned again
(empty); what the objects do is checked on the target with a plain connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from conftest import create_database, drop_database
from support_plan import apply_plan, ensure_role, read_schema, run_sql

from pgshift.tools.diff import diff_schemas
from pgshift.tools.judge import judge_equal
from pgshift.tools.localpg import LocalPostgres, embedded_bin_dir
from pgshift.tools.plan import plan_migration

SUPABASE_SHAPE = (Path(__file__).resolve().parents[1] / "tools" / "sample" / "supabase_shape.sql").read_text()
READER = "pgshift_app_reader"

BASE = """
CREATE TABLE public.profiles (id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE, name text);
CREATE TABLE public.messages (id bigint PRIMARY KEY, body text, room int NOT NULL DEFAULT 1);
"""
HANDLER = """
CREATE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$ BEGIN INSERT INTO public.profiles (id, name) VALUES (NEW.id, NEW.email); RETURN NEW; END $$;
"""
APP = (
    HANDLER
    + f"""
CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION public.handle_new_user();
CREATE POLICY "avatars are public" ON storage.objects FOR SELECT TO anon USING (bucket_id = 'avatars');
CREATE POLICY "own uploads" ON storage.objects FOR INSERT TO authenticated WITH CHECK (owner = auth.uid());
ALTER PUBLICATION supabase_realtime ADD TABLE public.messages;
CREATE PUBLICATION app_changes FOR TABLE public.messages (id, body) WHERE (room > 0) WITH (publish = 'insert');
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {READER};
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
"""
)
# The same objects, defined otherwise.
APP_BEFORE = (
    HANDLER
    + f"""
CREATE TRIGGER on_auth_user_created AFTER INSERT OR UPDATE ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.handle_new_user();
CREATE POLICY "avatars are public" ON storage.objects FOR SELECT TO anon USING (bucket_id = 'old');
CREATE POLICY "own uploads" ON storage.objects FOR INSERT TO authenticated WITH CHECK (true);
CREATE PUBLICATION app_changes FOR TABLE public.messages WHERE (room > 1) WITH (publish = 'insert, delete');
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT ON TABLES TO {READER} WITH GRANT OPTION;
"""
)


@pytest.fixture
async def pair(pg: LocalPostgres) -> AsyncIterator[tuple[str, str]]:
    """(source, target): two Supabase-shaped databases holding the app's tables."""
    await ensure_role(pg.url(), READER)
    source, target = await asyncio.gather(create_database(pg, "src"), create_database(pg, "tgt"))
    for url in (source, target):  # one after the other: the shape creates cluster-wide roles
        await run_sql(url, SUPABASE_SHAPE + BASE)
    yield source, target
    await asyncio.gather(drop_database(pg, source), drop_database(pg, target))


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def _converges(source: str, target: str) -> str:
    """Plan, apply, judge by pg_dump, plan again (empty): the script that was applied."""
    src, tgt = await asyncio.gather(read_schema(source), read_schema(target))
    plan = plan_migration(src, tgt, allow_data_loss=True)
    assert not plan.is_empty
    await apply_plan(target, plan)
    equal, diff = await judge_equal(target, source, embedded_bin_dir())
    assert equal, f"{diff}\n{plan.script}"
    replan = plan_migration(src, await read_schema(target))
    assert replan.is_empty, replan.script
    return plan.script


async def test_the_apps_objects_on_platform_tables_are_created_on_the_target(pair: tuple[str, str]) -> None:
    source, target = pair
    await run_sql(source, APP)
    src, tgt = await asyncio.gather(read_schema(source), read_schema(target))
    added = {(c.kind, c.key) for c in diff_schemas(src, tgt).changes if c.change == "added"}
    assert {
        ("trigger", "auth.users.on_auth_user_created"),
        ("policy", 'storage.objects."avatars are public"'),
        ("publication", "app_changes"),
        ("publication_member", "supabase_realtime: public.messages"),
        ("publication_member", "app_changes: public.messages"),
        ("default_privilege", f"FOR ROLE postgres IN SCHEMA public ON TABLES TO {READER}"),
        ("default_privilege", "FOR ROLE postgres ON FUNCTIONS TO PUBLIC"),
    } <= added
    assert not any(kind == "column" and key.startswith(("auth.", "storage.")) for kind, key in added)
    script = await _converges(source, target)
    assert "ALTER PUBLICATION supabase_realtime ADD TABLE public.messages" in script
    # What the objects do, on the target itself.
    await run_sql(target, "INSERT INTO auth.users (id, email) VALUES ('00000000-0000-0000-0000-000000000001', 'a@b')")
    assert [r["name"] for r in await _fetch(target, "SELECT name FROM public.profiles")] == ["a@b"]
    members = await _fetch(target, "SELECT pubname, tablename FROM pg_publication_tables ORDER BY 1")
    assert [(r[0], r[1]) for r in members] == [("app_changes", "messages"), ("supabase_realtime", "messages")]
    await run_sql(target, "CREATE TABLE public.later (id int); CREATE FUNCTION public.f() RETURNS int RETURN 1;")
    grants = await _fetch(
        target,
        f"SELECT has_table_privilege('{READER}', 'public.later', 'SELECT') AS t,"
        " has_function_privilege('public', 'public.f()', 'EXECUTE') AS f",
    )
    assert (grants[0]["t"], grants[0]["f"]) == (True, False)


async def test_the_apps_objects_on_platform_tables_are_changed_on_the_target(pair: tuple[str, str]) -> None:
    source, target = pair
    await asyncio.gather(run_sql(source, APP), run_sql(target, APP_BEFORE))
    src, tgt = await asyncio.gather(read_schema(source), read_schema(target))
    changes = {(c.kind, c.key): c.change for c in diff_schemas(src, tgt).changes}
    assert changes[("trigger", "auth.users.on_auth_user_created")] == "changed"
    assert changes[("publication", "app_changes")] == "changed"
    assert changes[("publication_member", "app_changes: public.messages")] == "changed"
    script = await _converges(source, target)
    assert "ALTER PUBLICATION app_changes SET (publish = 'insert'" in script
    policy = await _fetch(target, "SELECT qual FROM pg_policies WHERE policyname = 'avatars are public'")
    assert "avatars" in policy[0]["qual"]


async def test_the_apps_objects_on_platform_tables_are_dropped_from_the_target(pair: tuple[str, str]) -> None:
    source, target = pair
    await run_sql(target, APP)
    script = await _converges(source, target)
    assert "DROP TRIGGER on_auth_user_created ON auth.users" in script
    left = await _fetch(
        target,
        "SELECT (SELECT count(*) FROM pg_trigger WHERE tgname = 'on_auth_user_created')"
        " + (SELECT count(*) FROM pg_policy) + (SELECT count(*) FROM pg_publication_rel)"
        " + (SELECT count(*) FROM pg_default_acl) AS n, (SELECT count(*) FROM pg_publication) AS publications",
    )
    assert (left[0]["n"], left[0]["publications"]) == (0, 1)  # supabase_realtime stays, empty


async def test_the_platforms_own_publication_and_default_grants_are_never_drift(pair: tuple[str, str]) -> None:
    source, target = pair
    platform = "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;"
    await asyncio.gather(run_sql(source, "DROP PUBLICATION supabase_realtime"), run_sql(target, platform))
    src, tgt = await asyncio.gather(read_schema(source), read_schema(target))
    assert diff_schemas(src, tgt).changes == ()
    assert plan_migration(src, tgt, allow_data_loss=True).is_empty


async def test_a_grant_the_app_gives_a_platform_role_is_planned_and_the_targets_own_are_never_revoked(
    pair: tuple[str, str],
) -> None:
    source, target = pair
    table = "CREATE TABLE public.notes (id int PRIMARY KEY);"
    await asyncio.gather(
        run_sql(source, table + "GRANT SELECT ON public.notes TO authenticated;"),
        run_sql(target, table + "GRANT ALL ON public.notes TO anon; GRANT INSERT ON public.notes TO authenticated;"),
    )
    src, tgt = await asyncio.gather(read_schema(source), read_schema(target))
    plan = plan_migration(src, tgt, allow_data_loss=True)
    assert [s.sql for s in plan.statements] == ["GRANT SELECT ON TABLE public.notes TO authenticated"]
    await apply_plan(target, plan)
    rows = await _fetch(
        target,
        "SELECT grantee, string_agg(privilege_type, ',' ORDER BY privilege_type) AS p"
        " FROM information_schema.role_table_grants WHERE table_name = 'notes' AND grantee <> 'postgres' GROUP BY 1",
    )
    granted = {r["grantee"]: r["p"] for r in rows}
    assert granted["authenticated"] == "INSERT,SELECT" and "DELETE" in granted["anon"]
    assert plan_migration(src, await read_schema(target)).is_empty
