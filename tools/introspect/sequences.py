"""Sequences: standalone and serial ones become `Sequence`; identity sequences become `Column.identity`."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from pgshift.tools.introspect.filters import not_extension_member, schema_filter
from pgshift.tools.model import Sequence, SequenceOptions, member_key, qname

# deptype 'a' = OWNED BY (serial), 'i' = identity column's sequence.
SEQUENCES = f"""
SELECT n.nspname AS schema, c.relname AS name, pg_catalog.format_type(s.seqtypid, NULL) AS data_type,
       s.seqstart AS start, s.seqincrement AS increment, s.seqmin AS min_value, s.seqmax AS max_value,
       s.seqcache AS cache, s.seqcycle AS cycle, d.description AS comment,
       o.deptype::text AS owner_deptype, o.schema AS owner_schema, o.relname AS owner_table, o.attname AS owner_column
FROM pg_catalog.pg_sequence s
JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_description d
  ON d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0
LEFT JOIN (
  SELECT dep.objid, dep.deptype, tn.nspname AS schema, t.relname, a.attname
  FROM pg_catalog.pg_depend dep
  JOIN pg_catalog.pg_class sc ON sc.oid = dep.objid AND sc.relkind = 'S'
  JOIN pg_catalog.pg_class t ON t.oid = dep.refobjid
  JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
  WHERE dep.classid = 'pg_catalog.pg_class'::regclass AND dep.refclassid = 'pg_catalog.pg_class'::regclass
    AND dep.refobjsubid > 0 AND dep.deptype IN ('a', 'i')
) o ON o.objid = c.oid
WHERE {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_class", "c.oid")}
"""


def options(r: asyncpg.Record) -> SequenceOptions:
    return SequenceOptions(
        r["data_type"], r["start"], r["increment"], r["min_value"], r["max_value"], r["cache"], r["cycle"]
    )


def sequences(rows: Iterable[asyncpg.Record]) -> tuple[tuple[Sequence, ...], dict[str, SequenceOptions]]:
    """(standalone and serial sequences, identity sequence options by column key)."""
    out: list[Sequence] = []
    identity: dict[str, SequenceOptions] = {}
    for r in rows:
        owner = None
        if r["owner_table"] is not None:
            owner = member_key(qname(r["owner_schema"], r["owner_table"]), r["owner_column"])
        if r["owner_deptype"] == "i" and owner is not None:
            identity[owner] = options(r)
            continue
        out.append(Sequence(r["schema"], r["name"], options(r), owner, r["comment"]))
    return tuple(sorted(out, key=lambda o: o.key)), identity
