-- name: unindexed_foreign_keys
-- title: Unindexed foreign keys
-- level: INFO
-- categories: PERFORMANCE
-- description: Foreign keys whose columns do not lead any index: joins on them, and every delete or key update on the referenced table, scan the whole referencing table.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0001_unindexed_foreign_keys
SELECT format('Table `%s.%s` has a foreign key `%s` without a covering index. This can lead to suboptimal query performance.',
              n.nspname, c.relname, con.conname) AS detail,
       jsonb_build_object('schema', n.nspname, 'name', c.relname, 'type', 'table',
                          'fkey_name', con.conname, 'fkey_columns', to_jsonb(con.conkey)) AS metadata,
       format('unindexed_foreign_keys_%s_%s_%s', n.nspname, c.relname, con.conname) AS cache_key
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE con.contype = 'f'
  AND n.nspname NOT IN (SELECT nspname FROM managed)
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
  AND NOT EXISTS (
      -- an index whose leading columns are exactly the key's columns (in any order) covers it
      SELECT FROM pg_catalog.pg_index i
      WHERE i.indrelid = con.conrelid AND i.indisvalid AND i.indpred IS NULL
        AND (SELECT array_agg(k.attnum ORDER BY k.attnum)
             FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
             WHERE k.position <= cardinality(con.conkey))
            = (SELECT array_agg(a ORDER BY a) FROM unnest(con.conkey) AS a))
ORDER BY n.nspname, c.relname, con.conname
