-- name: unsupported_reg_types
-- title: Unsupported reg types
-- level: WARN
-- categories: SECURITY
-- description: Columns of reg* types that store OIDs pg_upgrade cannot carry over (regproc, regoper, regconfig, ...) block major-version upgrades.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=unsupported_reg_types
SELECT format('Table `%s.%s` has a column `%s` with unsupported reg* type `%s`.', n.nspname, c.relname, a.attname, t.typname) AS detail,
       jsonb_build_object('schema', n.nspname, 'name', c.relname, 'column', a.attname, 'type', 'table') AS metadata,
       format('unsupported_reg_types_%s_%s_%s', n.nspname, c.relname, a.attname) AS cache_key
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE a.attnum > 0 AND NOT a.attisdropped
  AND c.relkind IN ('r', 'p', 'm')
  AND t.typnamespace = 'pg_catalog'::regnamespace
  AND t.typname IN ('regcollation', 'regconfig', 'regdictionary', 'regnamespace', 'regoper', 'regoperator',
                    'regproc', 'regprocedure')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
ORDER BY n.nspname, c.relname, a.attname
