"""Range types (`pg_range`), read with the user functions they call (a SUBTYPE_DIFF of the app's own)."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from pgshift.tools.introspect.declared import KindQuery, ReadOptions
from pgshift.tools.introspect.filters import not_extension_member, schema_filter
from pgshift.tools.model import RangeType

RANGE_TYPES = f"""
SELECT n.nspname AS schema, t.typname AS name, pg_catalog.format_type(r.rngsubtype, NULL) AS subtype,
       CASE WHEN NOT oc.opcdefault THEN pg_catalog.quote_ident(ocn.nspname) || '.' || pg_catalog.quote_ident(oc.opcname)
       END AS opclass,
       CASE WHEN r.rngcollation <> 0 AND r.rngcollation <> st.typcollation
            THEN pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) END AS collation,
       CASE WHEN r.rngsubdiff <> 0 THEN r.rngsubdiff::regproc::text END AS subtype_diff,
       CASE WHEN df.oid IS NOT NULL AND dfn.nspname <> 'pg_catalog'
            THEN pg_catalog.quote_ident(dfn.nspname) || '.' || pg_catalog.quote_ident(df.proname) || '('
                 || pg_catalog.pg_get_function_identity_arguments(df.oid) || ')' END AS diff_key,
       pg_catalog.format_type(r.rngmultitypid, NULL) AS multirange, d.description AS comment
FROM pg_catalog.pg_range r
JOIN pg_catalog.pg_type t ON t.oid = r.rngtypid
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
JOIN pg_catalog.pg_type st ON st.oid = r.rngsubtype
JOIN pg_catalog.pg_opclass oc ON oc.oid = r.rngsubopc
JOIN pg_catalog.pg_namespace ocn ON ocn.oid = oc.opcnamespace
LEFT JOIN pg_catalog.pg_collation co ON co.oid = r.rngcollation
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
LEFT JOIN pg_catalog.pg_proc df ON df.oid = r.rngsubdiff
LEFT JOIN pg_catalog.pg_namespace dfn ON dfn.oid = df.pronamespace
LEFT JOIN pg_catalog.pg_description d
  ON d.objoid = t.oid AND d.classoid = 'pg_catalog.pg_type'::regclass AND d.objsubid = 0
WHERE {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_type", "t.oid")}
"""


def range_types(rows: Iterable[asyncpg.Record], options: ReadOptions) -> tuple[RangeType, ...]:
    out = [
        RangeType(
            r["schema"],
            r["name"],
            r["subtype"],
            r["opclass"],
            r["collation"],
            r["subtype_diff"],
            r["multirange"],
            r["comment"],
            functions=(r["diff_key"],) if r["diff_key"] else (),
        )
        for r in rows
    ]
    return tuple(sorted(out, key=lambda o: o.key))


QUERIES: tuple[KindQuery, ...] = (KindQuery("range_types", RANGE_TYPES, range_types),)
