-- name: table_bloat
-- title: Table Bloat
-- level: INFO
-- categories: PERFORMANCE
-- description: Tables whose pages hold far more space than their live rows need (over 70 times, and over 20 MB wasted), estimated from planner statistics.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0020_table_bloat
WITH widths AS (
    SELECT s.schemaname, s.tablename, sum((1 - s.null_frac) * s.avg_width) AS data_width,
           bool_or(s.null_frac > 0) AS has_nulls, count(*) AS columns
    FROM pg_catalog.pg_stats s
    WHERE NOT s.inherited
    GROUP BY s.schemaname, s.tablename
), estimates AS (
    SELECT n.nspname, c.relname, c.relpages::numeric AS pages, current_setting('block_size')::numeric AS block,
           greatest(ceil(greatest(c.reltuples, 0)::numeric
                         * (24 + CASE WHEN w.has_nulls THEN ceil(w.columns / 8.0) ELSE 0 END
                            + ceil(w.data_width / 8.0) * 8 + 4)
                         / (current_setting('block_size')::numeric - 24)), 1) AS needed
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN widths w ON w.schemaname = n.nspname AND w.tablename = c.relname
    WHERE c.relkind = 'r' AND c.relam = (SELECT oid FROM pg_catalog.pg_am WHERE amname = 'heap')
      AND n.nspname <> 'information_schema'
)
SELECT format('Table `%s`.`%s` has excessive bloat', nspname, relname) AS detail,
       jsonb_build_object('schema', nspname, 'name', relname, 'type', 'table', 'pages', pages,
                          'estimated_needed_pages', needed, 'wasted_bytes', (pages - needed) * block) AS metadata,
       format('table_bloat_%s_%s', nspname, relname) AS cache_key
FROM estimates
WHERE pages / needed > 70 AND (pages - needed) * block > 20 * 1024 * 1024
ORDER BY nspname, relname
