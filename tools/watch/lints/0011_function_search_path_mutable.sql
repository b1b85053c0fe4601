-- name: function_search_path_mutable
-- title: Function Search Path Mutable
-- level: WARN
-- categories: SECURITY
-- description: Functions without their own search_path setting resolve names through the caller's search_path, which a caller can point at objects of their choosing.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0011_function_search_path_mutable
SELECT format('Function `%s.%s` has a role mutable search_path', n.nspname, p.proname) AS detail,
       jsonb_build_object('schema', n.nspname, 'name', p.proname, 'type', 'function',
                          'arguments', pg_catalog.pg_get_function_identity_arguments(p.oid)) AS metadata,
       format('function_search_path_mutable_%s_%s_%s', n.nspname, p.proname, md5(p.prosrc)) AS cache_key
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE p.prokind IN ('f', 'p')
  AND n.nspname NOT IN (SELECT nspname FROM managed)
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
  AND NOT EXISTS (SELECT FROM unnest(p.proconfig) AS setting WHERE setting LIKE 'search\_path=%')
ORDER BY n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)
