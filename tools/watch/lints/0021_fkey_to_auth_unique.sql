-- name: fkey_to_auth_unique
-- title: Foreign Key to Auth Unique Constraint
-- level: ERROR
-- categories: SECURITY
-- requires: auth
-- description: Foreign keys to a unique constraint (other than the primary key) of an auth table depend on a constraint Supabase Auth may change or drop in an upgrade.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0021_fkey_to_auth_unique
SELECT format('Table `%s`.`%s` has a foreign key `%s` referencing an auth unique constraint', n.nspname, c.relname, con.conname) AS detail,
       jsonb_build_object('schema', n.nspname, 'name', c.relname, 'type', 'table', 'foreign_key', con.conname,
                          'references', format('%s.%s', rn.nspname, r.relname)) AS metadata,
       format('fkey_to_auth_unique_%s_%s_%s', n.nspname, c.relname, con.conname) AS cache_key
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_class r ON r.oid = con.confrelid
JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
JOIN pg_catalog.pg_index i ON i.indexrelid = con.conindid
WHERE con.contype = 'f' AND rn.nspname = 'auth' AND i.indisunique AND NOT i.indisprimary
ORDER BY n.nspname, c.relname, con.conname
