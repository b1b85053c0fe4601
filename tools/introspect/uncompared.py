"""Objects pgshift reads but does not compare or plan: listed by kind and name, so a compare is never silent.

One named query per kind (module constants below), each returning (kind, name, detail, definition); they run
as one catalog round trip (`UNCOMPARED`, registered in `tools.introspect.QUERIES`). `detail` is part of the
identity where the name alone is not enough (a column's storage or statistics target); `definition` is the rest
of what defines the object (a rule's text, an aggregate's functions), so an object defined differently on the
two sides is seen as such.

Objects created by an extension (pg_depend deptype 'e') and objects in excluded schemas (Supabase-managed,
system) are left out, as for the compared kinds. Objects that belong to no schema (event triggers, foreign
data wrappers and servers) are listed only when no schema selection is given.
"""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from pgshift.tools.introspect.filters import not_extension_member, schema_filter
from pgshift.tools.model import UncomparedObject, ident, member_key, qname

# A database-wide object: read only when the caller selected no schemas ($2 is NULL).
_WHOLE_DATABASE = "$2::text[] IS NULL"

RULES = f"""
SELECT 'rule' AS kind, n.nspname AS schema, c.relname AS parent, r.rulename AS name, NULL::text AS detail,
       pg_catalog.pg_get_ruledef(r.oid) AS definition
FROM pg_catalog.pg_rewrite r
JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE r.rulename <> '_RETURN' AND {schema_filter("n")}
  AND {not_extension_member("pg_catalog.pg_rewrite", "r.oid")}
  AND {not_extension_member("pg_catalog.pg_class", "c.oid")}
"""

EVENT_TRIGGERS = f"""
SELECT 'event_trigger' AS kind, NULL::text AS schema, NULL::text AS parent, e.evtname AS name,
       e.evtevent AS detail,
       pg_catalog.concat_ws(' ', 'EXECUTE FUNCTION ' || pg_catalog.quote_ident(n.nspname) || '.'
                                 || pg_catalog.quote_ident(f.proname), 'ENABLE ' || e.evtenabled::text,
                            'TAGS ' || pg_catalog.array_to_string(e.evttags, ', ')) AS definition
FROM pg_catalog.pg_event_trigger e
JOIN pg_catalog.pg_proc f ON f.oid = e.evtfoid
JOIN pg_catalog.pg_namespace n ON n.oid = f.pronamespace
WHERE {_WHOLE_DATABASE} AND {schema_filter("n")}
  AND {not_extension_member("pg_catalog.pg_event_trigger", "e.oid")}
"""

STATISTICS = f"""
SELECT 'statistics' AS kind, n.nspname AS schema, NULL::text AS parent, s.stxname AS name, NULL::text AS detail,
       pg_catalog.pg_get_statisticsobjdef(s.oid) AS definition
FROM pg_catalog.pg_statistic_ext s
JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace
WHERE {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_statistic_ext", "s.oid")}
"""

FOREIGN_DATA_WRAPPERS = f"""
SELECT 'foreign_data_wrapper' AS kind, NULL::text AS schema, NULL::text AS parent, w.fdwname AS name,
       NULL::text AS detail,
       pg_catalog.concat_ws(' ', CASE WHEN w.fdwhandler::oid <> 0 THEN 'HANDLER ' || w.fdwhandler::text END,
                            CASE WHEN w.fdwvalidator::oid <> 0 THEN 'VALIDATOR ' || w.fdwvalidator::text END,
                            'OPTIONS ' || pg_catalog.array_to_string(w.fdwoptions, ', ')) AS definition
FROM pg_catalog.pg_foreign_data_wrapper w
WHERE {_WHOLE_DATABASE} AND {not_extension_member("pg_catalog.pg_foreign_data_wrapper", "w.oid")}
"""

FOREIGN_SERVERS = f"""
SELECT 'foreign_server' AS kind, NULL::text AS schema, NULL::text AS parent, s.srvname AS name,
       NULL::text AS detail,
       pg_catalog.concat_ws(' ', 'FOREIGN DATA WRAPPER ' || w.fdwname, 'TYPE ' || s.srvtype,
                            'VERSION ' || s.srvversion, 'OPTIONS ' || pg_catalog.array_to_string(s.srvoptions, ', '))
         AS definition
FROM pg_catalog.pg_foreign_server s
JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
WHERE {_WHOLE_DATABASE} AND {not_extension_member("pg_catalog.pg_foreign_server", "s.oid")}
"""

