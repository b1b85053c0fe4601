-- name: materialized_view_in_api
-- title: Materialized View in API
-- level: WARN
-- categories: SECURITY
-- requires: api_roles
-- description: Materialized views cannot have row level security; readable by anon or authenticated in an exposed schema, all their rows are on the API.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0016_materialized_view_in_api
SELECT format('Materialized view `%s.%s` is selectable by anon or authenticated roles', n.nspname, c.relname) AS detail,
       jsonb_build_object('schema', n.nspname, 'name', c.relname, 'type', 'materialized view') AS metadata,
       format('materialized_view_in_api_%s_%s', n.nspname, c.relname) AS cache_key
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'm'
  AND n.nspname IN (SELECT nspname FROM exposed)
  AND (pg_catalog.has_table_privilege('anon', c.oid, 'SELECT') OR pg_catalog.has_table_privilege('authenticated', c.oid, 'SELECT'))
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
