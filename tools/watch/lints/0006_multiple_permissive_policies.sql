-- name: multiple_permissive_policies
-- title: Multiple Permissive Policies
-- level: WARN
-- categories: PERFORMANCE
-- description: Several permissive policies for the same role and action on one table are all evaluated (OR-ed) for every row; one combined policy is cheaper.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0006_multiple_permissive_policies
WITH applied AS (
    SELECT n.nspname, c.relname, r.rolname, a.action, p.polname
    FROM pg_catalog.pg_policy p
    JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_roles r ON r.oid = ANY (p.polroles) OR p.polroles = '{0}'::oid[]
    CROSS JOIN LATERAL unnest(CASE p.polcmd WHEN 'r' THEN ARRAY['SELECT'] WHEN 'a' THEN ARRAY['INSERT']
                                            WHEN 'w' THEN ARRAY['UPDATE'] WHEN 'd' THEN ARRAY['DELETE']
                                            ELSE ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'] END) AS a(action)
    WHERE c.relkind = 'r' AND p.polpermissive
      AND n.nspname NOT IN (SELECT nspname FROM managed)
      AND r.rolname NOT LIKE 'pg\_%' AND r.rolname NOT LIKE 'supabase%admin'
      AND NOT r.rolbypassrls AND NOT r.rolsuper
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
)
SELECT format('Table `%s.%s` has multiple permissive policies for role `%s` for action `%s`. Policies include `%s`',
              nspname, relname, rolname, action, array_agg(polname ORDER BY polname)) AS detail,
       jsonb_build_object('schema', nspname, 'name', relname, 'type', 'table', 'role', rolname, 'action', action,
                          'policies', to_jsonb(array_agg(polname ORDER BY polname))) AS metadata,
       format('multiple_permissive_policies_%s_%s_%s_%s', nspname, relname, rolname, action) AS cache_key
FROM applied
GROUP BY nspname, relname, rolname, action
HAVING count(*) > 1
ORDER BY nspname, relname, rolname, action
