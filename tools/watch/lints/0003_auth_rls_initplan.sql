-- name: auth_rls_initplan
-- title: Auth RLS Initialization Plan
-- level: WARN
-- categories: PERFORMANCE
-- description: Row level security policies that call auth.<function>() or current_setting() directly are evaluated once per row; wrapped in (select ...) they are evaluated once per statement.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0003_auth_rls_initplan
WITH policies AS (
    SELECT n.nspname, c.relname, p.polname,
           coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '') || ' '
           || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '') AS expr
    FROM pg_catalog.pg_policy p
    JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relrowsecurity AND n.nspname NOT IN (SELECT nspname FROM managed)
)
SELECT format('Table `%s.%s` has a row level security policy `%s` that re-evaluates current_setting() or auth.<function>() for each row. This produces suboptimal query performance at scale. Resolve the issue by replacing `auth.<function>()` with `(select auth.<function>())`.',
              nspname, relname, polname) AS detail,
       jsonb_build_object('schema', nspname, 'name', relname, 'type', 'table', 'policy_name', polname) AS metadata,
       format('auth_rls_init_plan_%s_%s_%s', nspname, relname, polname) AS cache_key
FROM policies
-- more calls than calls wrapped in a scalar sub-select: at least one runs per row
WHERE regexp_count(expr, '(auth\.(uid|jwt|role|email)|current_setting)\(', 1, 'i')
    > regexp_count(expr, 'select\s+(auth\.(uid|jwt|role|email)|current_setting)\(', 1, 'i')
ORDER BY nspname, relname, polname
