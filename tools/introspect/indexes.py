"""Indexes of tables and materialized views, with the constraint they back and their partition parent."""

from __future__ import annotations

import json
from collections.abc import Iterable

import asyncpg

from tools.introspect.filters import not_extension_member, schema_filter
from tools.model import Index, member_key, qname

INDEXES = f"""
SELECT n.nspname AS schema, ic.relname AS name, c.relname AS rel,
       pg_catalog.pg_get_indexdef(x.indexrelid) AS definition, am.amname AS method,
       x.indisunique AS is_unique, x.indisprimary AS is_primary, x.indisvalid AS valid,
       x.indnkeyatts AS nkey,
       CASE WHEN x.indexprs IS NULL
            THEN ARRAY(SELECT a.attname::text FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(num, ord)
                       JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.num
                       ORDER BY k.ord)
            ELSE ARRAY(SELECT pg_catalog.pg_get_indexdef(x.indexrelid, k, true)
                       FROM generate_series(1, x.indnatts) k ORDER BY k) END AS cols,
       pg_catalog.pg_get_expr(x.indpred, x.indrelid) AS predicate,
       (SELECT con.conname FROM pg_catalog.pg_constraint con
         WHERE con.conindid = x.indexrelid AND con.conrelid = x.indrelid AND con.contype IN ('p', 'u', 'x'))
         AS constraint_name,
       (SELECT json_build_array(pn.nspname, pc.relname) FROM pg_catalog.pg_inherits i
          JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
          JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
         WHERE i.inhrelid = x.indexrelid)::text AS parent,
       d.description AS comment
FROM pg_catalog.pg_index x
JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
JOIN pg_catalog.pg_class c ON c.oid = x.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
LEFT JOIN pg_catalog.pg_description d
  ON d.objoid = x.indexrelid AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0
WHERE c.relkind IN ('r', 'p', 'm') AND {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_class", "c.oid")}
"""


def indexes(rows: Iterable[asyncpg.Record]) -> tuple[Index, ...]:
    out = []
    for r in rows:
        schema = r["schema"]
        table = qname(schema, r["rel"])
        cols = tuple(r["cols"])
        nkey = r["nkey"]
        parent = None
        if r["parent"]:
            p = json.loads(r["parent"])
            parent = qname(p[0], p[1])
        out.append(
            Index(
                schema,
                r["name"],
                table,
                r["definition"],
                r["method"],
                r["is_unique"],
                r["is_primary"],
                cols[:nkey],
                cols[nkey:],
                r["predicate"],
                member_key(table, r["constraint_name"]) if r["constraint_name"] else None,
                parent,
                r["valid"],
                r["comment"],
            )
        )
    return tuple(sorted(out, key=lambda o: o.key))
