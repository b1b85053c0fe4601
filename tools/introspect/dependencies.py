"""Dependencies between user objects, from pg_depend, resolved to (kind, key) pairs.

Read only when asked for (a planner needs them to order statements; a comparison does not). The dependent
side is in the selected schemas; the referenced side may be anywhere outside the system schemas, so a
reference into a managed schema (a view over auth.users) is kept. Objects created by extensions are left out.
"""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from pgshift.tools.introspect.filters import schema_filter
from pgshift.tools.model import Dependency, member_key, qname
from pgshift.tools.sql import quote_ident

_RELKIND = """CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'view'
  WHEN 'S' THEN 'sequence' WHEN 'c' THEN 'composite_type' ELSE 'index' END"""

DEPENDENCIES = f"""
WITH obj AS MATERIALIZED (
  SELECT 'pg_catalog.pg_class'::regclass::oid AS classid, c.oid AS objid, {_RELKIND} AS kind,
         n.nspname, c.relname AS name, NULL::text AS parent
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'c', 'i', 'I')
  UNION ALL
  SELECT 'pg_catalog.pg_type'::regclass::oid, t.oid,
         CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' ELSE {_RELKIND} END,
         n.nspname, coalesce(c.relname, t.typname), NULL
  FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
  LEFT JOIN pg_catalog.pg_class c ON c.oid = t.typrelid
  WHERE t.typtype IN ('e', 'd', 'c')
  UNION ALL
  SELECT 'pg_catalog.pg_proc'::regclass::oid, p.oid, 'function', n.nspname,
         p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  WHERE p.prokind IN ('f', 'p', 'w') AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
  UNION ALL
  SELECT 'pg_catalog.pg_rewrite'::regclass::oid, r.oid, 'view', n.nspname, c.relname, NULL
  FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('v', 'm')
  UNION ALL
  SELECT 'pg_catalog.pg_attrdef'::regclass::oid, ad.oid, 'column', n.nspname, a.attname, c.relname
  FROM pg_catalog.pg_attrdef ad JOIN pg_catalog.pg_class c ON c.oid = ad.adrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
  UNION ALL
  SELECT 'pg_catalog.pg_constraint'::regclass::oid, con.oid,
         CASE WHEN con.contypid <> 0 THEN 'domain' ELSE 'constraint' END, n.nspname,
         CASE WHEN con.contypid <> 0 THEN t.typname ELSE con.conname END,
         CASE WHEN con.contypid <> 0 THEN NULL ELSE c.relname END
  FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_namespace n ON n.oid = con.connamespace
  LEFT JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
  LEFT JOIN pg_catalog.pg_type t ON t.oid = con.contypid
  WHERE con.contype IN ('p', 'f', 'u', 'c', 'x')
  UNION ALL
  SELECT 'pg_catalog.pg_trigger'::regclass::oid, tg.oid, 'trigger', n.nspname, tg.tgname, c.relname
  FROM pg_catalog.pg_trigger tg JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE NOT tg.tgisinternal
  UNION ALL
  SELECT 'pg_catalog.pg_policy'::regclass::oid, po.oid, 'policy', n.nspname, po.polname, c.relname
  FROM pg_catalog.pg_policy po JOIN pg_catalog.pg_class c ON c.oid = po.polrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  UNION ALL
  SELECT 'pg_catalog.pg_collation'::regclass::oid, co.oid, 'collation', n.nspname, co.collname, NULL
  FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace n ON n.oid = co.collnamespace
  WHERE n.nspname <> 'pg_catalog'
), ext AS MATERIALIZED (  -- objects created by extensions (two hashed anti-joins below, not a per-row OR probe)
  SELECT classid, objid FROM pg_catalog.pg_depend WHERE deptype = 'e'
)
SELECT o.kind, o.nspname AS schema, o.name, o.parent, oa.attname AS column_name,
       r.kind AS on_kind, r.nspname AS on_schema, r.name AS on_name, r.parent AS on_parent,
       ra.attname AS on_column_name
FROM pg_catalog.pg_depend d
JOIN obj o ON o.classid = d.classid AND o.objid = d.objid
JOIN obj r ON r.classid = d.refclassid AND r.objid = d.refobjid
LEFT JOIN pg_catalog.pg_attribute oa
  ON d.objsubid > 0 AND d.classid = 'pg_catalog.pg_class'::regclass AND oa.attrelid = d.objid AND oa.attnum = d.objsubid
LEFT JOIN pg_catalog.pg_attribute ra
  ON d.refobjsubid > 0 AND d.refclassid = 'pg_catalog.pg_class'::regclass
     AND ra.attrelid = d.refobjid AND ra.attnum = d.refobjsubid
WHERE d.deptype IN ('n', 'a', 'i') AND {schema_filter("o")}
  AND r.nspname NOT LIKE 'pg\\_%' AND r.nspname <> 'information_schema'
  AND NOT EXISTS (SELECT FROM ext x WHERE x.classid = d.classid AND x.objid = d.objid)
  AND NOT EXISTS (SELECT FROM ext x WHERE x.classid = d.refclassid AND x.objid = d.refobjid)
"""
# No DISTINCT: pg_depend may repeat a pair (several columns of one view, say); `dependencies` keeps a set, which
# costs less than PostgreSQL's sort of every row (it spilled to disk at 5,000 tables).


def _key(kind: str, schema: str, name: str, parent: str | None, column: str | None) -> tuple[str, str]:
    if kind == "function":
        return kind, f"{qname(schema, name)}({parent or ''})"
    if kind == "schema":
        return kind, quote_ident(name)
    if parent is not None:  # constraint, trigger, policy, column default: scoped to a table
        return kind, member_key(qname(schema, parent), name)
    if column is not None:
        return "column", member_key(qname(schema, name), column)
    return kind, qname(schema, name)


def dependencies(rows: Iterable[asyncpg.Record]) -> tuple[Dependency, ...]:
    out: set[Dependency] = set()
    # Functions carry their identity arguments in `parent` (see the query).
    for kind, schema, name, parent, column, on_kind, on_schema, on_name, on_parent, on_column in rows:
        kind, key = _key(kind, schema, name, parent, column)
        on_kind, on_key = _key(on_kind, on_schema, on_name, on_parent, on_column)
        if (kind, key) == (on_kind, on_key) or (
            key.startswith(on_key + ".") and on_kind == "table" and kind == "column"
        ):
            continue  # a view's rule on the view itself, a column default on its own table
        out.add(Dependency(kind, key, on_kind, on_key))
    return tuple(sorted(out, key=lambda d: (d.kind, d.key, d.on_kind, d.on_key)))
