-- name: extension_versions_outdated
-- title: Extension Versions Outdated
-- level: WARN
-- categories: SECURITY
-- description: Extensions installed at an older version than the server's default, which may lack security fixes; ALTER EXTENSION ... UPDATE brings them up to date.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0022_extension_versions_outdated
SELECT format('Extension `%s` is using version `%s` but version `%s` is available. Using outdated extension versions may expose the database to security vulnerabilities.',
              x.name, x.installed_version, x.default_version) AS detail,
       jsonb_build_object('name', x.name, 'type', 'extension', 'extension_name', x.name,
                          'installed_version', x.installed_version, 'default_version', x.default_version) AS metadata,
       format('extension_versions_outdated_%s_%s', x.name, x.installed_version) AS cache_key
FROM pg_catalog.pg_available_extensions x
WHERE x.installed_version IS NOT NULL AND x.default_version IS NOT NULL
  AND x.installed_version <> x.default_version
  -- the installed version is still one the server knows (not a leftover of pg_upgrade)
  AND EXISTS (SELECT FROM pg_catalog.pg_available_extension_versions v
              WHERE v.name = x.name AND v.version = x.installed_version)
ORDER BY x.name
