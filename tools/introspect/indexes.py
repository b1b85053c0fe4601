"""Indexes of tables and materialized views, with the constraint they back and their partition parent."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from pgshift.tools.introspect.filters import not_extension_member, schema_filter
from pgshift.tools.introspect.relations import AttributeNames
from pgshift.tools.model import Index, member_key, qname

INDEXES = f"""
SELECT n.nspname AS schema, ic.relname AS name, c.relname AS rel,
       pg_catalog.pg_get_indexdef(x.indexrelid) AS definition, am.amname AS method,
       x.indisunique AS is_unique, x.indisprimary AS is_primary, x.indisvalid AS valid,
       x.indnkeyatts AS nkey, x.indkey::text AS attnums,  -- int2vector as text: '1 3'
       CASE WHEN x.indexprs IS NOT NULL
            THEN ARRAY(SELECT pg_catalog.pg_get_indexdef(x.indexrelid, k, true)
                       FROM generate_series(1, x.indnatts) k ORDER BY k) END AS printed_columns,
       pg_catalog.pg_get_expr(x.indpred, x.indrelid) AS predicate,
       con.conname AS constraint_name, pn.nspname AS parent_schema, pc.relname AS parent_name,
       d.description AS comment
FROM pg_catalog.pg_index x
JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
JOIN pg_catalog.pg_class c ON c.oid = x.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
LEFT JOIN pg_catalog.pg_constraint con
  ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid AND con.contype IN ('p', 'u', 'x')
LEFT JOIN pg_catalog.pg_inherits i ON i.inhrelid = x.indexrelid
LEFT JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
LEFT JOIN pg_catalog.pg_description d
  ON d.objoid = x.indexrelid AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0
WHERE c.relkind IN ('r', 'p', 'm') AND {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_class", "c.oid")}
"""


def indexes(rows: Iterable[asyncpg.Record], names: AttributeNames) -> tuple[Index, ...]:
    """Indexes; `names` (from `relations.columns`) names the columns of plain (non-expression) indexes."""
    out = []
    for r in rows:
        schema = r["schema"]
        table = qname(schema, r["rel"])
        printed = r["printed_columns"]
        if printed is None:
            by_number = names.get((schema, r["rel"]), {})
            cols = tuple(by_number.get(int(num), num) for num in r["attnums"].split())
        else:
            cols = tuple(printed)
        nkey = r["nkey"]
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
                qname(r["parent_schema"], r["parent_name"]) if r["parent_name"] else None,
                r["valid"],
                r["comment"],
            )
        )
    return tuple(sorted(out, key=lambda o: o.key))
