"""Table constraints: primary key, foreign key, unique, check, exclusion.

Left out: PostgreSQL 18's NOT NULL constraints (contype 'n', folded into `Column.not_null`), constraint
triggers (read as triggers), partition clones (conparentid <> 0) and constraints a child only inherits.
"""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from pgshift.tools.introspect.filters import schema_filter
from pgshift.tools.introspect.relations import AttributeNames
from pgshift.tools.model import Constraint, qname

CONSTRAINTS = f"""
SELECT n.nspname AS schema, c.relname AS rel, con.conname AS name, con.contype::text AS type,
       pg_catalog.pg_get_constraintdef(con.oid) AS definition, con.convalidated AS validated,
       con.condeferrable AS deferrable, con.condeferred AS deferred,
       array_to_string(con.conkey, ' ') AS attnums,  -- as text: asyncpg decodes text without a type lookup
       fn.nspname AS ref_schema, fc.relname AS ref_table,
       -- the referenced table may be outside the schemas read (auth.users): name its columns here
       CASE WHEN con.contype = 'f' THEN
         ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord)
       END AS ref_columns,
       con.confupdtype::text AS on_update, con.confdeltype::text AS on_delete, con.confmatchtype::text AS match,
       CASE WHEN con.contype IN ('p', 'u', 'x') THEN ic.relname END AS index_name,
       d.description AS comment
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
LEFT JOIN pg_catalog.pg_class ic ON ic.oid = con.conindid
LEFT JOIN pg_catalog.pg_description d
  ON d.objoid = con.oid AND d.classoid = 'pg_catalog.pg_constraint'::regclass AND d.objsubid = 0
WHERE con.contype IN ('p', 'f', 'u', 'c', 'x') AND con.conparentid = 0 AND con.conislocal
  AND {schema_filter("n")}
"""

_TYPES = {"p": "PRIMARY KEY", "f": "FOREIGN KEY", "u": "UNIQUE", "c": "CHECK", "x": "EXCLUDE"}
_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
_MATCH = {"s": "SIMPLE", "f": "FULL", "p": "PARTIAL"}


def constraints(rows: Iterable[asyncpg.Record], names: AttributeNames) -> tuple[Constraint, ...]:
    """Constraints; `names` (from `relations.columns`) names their columns."""
    out = []
    for r in rows:
        fk = r["type"] == "f"
        schema = r["schema"]
        by_number = names.get((schema, r["rel"]), {})
        out.append(
            Constraint(
                schema,
                qname(schema, r["rel"]),
                r["name"],
                _TYPES[r["type"]],
                r["definition"],
                columns=tuple(by_number.get(int(n), n) for n in (r["attnums"] or "").split() if n != "0"),
                validated=r["validated"],
                deferrable=r["deferrable"],
                initially_deferred=r["deferred"],
                references=qname(r["ref_schema"], r["ref_table"]) if fk else None,
                referenced_columns=tuple(r["ref_columns"]) if fk else (),
                on_update=_ACTIONS.get(r["on_update"]) if fk else None,
                on_delete=_ACTIONS.get(r["on_delete"]) if fk else None,
                match=_MATCH.get(r["match"]) if fk else None,
                index=qname(schema, r["index_name"]) if r["index_name"] else None,
                comment=r["comment"],
            )
        )
    return tuple(sorted(out, key=lambda o: o.key))
