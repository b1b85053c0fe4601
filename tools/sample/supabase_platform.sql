-- What a hosted Supabase project gives the API roles in schema public, from supabase/postgres's init script
-- (migrations/db/init-scripts/00000000000000-initial-schema.sql):
--   grant usage on schema public to postgres, anon, authenticated, service_role;
--   alter default privileges in schema public grant all on tables|functions|sequences to postgres, anon, ...;
-- Run by drift's replay as the role that replays the migrations (it owns the copy, as postgres owns a project's
-- objects), so every table, sequence and function a migration creates in public gets the grants it gets on the
-- project. Not in supabase_shape.sql: tests load that shape as a superuser and grant by hand.
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
