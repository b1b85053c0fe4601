-- name: security_definer_view
-- title: Security Definer View
-- level: ERROR
-- categories: SECURITY
-- requires: api_roles
-- description: Views without security_invoker run with their owner's privileges and row level security, not the querying user's; exposed to the API they bypass RLS.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0010_security_definer_view
SELECT format('View `%s.%s` is defined with the SECURITY DEFINER property', n.nspname, c.relname) AS detail,
       jsonb_build_object('schema', n.nspname, 'name', c.relname, 'type', 'view') AS metadata,
       format('security_definer_view_%s_%s', n.nspname, c.relname) AS cache_key
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'v'
  AND n.nspname IN (SELECT nspname FROM exposed)
  AND (pg_catalog.has_table_privilege('anon', c.oid, 'SELECT') OR pg_catalog.has_table_privilege('authenticated', c.oid, 'SELECT'))
  AND NOT coalesce((SELECT o.option_value FROM pg_catalog.pg_options_to_table(c.reloptions) o
                    WHERE o.option_name = 'security_invoker'), 'false')::bool
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
