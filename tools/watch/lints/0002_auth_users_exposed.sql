-- name: auth_users_exposed
-- title: Exposed Auth Users
-- level: ERROR
-- categories: SECURITY
-- requires: api_roles, auth
-- description: A view or materialized view in an API-exposed schema reads auth.users and is selectable by anon or authenticated, so user records can leak through the Data API.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0002_auth_users_exposed
WITH users_table AS (
    SELECT c.oid, c.relrowsecurity FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'auth' AND c.relname = 'users'
), readers AS (
    SELECT DISTINCT v.oid, v.relname, v.relkind, n.nspname, u.relrowsecurity AS users_rls,
           coalesce((SELECT o.option_value FROM pg_catalog.pg_options_to_table(v.reloptions) o
                     WHERE o.option_name = 'security_invoker'), 'false')::bool AS security_invoker
    FROM users_table u
    JOIN pg_catalog.pg_depend d ON d.refobjid = u.oid AND d.classid = 'pg_catalog.pg_rewrite'::regclass
    JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
    JOIN pg_catalog.pg_class v ON v.oid = r.ev_class AND v.relkind IN ('v', 'm')
    JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace
    WHERE n.nspname IN (SELECT nspname FROM exposed)
)
SELECT format('View/Materialized View "%s" in the %s schema may expose `auth.users` data to anon or authenticated roles.',
              relname, nspname) AS detail,
       jsonb_build_object('schema', nspname, 'name', relname, 'type', CASE relkind WHEN 'm' THEN 'materialized view' ELSE 'view' END,
                          'exposed_to', to_jsonb(array_remove(ARRAY[
                              CASE WHEN pg_catalog.has_table_privilege('anon', oid, 'SELECT') THEN 'anon' END,
                              CASE WHEN pg_catalog.has_table_privilege('authenticated', oid, 'SELECT') THEN 'authenticated' END
                          ], NULL))) AS metadata,
       format('auth_users_exposed_%s_%s', nspname, relname) AS cache_key
FROM readers
WHERE (pg_catalog.has_table_privilege('anon', oid, 'SELECT') OR pg_catalog.has_table_privilege('authenticated', oid, 'SELECT'))
  -- a materialized view has no RLS; a definer view reads as its owner; an invoker view is safe only behind RLS
  AND (relkind = 'm' OR NOT security_invoker OR NOT users_rls)
ORDER BY nspname, relname
