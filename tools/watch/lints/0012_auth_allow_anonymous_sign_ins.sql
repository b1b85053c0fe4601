-- name: auth_allow_anonymous_sign_ins
-- title: Allows Anonymous Sign-ins
-- level: INFO
-- categories: SECURITY
-- requires: auth_config
-- description: With anonymous sign-ins enabled, anonymous users get the authenticated role, so policies written for signed-up users also admit them.
-- remediation: https://supabase.com/docs/guides/database/database-linter?lint=0012_auth_allow_anonymous_sign_ins
-- Supabase Auth's settings live outside the database: this lint is declared so it is named as skipped.
SELECT NULL::text AS detail, NULL::jsonb AS metadata, NULL::text AS cache_key WHERE false
