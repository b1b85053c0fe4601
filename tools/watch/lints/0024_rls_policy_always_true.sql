-- name: rls_policy_always_true
-- title: RLS Policy Always True
-- level: WARN
-- categories: SECURITY
-- description: Permissive policies for public, anon or authenticated whose USING or WITH CHECK is always true on UPDATE, DELETE, INSERT or ALL: row level security is on but admits every row (SELECT using true is left alone: public read access is often deliberate).
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0024_permissive_rls_policy
WITH policies AS (
    SELECT n.nspname, c.relname, p.polname,
           CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                         WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS command,
           ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END FROM unnest(p.polroles) AS r) AS roles,
           pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS qual,
           pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
    FROM pg_catalog.pg_policy p
    JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND c.relrowsecurity AND p.polpermissive
      AND n.nspname NOT IN (SELECT nspname FROM managed)
), judged AS (
    SELECT *,
           command IN ('UPDATE', 'DELETE', 'ALL')
             AND (qual IS NULL OR regexp_replace(lower(qual), '\s', '', 'g') IN ('true', '(true)', '(1=1)', '1=1'))
             AS using_true,
           regexp_replace(lower(coalesce(with_check, '')), '\s', '', 'g') IN ('true', '(true)', '(1=1)', '1=1')
             OR (with_check IS NULL AND command = 'INSERT')
             OR (with_check IS NULL AND command IN ('UPDATE', 'ALL')
                 AND regexp_replace(lower(coalesce(qual, 'true')), '\s', '', 'g') IN ('true', '(true)', '(1=1)', '1=1'))
             AS check_true
    FROM policies
    WHERE roles && ARRAY['public', 'anon', 'authenticated']
)
SELECT format('Table `%s.%s` has an RLS policy `%s` for `%s` that allows unrestricted access%s. This effectively bypasses row-level security for %s.',
              nspname, relname, polname, command,
              CASE WHEN using_true AND check_true THEN ' (both USING and WITH CHECK are always true)'
                   WHEN using_true THEN ' (USING clause is always true)'
                   ELSE ' (WITH CHECK clause is always true)' END,
              array_to_string(roles, ', ')) AS detail,
       jsonb_build_object('schema', nspname, 'name', relname, 'type', 'table', 'policy_name', polname,
                          'command', command, 'roles', to_jsonb(roles), 'qual', qual, 'with_check', with_check,
                          'permissive_using', using_true, 'permissive_with_check', check_true) AS metadata,
       format('rls_policy_always_true_%s_%s_%s', nspname, relname, polname) AS cache_key
FROM judged
WHERE using_true OR check_true
ORDER BY nspname, relname, polname
