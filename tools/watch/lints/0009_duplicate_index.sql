-- name: duplicate_index
-- title: Duplicate Index
-- level: WARN
-- categories: PERFORMANCE
-- description: Two or more indexes on a table are identical (same method, keys, operator classes, expressions and predicate); all but one are pure overhead.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0009_duplicate_index
WITH indexes AS (
    SELECT n.nspname, c.relname, c.relkind, ic.relname AS index_name,
           ARRAY[ic.relam::text, i.indkey::text, i.indclass::text, i.indcollation::text, i.indoption::text,
                 i.indisunique::text, coalesce(pg_catalog.pg_get_expr(i.indexprs, i.indrelid), ''),
                 coalesce(pg_catalog.pg_get_expr(i.indpred, i.indrelid), '')] AS shape
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'm')
      AND n.nspname NOT IN (SELECT nspname FROM managed)
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
)
SELECT format('Table `%s.%s` has identical indexes %s. Drop all except one of them',
              nspname, relname, array_agg(index_name ORDER BY index_name)) AS detail,
       jsonb_build_object('schema', nspname, 'name', relname,
                          'type', CASE relkind WHEN 'm' THEN 'materialized view' ELSE 'table' END,
                          'indexes', to_jsonb(array_agg(index_name ORDER BY index_name))) AS metadata,
       format('duplicate_index_%s_%s_%s', nspname, relname, array_agg(index_name ORDER BY index_name)) AS cache_key
FROM indexes
GROUP BY nspname, relname, relkind, shape
HAVING count(*) > 1
ORDER BY nspname, relname
