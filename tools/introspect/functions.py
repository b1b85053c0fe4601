"""Functions and procedures, with their complete definition (aggregates are in `routines.py`; the constructors
PostgreSQL makes for a range type are not read: they come with the type)."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from pgshift.tools.introspect.filters import not_extension_member, not_generated_for, schema_filter
from pgshift.tools.model import Function

FUNCTIONS = f"""
SELECT n.nspname AS schema, p.proname AS name, p.prokind::text AS kind,
       pg_catalog.pg_get_function_identity_arguments(p.oid) AS identity_arguments,
       pg_catalog.pg_get_function_arguments(p.oid) AS arguments,
       CASE WHEN p.prokind <> 'p' THEN pg_catalog.pg_get_function_result(p.oid) END AS result,
       l.lanname AS language, p.provolatile::text AS volatility, p.proisstrict AS strict,
       p.prosecdef AS security_definer, p.proleakproof AS leakproof, p.proparallel::text AS parallel,
       p.proconfig AS config,
       CASE WHEN p.prosqlbody IS NOT NULL THEN pg_catalog.pg_get_function_sqlbody(p.oid) ELSE p.prosrc END AS body,
       pg_catalog.pg_get_functiondef(p.oid) AS definition, d.description AS comment,
       p.prosqlbody IS NOT NULL AS standard_body
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
LEFT JOIN pg_catalog.pg_description d
  ON d.objoid = p.oid AND d.classoid = 'pg_catalog.pg_proc'::regclass AND d.objsubid = 0
WHERE p.prokind IN ('f', 'p', 'w') AND {schema_filter("n")} AND {not_extension_member("pg_catalog.pg_proc", "p.oid")}
  AND {not_generated_for("pg_catalog.pg_proc", "p.oid")}
"""

_KINDS = {"f": "FUNCTION", "p": "PROCEDURE", "w": "WINDOW"}
_VOLATILITY = {"i": "IMMUTABLE", "s": "STABLE", "v": "VOLATILE"}
_PARALLEL = {"s": "SAFE", "r": "RESTRICTED", "u": "UNSAFE"}


def functions(rows: Iterable[asyncpg.Record]) -> tuple[Function, ...]:
    out = [
        Function(
            r["schema"],
            r["name"],
            _KINDS[r["kind"]],
            r["identity_arguments"],
            r["arguments"],
            r["result"],
            r["language"],
            _VOLATILITY[r["volatility"]],
            r["strict"],
            r["security_definer"],
            r["leakproof"],
            _PARALLEL[r["parallel"]],
            tuple(sorted(r["config"] or ())),
            r["body"],
            r["definition"],
            r["comment"],
            r["standard_body"],
        )
        for r in rows
    ]
    return tuple(sorted(out, key=lambda o: o.key))
