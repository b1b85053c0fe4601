"""Schemas, extensions and collations."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from pgshift.tools.introspect.filters import not_extension_member, schema_filter
from pgshift.tools.model import Collation, Extension, Namespace

NAMESPACES = f"""
SELECT n.nspname AS name, d.description AS comment
FROM pg_catalog.pg_namespace n
LEFT JOIN pg_catalog.pg_description d
  ON d.objoid = n.oid AND d.classoid = 'pg_catalog.pg_namespace'::regclass AND d.objsubid = 0
WHERE {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_namespace", "n.oid")}
"""


def namespaces(rows: Iterable[asyncpg.Record]) -> tuple[Namespace, ...]:
    return tuple(sorted((Namespace(r["name"], r["comment"]) for r in rows), key=lambda o: o.key))


# Extensions are database-wide: read whatever schema they live in (the caller filters defaults out). The same
# query lists every version the server could install, and its default ones (see `available_extensions`).
EXTENSIONS = """
SELECT 'installed' AS row, e.extname AS name, n.nspname AS schema, e.extversion AS version, d.description AS comment
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
LEFT JOIN pg_catalog.pg_description d
  ON d.objoid = e.oid AND d.classoid = 'pg_catalog.pg_extension'::regclass AND d.objsubid = 0
WHERE e.extname <> 'plpgsql'
UNION ALL
SELECT 'available', a.name, NULL, a.version, NULL FROM pg_catalog.pg_available_extension_versions a
UNION ALL
SELECT 'default', a.name, NULL, a.default_version, NULL FROM pg_catalog.pg_available_extensions a
"""


def extensions(
    rows: Iterable[asyncpg.Record],
    skip: Iterable[str],
    schemas: Iterable[str] | None = None,
    platform: Iterable[str] = (),
    platform_schemas: Iterable[str] = (),
) -> tuple[Extension, ...]:
    """Extensions, minus the `skip` names; the `platform` ones installed in a `platform_schemas` schema (what
    Supabase installs for itself) are marked `platform`. Only those installed in `schemas` when schemas are named.
    """
    skipped, ours, managed = set(skip), set(platform), set(platform_schemas)
    wanted = set(schemas) if schemas is not None else None
    out = [
        Extension(
            r["name"],
            r["schema"],
            r["version"],
            r["comment"],
            platform=r["name"] in ours and r["schema"] in managed,
        )
        for r in rows
        if r["row"] == "installed" and r["name"] not in skipped and (wanted is None or r["schema"] in wanted)
    ]
    return tuple(sorted(out, key=lambda o: o.key))


def available_extensions(rows: Iterable[asyncpg.Record], row: str = "available") -> frozenset[tuple[str, str]]:
    """(name, version) of every extension version the server could install (`row` "available"), or of every
    extension's default version (`row` "default": what CREATE EXTENSION without VERSION installs)."""
    return frozenset((r["name"], r["version"]) for r in rows if r["row"] == row)


# A Supabase database has these three schemas (the same test as `check_migration`'s).
SUPABASE = "SELECT count(*) = 3 FROM pg_catalog.pg_namespace WHERE nspname IN ('auth', 'storage', 'extensions')"


# colllocale (PostgreSQL 17+) was colliculocale before: read either through to_jsonb.
COLLATIONS = f"""
SELECT n.nspname AS schema, c.collname AS name, c.collprovider::text AS provider,
       coalesce(to_jsonb(c) ->> 'colllocale', to_jsonb(c) ->> 'colliculocale', c.collcollate) AS locale,
       c.collctype AS ctype, c.collisdeterministic AS deterministic, d.description AS comment
FROM pg_catalog.pg_collation c
JOIN pg_catalog.pg_namespace n ON n.oid = c.collnamespace
LEFT JOIN pg_catalog.pg_description d
  ON d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_collation'::regclass AND d.objsubid = 0
WHERE {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_collation", "c.oid")}
"""


def collations(rows: Iterable[asyncpg.Record]) -> tuple[Collation, ...]:
    out = [
        Collation(
            r["schema"],
            r["name"],
            r["provider"],
            r["locale"],
            r["ctype"] if r["provider"] == "c" else None,
            r["deterministic"],
            r["comment"],
        )
        for r in rows
    ]
    return tuple(sorted(out, key=lambda o: o.key))
