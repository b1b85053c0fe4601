-- name: extension_in_public
-- title: Extension in Public
-- level: WARN
-- categories: SECURITY
-- description: Extensions installed in an API-exposed schema (public by default) put their functions and tables on the API and in every user's search_path.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0014_extension_in_public
SELECT format('Extension `%s` is installed in the %s schema. Move it to another schema.', e.extname, n.nspname) AS detail,
       jsonb_build_object('schema', n.nspname, 'name', e.extname, 'type', 'extension') AS metadata,
       format('extension_in_public_%s', e.extname) AS cache_key
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname <> 'plpgsql'
  AND n.nspname IN (SELECT nspname FROM exposed)
ORDER BY e.extname
