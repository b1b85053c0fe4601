-- name: policy_exists_rls_disabled
-- title: Policy Exists RLS Disabled
-- level: ERROR
-- categories: SECURITY
-- description: Row level security policies exist on a table whose RLS is off, so none of them is enforced.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0007_policy_exists_rls_disabled
SELECT format('Table `%s.%s` has RLS policies but RLS is not enabled on the table. Policies include %s.',
              n.nspname, c.relname, array_agg(p.polname ORDER BY p.polname)) AS detail,
       jsonb_build_object('schema', n.nspname, 'name', c.relname, 'type', 'table',
                          'policies', to_jsonb(array_agg(p.polname ORDER BY p.polname))) AS metadata,
       format('policy_exists_rls_disabled_%s_%s', n.nspname, c.relname) AS cache_key
FROM pg_catalog.pg_policy p
JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND NOT c.relrowsecurity
  AND n.nspname NOT IN (SELECT nspname FROM managed)
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
GROUP BY n.nspname, c.relname
ORDER BY n.nspname, c.relname
