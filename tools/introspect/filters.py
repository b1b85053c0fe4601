"""Which schemas an introspection reads: SQL fragments shared by every catalog query.

Every query takes the same two bind parameters: `$1` the excluded schemas (text[]) and `$2` the
included schemas (text[] or NULL for all). System schemas (`pg_*`, information_schema) are always out.
"""

from __future__ import annotations

from collections.abc import Sequence

from pgshift.tools.sql import quote_literal

# Schemas Supabase creates and manages; excluded unless the caller asks for them. References into
# them (a foreign key to auth.users, a policy calling auth.uid()) stay in the model as references.
SUPABASE_MANAGED_SCHEMAS: tuple[str, ...] = (
    "_analytics",
    "_realtime",
    "_supavisor",
    "auth",
    "cron",
    "extensions",
    "graphql",
    "graphql_public",
    "net",
    "pgbouncer",
    "pgmq",
    "pgsodium",
    "pgsodium_masks",
    "pgtle",
    "realtime",
    "repack",
    "storage",
    "supabase_functions",
    "supabase_migrations",
    "tiger",
    "tiger_data",
    "topology",
    "vault",
)

# Roles the Supabase platform owns. Supabase grants them privileges on its own (USAGE on public, default
# privileges on every new table), so a local database never has those grants: which of their grants are the
# platform's and which the app's is decided in `tools.introspect.platform` (everything is compared with
# include_managed).
SUPABASE_PLATFORM_ROLES: tuple[str, ...] = (
    "anon",
    "authenticated",
    "authenticator",
    "dashboard_user",
    "pgbouncer",
    "service_role",
    "supabase_admin",
    "supabase_auth_admin",
    "supabase_functions_admin",
    "supabase_read_only_user",
    "supabase_realtime_admin",
    "supabase_replication_admin",
    "supabase_storage_admin",
)

SYSTEM_SCHEMAS: tuple[str, ...] = ("information_schema", "pg_catalog", "pg_toast")

# Migration history, never schema: pgshift's ledger schema, Supabase CLI's history schema (both always left
# out, even when named or with include_managed) and Prisma's table, in whatever schema Prisma keeps it.
# `tools.ledger`, which writes them, takes these names from here.
LEDGER_SCHEMA = "pgshift"
SUPABASE_HISTORY_SCHEMA = "supabase_migrations"
PRISMA_HISTORY_TABLE = "_prisma_migrations"
HISTORY_SCHEMAS: tuple[str, ...] = (LEDGER_SCHEMA, SUPABASE_HISTORY_SCHEMA)
HISTORY_TABLES: tuple[str, ...] = (PRISMA_HISTORY_TABLE,)

# Publications Supabase creates for itself: never drift when only the target has them (see `tools.model.Publication`).
SUPABASE_PLATFORM_PUBLICATIONS: tuple[str, ...] = ("supabase_realtime", "supabase_realtime_messages_publication")

# Extensions a Supabase project has from the start, in its own schemas (supabase/postgres's init scripts create
# uuid-ossp, pgcrypto and pgjwt in `extensions`, stat_extension.sql pg_stat_statements; pg_graphql, supabase_vault
# and pgsodium come with their schemas; pgjwt is not shipped from PostgreSQL 17 on). Marked `platform` only where
# they live in a managed schema (see `tools.introspect.platform`).
SUPABASE_DEFAULT_EXTENSIONS: tuple[str, ...] = (
    "pg_graphql",
    "pg_stat_statements",
    "pgcrypto",
    "pgjwt",
    "pgsodium",
    "plpgsql",
    "supabase_vault",
    "uuid-ossp",
)


def schema_filter(alias: str) -> str:
    """SQL predicate on `<alias>.nspname` using the bind parameters $1 (excluded) and $2 (included or NULL)."""
    return (
        f"({alias}.nspname <> ALL($1::text[]) AND {alias}.nspname NOT LIKE 'pg\\_%'"
        f" AND ($2::text[] IS NULL OR {alias}.nspname = ANY($2::text[])))"
    )


def in_managed_schema(alias: str) -> str:
    """SQL predicate: `<alias>.nspname` is a Supabase-managed schema. The app's own objects on the platform's tables
    (a trigger on auth.users, a policy on storage.objects) are read through this even when the managed schemas
    are left out."""
    names = ", ".join(quote_literal(s) for s in SUPABASE_MANAGED_SCHEMAS)
    return f"{alias}.nspname = ANY(ARRAY[{names}]::text[])"


def whole_database() -> str:
    """SQL predicate: no schema selection was given (objects that belong to no schema are read only then). Names
    both bind parameters, so a query that uses no other filter still takes the same two."""
    return "($2::text[] IS NULL AND $1::text[] IS NOT NULL)"


def not_extension_member(catalog: str, oid_expr: str) -> str:
    """SQL predicate: the object `oid_expr` of system catalog `catalog` was not created by an extension."""
    return (
        f"NOT EXISTS (SELECT FROM pg_catalog.pg_depend x WHERE x.classid = '{catalog}'::regclass"
        f" AND x.objid = {oid_expr} AND x.deptype = 'e')"
    )


def not_generated_for(catalog: str, oid_expr: str) -> str:
    """SQL predicate: the object `oid_expr` of system catalog `catalog` was not made by PostgreSQL for another object
    (pg_depend deptype 'i': a range type's constructor functions)."""
    return (
        f"NOT EXISTS (SELECT FROM pg_catalog.pg_depend x WHERE x.classid = '{catalog}'::regclass"
        f" AND x.objid = {oid_expr} AND x.deptype = 'i')"
    )


def filter_args(schemas: Sequence[str] | None, include_managed: bool) -> tuple[list[str], list[str] | None]:
    """The ($1, $2) bind values for a schema selection."""
    always = (*SYSTEM_SCHEMAS, *HISTORY_SCHEMAS)
    excluded = list(always) + ([] if include_managed else [s for s in SUPABASE_MANAGED_SCHEMAS if s not in always])
    if schemas is not None:
        # Naming a managed schema explicitly includes it.
        excluded = [s for s in excluded if s not in schemas or s in always]
    return excluded, (list(schemas) if schemas is not None else None)
