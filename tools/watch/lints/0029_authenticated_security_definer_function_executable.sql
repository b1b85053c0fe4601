-- name: authenticated_security_definer_function_executable
-- title: Signed-In Users Can Execute SECURITY DEFINER Function
-- level: WARN
-- categories: SECURITY
-- requires: api_roles
-- description: SECURITY DEFINER functions in an exposed schema run with their owner's rights and bypass row level security; executable by authenticated, they can be called by every signed-in user through /rest/v1/rpc.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0029_authenticated_security_definer_function_executable
SELECT format('Function `%s.%s(%s)` can be executed by the `authenticated` role as a `SECURITY DEFINER` function via `/rest/v1/rpc/%s`. Revoke `EXECUTE` or switch it to `SECURITY INVOKER` if that is not intentional.',
              n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid), p.proname) AS detail,
       jsonb_build_object('schema', n.nspname, 'name', p.proname, 'type', 'function',
                          'arguments', pg_catalog.pg_get_function_identity_arguments(p.oid),
                          'language', l.lanname, 'security_definer', true) AS metadata,
       format('authenticated_security_definer_function_executable_%s_%s_%s', n.nspname, p.proname,
              pg_catalog.pg_get_function_identity_arguments(p.oid)) AS cache_key
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE p.prosecdef
  AND n.nspname IN (SELECT nspname FROM exposed)
  AND pg_catalog.has_function_privilege('authenticated', p.oid, 'EXECUTE')
ORDER BY n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)
