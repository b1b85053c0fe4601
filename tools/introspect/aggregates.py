"""Plain aggregates (`pg_aggregate`, aggkind 'n'), with their options in CREATE AGGREGATE order and the user functions
they call. Ordered-set and hypothetical-set aggregates stay in the not-compared report (`uncompared.py`)."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from pgshift.tools.introspect.declared import KindQuery, ReadOptions
from pgshift.tools.introspect.filters import not_extension_member, schema_filter
from pgshift.tools.model import Aggregate
from pgshift.tools.sql import quote_literal

# Support functions: (option, pg_aggregate column).
_FUNCTIONS = (
    ("SFUNC", "aggtransfn"),
    ("FINALFUNC", "aggfinalfn"),
    ("COMBINEFUNC", "aggcombinefn"),
    ("SERIALFUNC", "aggserialfn"),
    ("DESERIALFUNC", "aggdeserialfn"),
    ("MSFUNC", "aggmtransfn"),
    ("MINVFUNC", "aggminvtransfn"),
    ("MFINALFUNC", "aggmfinalfn"),
)
_NAMES = ",\n       ".join(f"CASE WHEN g.{col} <> 0 THEN g.{col}::regproc::text END AS {col}" for _o, col in _FUNCTIONS)
# The keys of the support functions that are the app's own (not in pg_catalog).
_KEYS = " UNION ALL ".join(f"SELECT f.oid FROM pg_catalog.pg_proc f WHERE f.oid = g.{col}" for _o, col in _FUNCTIONS)

AGGREGATES = f"""
SELECT n.nspname AS schema, p.proname AS name, pg_catalog.pg_get_function_identity_arguments(p.oid) AS arguments,
       {_NAMES},
       pg_catalog.format_type(g.aggtranstype, NULL) AS stype, g.aggtransspace AS sspace,
       g.aggfinalextra AS finalextra, g.aggfinalmodify::text AS finalmodify, g.agginitval AS initcond,
       CASE WHEN g.aggmtranstype <> 0 THEN pg_catalog.format_type(g.aggmtranstype, NULL) END AS mstype,
       g.aggmtransspace AS msspace, g.aggmfinalextra AS mfinalextra, g.aggmfinalmodify::text AS mfinalmodify,
       g.aggminitval AS minitcond, CASE WHEN g.aggsortop <> 0 THEN g.aggsortop::regoper::text END AS sortop,
       p.proparallel::text AS parallel, d.description AS comment,
       ARRAY(SELECT pg_catalog.quote_ident(fn.nspname) || '.' || pg_catalog.quote_ident(f.proname) || '('
                    || pg_catalog.pg_get_function_identity_arguments(f.oid) || ')'
             FROM ({_KEYS}) k JOIN pg_catalog.pg_proc f ON f.oid = k.oid
             JOIN pg_catalog.pg_namespace fn ON fn.oid = f.pronamespace
             WHERE fn.nspname <> 'pg_catalog') AS functions
FROM pg_catalog.pg_aggregate g
JOIN pg_catalog.pg_proc p ON p.oid = g.aggfnoid
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
LEFT JOIN pg_catalog.pg_description d
  ON d.objoid = p.oid AND d.classoid = 'pg_catalog.pg_proc'::regclass AND d.objsubid = 0
WHERE g.aggkind = 'n' AND {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_proc", "p.oid")}
"""

_MODIFY = {"r": "READ_ONLY", "s": "SHAREABLE", "w": "READ_WRITE"}
_PARALLEL = {"s": "SAFE", "r": "RESTRICTED"}


def options(r: asyncpg.Record) -> tuple[str, ...]:
    """The CREATE AGGREGATE options that differ from their defaults, in the order the command lists them."""
    out = [f"SFUNC = {r['aggtransfn']}", f"STYPE = {r['stype']}"]
    out += [f"SSPACE = {r['sspace']}"] if r["sspace"] else []
    out += [f"FINALFUNC = {r['aggfinalfn']}"] if r["aggfinalfn"] else []
    out += ["FINALFUNC_EXTRA"] if r["finalextra"] else []
    out += [f"FINALFUNC_MODIFY = {_MODIFY[r['finalmodify']]}"] if r["aggfinalfn"] and r["finalmodify"] != "r" else []
    out += [f"{option} = {r[col]}" for option, col in _FUNCTIONS[2:5] if r[col]]
    out += [f"INITCOND = {quote_literal(r['initcond'])}"] if r["initcond"] is not None else []
    out += [f"{option} = {r[col]}" for option, col in _FUNCTIONS[5:7] if r[col]]
    out += [f"MSTYPE = {r['mstype']}"] if r["mstype"] else []
    out += [f"MSSPACE = {r['msspace']}"] if r["msspace"] else []
    out += [f"MFINALFUNC = {r['aggmfinalfn']}"] if r["aggmfinalfn"] else []
    out += ["MFINALFUNC_EXTRA"] if r["mfinalextra"] else []
    out += (
        [f"MFINALFUNC_MODIFY = {_MODIFY[r['mfinalmodify']]}"] if r["aggmfinalfn"] and r["mfinalmodify"] != "r" else []
    )
    out += [f"MINITCOND = {quote_literal(r['minitcond'])}"] if r["minitcond"] is not None else []
    out += [f"SORTOP = {r['sortop']}"] if r["sortop"] else []
    out += [f"PARALLEL = {_PARALLEL[r['parallel']]}"] if r["parallel"] in _PARALLEL else []
    return tuple(out)


def aggregates(rows: Iterable[asyncpg.Record], read: ReadOptions) -> tuple[Aggregate, ...]:
    out = [
        Aggregate(
            r["schema"],
            r["name"],
            r["arguments"],
            options(r),
            r["comment"],
            functions=tuple(sorted(set(r["functions"]))),
        )
        for r in rows
    ]
    return tuple(sorted(out, key=lambda o: o.key))


QUERIES: tuple[KindQuery, ...] = (KindQuery("aggregates", AGGREGATES, aggregates),)
