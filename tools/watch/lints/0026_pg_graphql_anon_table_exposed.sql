-- name: pg_graphql_anon_table_exposed
-- title: Public Can See Object in GraphQL Schema
-- level: WARN
-- categories: SECURITY
-- requires: api_roles, pg_graphql
-- description: pg_graphql shows a table, view, materialized view or foreign table in its schema to a role that can select any of its columns: its name, columns and relations are visible to anyone holding the public anon key, whatever row level security allows.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0026_pg_graphql_anon_table_exposed
SELECT format('%s `%s.%s` is visible in the GraphQL schema because the `anon` role can `SELECT` it. Revoke `SELECT` from `anon` if that is not intended.',
              CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' ELSE 'foreign table' END,
              n.nspname, c.relname) AS detail,
       jsonb_build_object('schema', n.nspname, 'name', c.relname,
                          'type', CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view'
                                                 WHEN 'm' THEN 'materialized view' ELSE 'foreign table' END) AS metadata,
       format('pg_graphql_anon_table_exposed_%s_%s', n.nspname, c.relname) AS cache_key
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'f')
  AND n.nspname NOT IN (SELECT nspname FROM managed)
  AND EXISTS (SELECT FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                AND pg_catalog.has_column_privilege('anon', c.oid, a.attnum, 'SELECT'))
ORDER BY n.nspname, c.relname
