-- name: insecure_queue_exposed_in_api
-- title: Insecure Queue Exposed in API
-- level: ERROR
-- categories: SECURITY
-- requires: api_roles, pgmq
-- description: With pgmq_public exposed, queue tables readable by anon or authenticated without row level security let anyone read (and with grants, pop) every message.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0019_insecure_queue_exposed_in_api
SELECT format('Table `%s.%s` is public, but RLS has not been enabled.', n.nspname, c.relname) AS detail,
       jsonb_build_object('schema', n.nspname, 'name', c.relname, 'type', 'table') AS metadata,
       format('insecure_queue_exposed_in_api_%s_%s', n.nspname, c.relname) AS cache_key
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relrowsecurity
  AND n.nspname = 'pgmq' AND c.relname LIKE 'q\_%'
  AND 'pgmq_public' IN (SELECT nspname FROM exposed)
  AND (pg_catalog.has_table_privilege('anon', c.oid, 'SELECT') OR pg_catalog.has_table_privilege('authenticated', c.oid, 'SELECT'))
ORDER BY n.nspname, c.relname
