"""Tables (with partitions and inheritance), views, materialized views and their columns."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import asyncpg

from pgshift.tools.introspect.filters import not_extension_member, schema_filter
from pgshift.tools.introspect.types import collation_key
from pgshift.tools.model import Column, Identity, SequenceOptions, Table, View, member_key, qname

_REL_COMMENT = """LEFT JOIN pg_catalog.pg_description d
  ON d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0"""

TABLES = f"""
SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind, c.relpersistence::text AS persistence,
       c.relrowsecurity AS rls_enabled, c.relforcerowsecurity AS rls_forced, c.relreplident::text AS replident,
       c.reloptions AS options, d.description AS comment,
       CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END AS partition_key,
       CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END AS partition_bound,
       CASE WHEN c.relreplident = 'i' THEN (
         SELECT ic.relname FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
         WHERE x.indrelid = c.oid AND x.indisreplident) END AS replica_index,
       c.relispartition AS is_partition,
       (SELECT json_agg(json_build_array(pn.nspname, pc.relname) ORDER BY i.inhseqno)
         FROM pg_catalog.pg_inherits i
         JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
         JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
         WHERE i.inhrelid = c.oid) AS parents
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
{_REL_COMMENT}
WHERE c.relkind IN ('r', 'p') AND {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_class", "c.oid")}
"""

VIEWS = f"""
SELECT n.nspname AS schema, c.relname AS name, c.relkind = 'm' AS materialized,
       pg_catalog.pg_get_viewdef(c.oid) AS definition, c.reloptions AS options, d.description AS comment
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
{_REL_COMMENT}
WHERE c.relkind IN ('v', 'm') AND {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_class", "c.oid")}
"""

# Columns of every table, view and materialized view, in one pass. Selected positionally by `columns()`.
COLUMNS = f"""
SELECT n.nspname AS schema, c.relname AS rel, a.attnum, a.attname AS name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
       -- A default holds no column reference: deparsed without the relation (much cheaper); a generated
       -- column's expression needs it.
       pg_catalog.pg_get_expr(ad.adbin, CASE WHEN a.attgenerated = '' THEN 0 ELSE ad.adrelid END) AS expr,
       a.attgenerated::text AS generated,
       a.attidentity::text AS identity,
       CASE WHEN a.attcollation <> t.typcollation THEN cn.nspname END AS collation_schema,
       CASE WHEN a.attcollation <> t.typcollation THEN co.collname END AS collation_name,
       a.attislocal AS local, d.description AS comment,
       -- PostgreSQL 18's NOT NULL constraint name, unless it is the default one (most of them)
       CASE WHEN nn.conname <> c.relname || '_' || a.attname || '_not_null' THEN nn.conname END AS not_null_name
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation AND a.attcollation <> t.typcollation
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
LEFT JOIN pg_catalog.pg_description d
  ON d.objoid = a.attrelid AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid = a.attnum
LEFT JOIN pg_catalog.pg_constraint nn  -- PostgreSQL 18: only a NOT NULL the column declares itself
  ON nn.conrelid = a.attrelid AND nn.contype = 'n' AND nn.conkey[1] = a.attnum AND nn.coninhcount = 0
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')
  AND {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_class", "c.oid")}
"""

_GENERATED = {"s": "STORED", "v": "VIRTUAL"}
_IDENTITY = {"a": "ALWAYS", "d": "BY DEFAULT"}
_REPLICA = {"d": "DEFAULT", "n": "NOTHING", "f": "FULL", "i": "INDEX"}


def _not_null_name(name: str | None, rel: str, column: str) -> str | None:
    """A NOT NULL constraint's name when it is not PostgreSQL 18's default (see `Column.not_null_name`)."""
    default = f"{rel}_{column}_not_null"
    return None if name is None or name == default or len(default.encode()) > 63 else name


AttributeNames = dict[tuple[str, str], dict[int, str]]


def columns(
    rows: Iterable[asyncpg.Record], identity: Mapping[str, SequenceOptions], names: AttributeNames | None = None
) -> dict[tuple[str, str], list[Column]]:
    """Columns grouped by (schema, relation name), in attnum order. Fills `names` with (relation) -> attnum -> name,
    which the index and constraint rows use to name their columns."""
    out: dict[tuple[str, str], list[Column]] = {}
    numbers: dict[tuple[str, str], list[int]] = {}
    for (
        schema,
        rel,
        attnum,
        name,
        type_,
        not_null,
        expr,
        gen,
        ident_code,
        coll_schema,
        coll_name,
        local,
        comment,
        nn_name,
    ) in rows:
        ident = None
        if ident_code:
            opts = identity.get(member_key(qname(schema, rel), name))
            if opts is not None:
                ident = Identity(_IDENTITY[ident_code], opts)
        col = Column(
            name,
            type_,
            not_null,
            None if gen else expr,
            ident,
            expr if gen else None,
            _GENERATED.get(gen) if gen else None,
            collation_key(coll_schema, coll_name) if coll_name is not None else None,
            not local,
            comment,
            _not_null_name(nn_name, rel, name) if nn_name is not None else None,
        )
        key = (schema, rel)
        bucket = out.get(key)
        if bucket is None:
            out[key] = [col]
            numbers[key] = [attnum]
        else:
            bucket.append(col)
            numbers[key].append(attnum)
    # Rows usually arrive in attnum order per relation (index order); sort the few that did not.
    for key, nums in numbers.items():
        if names is not None:
            names[key] = {num: col.name for num, col in zip(nums, out[key], strict=True)}
        if any(nums[i] > nums[i + 1] for i in range(len(nums) - 1)):
            out[key] = [c for _, c in sorted(zip(nums, out[key], strict=True), key=_first)]
    return out


def _first(item: tuple[int, Column]) -> int:
    return item[0]


def tables(rows: Iterable[asyncpg.Record], cols: Mapping[tuple[str, str], list[Column]]) -> tuple[Table, ...]:
    out = []
    for r in rows:
        parents = [qname(p[0], p[1]) for p in json.loads(r["parents"])] if r["parents"] else []
        is_partition = r["is_partition"]
        replica = _REPLICA[r["replident"]]
        if replica == "INDEX" and r["replica_index"]:
            replica = f"INDEX {qname(r['schema'], r['replica_index'])}"
        out.append(
            Table(
                r["schema"],
                r["name"],
                tuple(cols.get((r["schema"], r["name"]), ())),
                partitioned=r["relkind"] == "p",
                partition_key=r["partition_key"],
                partition_of=parents[0] if is_partition and parents else None,
                partition_bound=r["partition_bound"],
                inherits=() if is_partition else tuple(parents),
                unlogged=r["persistence"] == "u",
                rls_enabled=r["rls_enabled"],
                rls_forced=r["rls_forced"],
                replica_identity=replica,
                options=tuple(sorted(r["options"] or ())),
                comment=r["comment"],
            )
        )
    return tuple(sorted(out, key=lambda o: o.key))


def views(rows: Iterable[asyncpg.Record], cols: Mapping[tuple[str, str], list[Column]]) -> tuple[View, ...]:
    out = [
        View(
            r["schema"],
            r["name"],
            r["materialized"],
            r["definition"],
            tuple(cols.get((r["schema"], r["name"]), ())),
            tuple(sorted(r["options"] or ())),
            r["comment"],
        )
        for r in rows
    ]
    return tuple(sorted(out, key=lambda o: o.key))
