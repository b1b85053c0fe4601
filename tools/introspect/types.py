"""User-defined types: enums, domains (with their CHECK constraints) and composite types."""

from __future__ import annotations

import json
from collections.abc import Iterable

import asyncpg

from pgshift.tools.introspect.filters import not_extension_member, schema_filter
from pgshift.tools.model import Attribute, CheckConstraint, CompositeType, Domain, Enum, qname
from pgshift.tools.sql import quote_ident

_TYPE_COMMENT = """LEFT JOIN pg_catalog.pg_description d
  ON d.objoid = t.oid AND d.classoid = 'pg_catalog.pg_type'::regclass AND d.objsubid = 0"""

ENUMS = f"""
SELECT n.nspname AS schema, t.typname AS name, d.description AS comment,
       ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
         AS labels
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
{_TYPE_COMMENT}
WHERE t.typtype = 'e' AND {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_type", "t.oid")}
"""


def enums(rows: Iterable[asyncpg.Record]) -> tuple[Enum, ...]:
    out = [Enum(r["schema"], r["name"], tuple(r["labels"]), r["comment"]) for r in rows]
    return tuple(sorted(out, key=lambda o: o.key))


# Domain NOT NULL is typnotnull (PostgreSQL 17+ also stores it as a contype 'n' constraint: not read).
DOMAINS = f"""
SELECT n.nspname AS schema, t.typname AS name, pg_catalog.format_type(t.typbasetype, t.typtypmod) AS base_type,
       t.typnotnull AS not_null, pg_catalog.pg_get_expr(t.typdefaultbin, 0) AS "default",
       CASE WHEN t.typcollation <> b.typcollation THEN cn.nspname END AS collation_schema,
       CASE WHEN t.typcollation <> b.typcollation THEN co.collname END AS collation_name,
       d.description AS comment,
       (SELECT json_agg(json_build_array(c.conname, pg_catalog.pg_get_constraintdef(c.oid), c.convalidated)
                        ORDER BY c.conname)
          FROM pg_catalog.pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c') AS checks
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
JOIN pg_catalog.pg_type b ON b.oid = t.typbasetype
LEFT JOIN pg_catalog.pg_collation co ON co.oid = t.typcollation
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
{_TYPE_COMMENT}
WHERE t.typtype = 'd' AND {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_type", "t.oid")}
"""


def collation_key(schema: str | None, name: str | None) -> str | None:
    """A collation as a key: qualified, except pg_catalog's (`"C"`, `"POSIX"`, `ucs_basic`)."""
    if name is None:
        return None
    if schema is None or schema == "pg_catalog":
        return quote_ident(name)
    return qname(schema, name)


def domains(rows: Iterable[asyncpg.Record]) -> tuple[Domain, ...]:
    out = []
    for r in rows:
        checks = tuple(CheckConstraint(c[0], c[1], c[2]) for c in json.loads(r["checks"] or "[]"))
        out.append(
            Domain(
                r["schema"],
                r["name"],
                r["base_type"],
                r["not_null"],
                r["default"],
                collation_key(r["collation_schema"], r["collation_name"]),
                checks,
                r["comment"],
            )
        )
    return tuple(sorted(out, key=lambda o: o.key))


COMPOSITES = f"""
SELECT n.nspname AS schema, t.typname AS name, d.description AS comment,
       (SELECT json_agg(json_build_array(a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
                                         CASE WHEN a.attcollation <> at.typcollation THEN cn.nspname END,
                                         CASE WHEN a.attcollation <> at.typcollation THEN co.collname END)
                        ORDER BY a.attnum)
          FROM pg_catalog.pg_attribute a
          JOIN pg_catalog.pg_type at ON at.oid = a.atttypid
          LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
          LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
         WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) AS attributes
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
JOIN pg_catalog.pg_class r ON r.oid = t.typrelid AND r.relkind = 'c'
{_TYPE_COMMENT}
WHERE t.typtype = 'c' AND {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_type", "t.oid")}
"""


def composite_types(rows: Iterable[asyncpg.Record]) -> tuple[CompositeType, ...]:
    out = []
    for r in rows:
        attrs = tuple(Attribute(a[0], a[1], collation_key(a[2], a[3])) for a in json.loads(r["attributes"] or "[]"))
        out.append(CompositeType(r["schema"], r["name"], attrs, r["comment"]))
    return tuple(sorted(out, key=lambda o: o.key))