FOREIGN_TABLES = f"""
SELECT 'foreign_table' AS kind, n.nspname AS schema, NULL::text AS parent, c.relname AS name, NULL::text AS detail,
       pg_catalog.concat_ws(' ', '(' || (SELECT pg_catalog.string_agg(
                                   a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod), ', '
                                   ORDER BY a.attnum)
                                 FROM pg_catalog.pg_attribute a
                                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) || ')',
                            'SERVER ' || fs.srvname, 'OPTIONS ' || pg_catalog.array_to_string(ft.ftoptions, ', '))
         AS definition
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_foreign_table ft ON ft.ftrelid = c.oid
JOIN pg_catalog.pg_foreign_server fs ON fs.oid = ft.ftserver
WHERE c.relkind = 'f' AND {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_class", "c.oid")}
"""

# ALTER COLUMN ... SET STORAGE: a column whose storage differs from its type's default.
COLUMN_STORAGE = f"""
SELECT 'column_storage' AS kind, n.nspname AS schema, c.relname AS parent, a.attname AS name,
       CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END
         AS detail, NULL::text AS definition
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'm') AND a.attstorage <> t.typstorage
  AND {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_class", "c.oid")}
"""

# ALTER COLUMN ... SET STATISTICS: -1 (up to PostgreSQL 16) or NULL (17+) is the default.
COLUMN_STATISTICS = f"""
SELECT 'column_statistics' AS kind, n.nspname AS schema, c.relname AS parent, a.attname AS name,
       a.attstattarget::text AS detail, NULL::text AS definition
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'm', 'f') AND a.attstattarget >= 0
  AND {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_class", "c.oid")}
"""

# Ordered-set and hypothetical-set aggregates (plain ones are compared: `aggregates.py`).
AGGREGATES = f"""
SELECT 'aggregate' AS kind, n.nspname AS schema, NULL::text AS parent,
       p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' AS name, NULL::text AS detail,
       pg_catalog.concat_ws(' ', 'KIND ' || g.aggkind::text, 'SFUNC ' || g.aggtransfn::text,
                            'STYPE ' || pg_catalog.format_type(g.aggtranstype, NULL),
                            CASE WHEN g.aggfinalfn::oid <> 0 THEN 'FINALFUNC ' || g.aggfinalfn::text END,
                            CASE WHEN g.aggcombinefn::oid <> 0 THEN 'COMBINEFUNC ' || g.aggcombinefn::text END,
                            'INITCOND ' || g.agginitval, 'PARALLEL ' || p.proparallel::text) AS definition
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_aggregate g ON g.aggfnoid = p.oid
WHERE p.prokind = 'a' AND g.aggkind <> 'n' AND {schema_filter("n")}
  AND {not_extension_member("pg_catalog.pg_proc", "p.oid")}
"""

# (kind, query) for every kind pgshift reads without comparing it.
KIND_QUERIES: tuple[tuple[str, str], ...] = (
    ("rule", RULES),
    ("event_trigger", EVENT_TRIGGERS),
    ("statistics", STATISTICS),
    ("foreign_data_wrapper", FOREIGN_DATA_WRAPPERS),
    ("foreign_server", FOREIGN_SERVERS),
    ("foreign_table", FOREIGN_TABLES),
    ("column_storage", COLUMN_STORAGE),
    ("column_statistics", COLUMN_STATISTICS),
    ("aggregate", AGGREGATES),
)

# All of them in one round trip.
UNCOMPARED = "\nUNION ALL\n".join(f"({sql.strip()})" for _kind, sql in KIND_QUERIES)


def _name(schema: str | None, parent: str | None, name: str, kind: str) -> str:
    """The object's key: schema-qualified and quoted like the compared kinds' keys."""
    if kind == "aggregate":  # `name(identity arguments)`: quote the name only
        base, _, args = name.partition("(")
        return f"{qname(schema or '', base)}({args}"
    if parent is not None:
        return member_key(qname(schema or "", parent), name)
    return qname(schema, name) if schema is not None else ident(name)


def uncompared(rows: Iterable[asyncpg.Record]) -> tuple[UncomparedObject, ...]:
    """The objects of the kinds pgshift does not compare, sorted by kind then name."""
    out = {
        UncomparedObject(r["kind"], _name(r["schema"], r["parent"], r["name"], r["kind"]), r["detail"], r["definition"])
        for r in rows
    }
    return tuple(sorted(out, key=lambda o: o.key))
