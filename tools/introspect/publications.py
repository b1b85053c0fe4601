"""Publications (`pg_publication`) and their members: tables (`pg_publication_rel`) and schemas
(`pg_publication_namespace`, PostgreSQL 15+).

Publications belong to no schema: read only when no schema selection is given. Members are read when their table
or schema is selected. Supabase's own publications (`supabase_realtime`) are marked `platform`; which tables are in
them is the app's and always compared.
"""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from pgshift.tools.introspect.declared import KindQuery, ReadOptions
from pgshift.tools.introspect.filters import (
    SUPABASE_PLATFORM_PUBLICATIONS,
    not_extension_member,
    schema_filter,
    whole_database,
)
from pgshift.tools.model import Publication, PublicationMember, qname

PUBLICATIONS = f"""
SELECT p.pubname AS name, p.puballtables AS all_tables, p.pubinsert AS insert, p.pubupdate AS update,
       p.pubdelete AS delete, p.pubtruncate AS truncate, p.pubviaroot AS via_root, d.description AS comment
FROM pg_catalog.pg_publication p
LEFT JOIN pg_catalog.pg_description d
  ON d.objoid = p.oid AND d.classoid = 'pg_catalog.pg_publication'::regclass AND d.objsubid = 0
WHERE {whole_database()} AND {not_extension_member("pg_catalog.pg_publication", "p.oid")}
"""

PUBLICATION_MEMBERS = f"""
SELECT p.pubname AS publication, n.nspname AS schema, c.relname AS rel,
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = pr.prrelid AND a.attnum = ANY(pr.prattrs) ORDER BY a.attnum) AS columns,
       pg_catalog.pg_get_expr(pr.prqual, pr.prrelid) AS row_filter
FROM pg_catalog.pg_publication_rel pr
JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid
JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE {schema_filter("n")}
UNION ALL
SELECT p.pubname, n.nspname, NULL, ARRAY[]::text[], NULL
FROM pg_catalog.pg_publication_namespace pn
JOIN pg_catalog.pg_publication p ON p.oid = pn.pnpubid
JOIN pg_catalog.pg_namespace n ON n.oid = pn.pnnspid
WHERE {schema_filter("n")}
"""

_OPERATIONS = ("insert", "update", "delete", "truncate")


def publications(rows: Iterable[asyncpg.Record], options: ReadOptions) -> tuple[Publication, ...]:
    out = [
        Publication(
            r["name"],
            r["all_tables"],
            tuple(op for op in _OPERATIONS if r[op]),
            r["via_root"],
            r["comment"],
            platform=not options.include_managed and r["name"] in SUPABASE_PLATFORM_PUBLICATIONS,
        )
        for r in rows
    ]
    return tuple(sorted(out, key=lambda o: o.key))


def publication_members(rows: Iterable[asyncpg.Record], options: ReadOptions) -> tuple[PublicationMember, ...]:
    out = [
        PublicationMember(
            r["publication"],
            r["schema"],
            qname(r["schema"], r["rel"]) if r["rel"] is not None else None,
            tuple(r["columns"]),
            r["row_filter"],
        )
        for r in rows
    ]
    return tuple(sorted(out, key=lambda o: o.key))


QUERIES: tuple[KindQuery, ...] = (
    KindQuery("publications", PUBLICATIONS, publications),
    KindQuery("publication_members", PUBLICATION_MEMBERS, publication_members),
)
