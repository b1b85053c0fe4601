-- name: no_primary_key
-- title: No Primary Key
-- level: INFO
-- categories: PERFORMANCE
-- description: Tables without a primary key cannot be updated row by row through most tools (and logical replication) and are slow to work with at scale.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0004_no_primary_key
SELECT format('Table `%s.%s` does not have a primary key', n.nspname, c.relname) AS detail,
       jsonb_build_object('schema', n.nspname, 'name', c.relname, 'type', 'table') AS metadata,
       format('no_primary_key_%s_%s', n.nspname, c.relname) AS cache_key
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN (SELECT nspname FROM managed)
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
