"""GRANTs on schemas, tables, views, sequences, columns, functions and types, one row per grantee.

An object's owner is left out (owners differ between environments and hold every privilege anyway);
a function whose ACL is the default shows PostgreSQL's default grant (EXECUTE to PUBLIC).
"""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from pgshift.tools.introspect.filters import not_extension_member, not_generated_for, schema_filter
from pgshift.tools.introspect.platform import PlatformGrants
from pgshift.tools.model import Privilege, member_key, qname
from pgshift.tools.sql import quote_ident

PRIVILEGES = f"""
WITH acl AS (
  SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                        ELSE 'TABLE' END AS kind,
         n.nspname AS schema, c.relname AS name, NULL::text AS sub, c.relowner AS owner, c.relacl AS acl
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND c.relacl IS NOT NULL
    AND {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_class", "c.oid")}
  UNION ALL
  SELECT 'COLUMN', n.nspname, c.relname, a.attname, c.relowner, a.attacl
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')
    AND {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_class", "c.oid")}
  UNION ALL
  SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, n.nspname, p.proname,
         pg_catalog.pg_get_function_identity_arguments(p.oid), p.proowner,
         coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  WHERE p.prokind IN ('f', 'p', 'w') AND {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_proc", "p.oid")}
  AND {not_generated_for("pg_catalog.pg_proc", "p.oid")}
  UNION ALL
  SELECT 'SCHEMA', n.nspname, NULL, NULL, n.nspowner, n.nspacl
  FROM pg_catalog.pg_namespace n
  WHERE n.nspacl IS NOT NULL AND {schema_filter("n")}
    AND {not_extension_member("pg_catalog.pg_namespace", "n.oid")}
  UNION ALL
  SELECT 'TYPE', n.nspname, t.typname, NULL, t.typowner, t.typacl
  FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
  WHERE t.typacl IS NOT NULL AND t.typtype IN ('e', 'd')
    AND {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_type", "t.oid")}
)
SELECT a.kind, a.schema, a.name, a.sub, pg_catalog.pg_get_userbyid(a.owner) AS owner,
       CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE r.rolname END AS grantee,
       array_agg(x.privilege_type ORDER BY x.privilege_type) AS privileges,
       array_agg(x.privilege_type ORDER BY x.privilege_type) FILTER (WHERE x.is_grantable) AS grantable
FROM acl a
CROSS JOIN LATERAL pg_catalog.aclexplode(a.acl) x
LEFT JOIN pg_catalog.pg_roles r ON r.oid = x.grantee
WHERE x.grantee <> a.owner
GROUP BY a.kind, a.schema, a.name, a.sub, a.owner, x.grantee, r.rolname
"""


def _object_key(kind: str, schema: str, name: str | None, sub: str | None) -> str:
    if kind == "SCHEMA":
        return quote_ident(schema)
    assert name is not None
    if kind == "COLUMN":
        assert sub is not None
        return member_key(qname(schema, name), sub)
    if kind in ("FUNCTION", "PROCEDURE"):
        return f"{qname(schema, name)}({sub})"
    return qname(schema, name)


def privileges(rows: Iterable[asyncpg.Record], platform: PlatformGrants | None = None) -> tuple[Privilege, ...]:
    """Privileges from the catalog rows; the platform's (`tools.introspect.platform`: what Supabase's default
    privileges give its roles, its USAGE grants on public) are marked `platform`."""
    rule = platform or PlatformGrants(include_managed=True)
    out = [
        Privilege(
            r["kind"],
            _object_key(r["kind"], r["schema"], r["name"], r["sub"]),
            r["grantee"] or "PUBLIC",
            tuple(r["privileges"]),
            tuple(r["grantable"] or ()),
            platform=rule.is_platform(
                r["kind"], r["schema"], r["owner"], r["grantee"] or "PUBLIC", r["privileges"], r["grantable"] or ()
            ),
        )
        for r in rows
    ]
    return tuple(sorted(out, key=lambda o: o.key))
