-- name: rls_disabled_in_public
-- title: RLS Disabled in Public
-- level: ERROR
-- categories: SECURITY
-- requires: api_roles
-- description: Tables in API-exposed schemas that anon or authenticated can read, without row level security: anyone with the anon key reads (and, with write grants, changes) every row.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0013_rls_disabled_in_public
SELECT format('Table `%s.%s` is public, but RLS has not been enabled.', n.nspname, c.relname) AS detail,
       jsonb_build_object('schema', n.nspname, 'name', c.relname, 'type', 'table') AS metadata,
       format('rls_disabled_in_public_%s_%s', n.nspname, c.relname) AS cache_key
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND NOT c.relrowsecurity
  AND n.nspname IN (SELECT nspname FROM exposed)
  AND (pg_catalog.has_table_privilege('anon', c.oid, 'SELECT') OR pg_catalog.has_table_privilege('authenticated', c.oid, 'SELECT'))
ORDER BY n.nspname, c.relname
