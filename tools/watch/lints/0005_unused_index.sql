-- name: unused_index
-- title: Unused Index
-- level: INFO
-- categories: PERFORMANCE
-- description: Indexes never scanned since statistics were last reset cost writes and space for nothing; candidates for removal.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0005_unused_index
SELECT format('Index `%s` on table `%s.%s` has not been used', s.indexrelname, s.schemaname, s.relname) AS detail,
       jsonb_build_object('schema', s.schemaname, 'name', s.relname, 'type', 'table', 'index', s.indexrelname) AS metadata,
       format('unused_index_%s_%s_%s', s.schemaname, s.relname, s.indexrelname) AS cache_key
FROM pg_catalog.pg_stat_user_indexes s
JOIN pg_catalog.pg_index i ON i.indexrelid = s.indexrelid
WHERE s.idx_scan = 0
  AND NOT i.indisunique AND NOT i.indisprimary
  AND s.schemaname NOT IN (SELECT nspname FROM managed)
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.objid = s.relid AND d.deptype = 'e')
ORDER BY s.schemaname, s.relname, s.indexrelname
