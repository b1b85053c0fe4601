-- name: rls_references_user_metadata
-- title: RLS references user metadata
-- level: ERROR
-- categories: SECURITY
-- description: A row level security policy reads user_metadata from the JWT; end users can edit their own user_metadata, so it must never decide access.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0015_rls_references_user_metadata
WITH policies AS (
    SELECT n.nspname, c.relname, p.polname,
           coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '') || ' '
           || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '') AS expr
    FROM pg_catalog.pg_policy p
    JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN (SELECT nspname FROM managed)
)
SELECT format('Table `%s.%s` has a row level security policy `%s` that references Supabase Auth `user_metadata`. `user_metadata` is editable by end users and should never be used in a security context.',
              nspname, relname, polname) AS detail,
       jsonb_build_object('schema', nspname, 'name', relname, 'type', 'table', 'policy_name', polname) AS metadata,
       format('rls_references_user_metadata_%s_%s_%s', nspname, relname, polname) AS cache_key
FROM policies
WHERE expr ~* '(auth\.jwt\(\)|request\.jwt\.claims).*user_metadata'
ORDER BY nspname, relname, polname
