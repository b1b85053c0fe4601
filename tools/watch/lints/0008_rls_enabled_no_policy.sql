-- name: rls_enabled_no_policy
-- title: RLS Enabled No Policy
-- level: INFO
-- categories: SECURITY
-- description: Row level security is on but the table has no policy, so every non-owner role sees and changes nothing; usually a forgotten policy.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0008_rls_enabled_no_policy
SELECT format('Table `%s.%s` has RLS enabled, but no policies exist', n.nspname, c.relname) AS detail,
       jsonb_build_object('schema', n.nspname, 'name', c.relname, 'type', 'table') AS metadata,
       format('rls_enabled_no_policy_%s_%s', n.nspname, c.relname) AS cache_key
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relrowsecurity
  AND n.nspname NOT IN (SELECT nspname FROM managed)
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid)
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
