"""Triggers (user triggers only: no internal FK triggers, no partition clones) and RLS policies.

The app's own objects on the platform's tables are read even when the Supabase-managed schemas are left out: a
trigger on a managed table (auth.users) whose function is in a selected schema (the usual `handle_new_user`), and
every policy on a managed table (storage.objects) when no schema selection is given. The table stays the
platform's: only the trigger or policy is compared and planned.
"""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from pgshift.tools.introspect.filters import in_managed_schema, schema_filter, whole_database
from pgshift.tools.model import Policy, Trigger, qname

TRIGGERS = f"""
SELECT n.nspname AS schema, c.relname AS rel, t.tgname AS name, pg_catalog.pg_get_triggerdef(t.oid) AS definition,
       t.tgtype AS tgtype, fn.nspname AS function_schema, f.proname AS function_name,
       t.tgenabled::text AS enabled, d.description AS comment
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_proc f ON f.oid = t.tgfoid
JOIN pg_catalog.pg_namespace fn ON fn.oid = f.pronamespace
LEFT JOIN pg_catalog.pg_description d
  ON d.objoid = t.oid AND d.classoid = 'pg_catalog.pg_trigger'::regclass AND d.objsubid = 0
WHERE NOT t.tgisinternal AND t.tgparentid = 0
  AND ({schema_filter("n")} OR ({in_managed_schema("n")} AND {schema_filter("fn")}))
"""

# pg_trigger.tgtype bits (src/include/catalog/pg_trigger.h)
_ROW, _BEFORE, _INSERT, _DELETE, _UPDATE, _TRUNCATE, _INSTEAD = 1, 2, 4, 8, 16, 32, 64


def _when(definition: str) -> str | None:
    """The WHEN condition as pg_get_triggerdef prints it (`WHEN (<expr>) EXECUTE ...`)."""
    start = definition.find(" WHEN (")
    end = definition.rfind(") EXECUTE ")
    if start < 0 or end < start:
        return None
    return definition[start + len(" WHEN (") : end]


def triggers(rows: Iterable[asyncpg.Record]) -> tuple[Trigger, ...]:
    out = []
    for r in rows:
        tgtype = r["tgtype"]
        timing = "INSTEAD OF" if tgtype & _INSTEAD else "BEFORE" if tgtype & _BEFORE else "AFTER"
        events = tuple(
            name
            for bit, name in ((_INSERT, "INSERT"), (_UPDATE, "UPDATE"), (_DELETE, "DELETE"), (_TRUNCATE, "TRUNCATE"))
            if tgtype & bit
        )
        out.append(
            Trigger(
                r["schema"],
                qname(r["schema"], r["rel"]),
                r["name"],
                r["definition"],
                timing,
                events,
                "ROW" if tgtype & _ROW else "STATEMENT",
                qname(r["function_schema"], r["function_name"]),
                _when(r["definition"]),
                r["enabled"],
                r["comment"],
            )
        )
    return tuple(sorted(out, key=lambda o: o.key))


POLICIES = f"""
SELECT n.nspname AS schema, c.relname AS rel, p.polname AS name, p.polcmd::text AS cmd,
       p.polpermissive AS permissive,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public'
                         ELSE (SELECT a.rolname::text FROM pg_catalog.pg_roles a WHERE a.oid = r) END
             FROM unnest(p.polroles) r) AS roles,
       pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS using_expr,
       pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr, d.description AS comment
FROM pg_catalog.pg_policy p
JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_description d
  ON d.objoid = p.oid AND d.classoid = 'pg_catalog.pg_policy'::regclass AND d.objsubid = 0
WHERE {schema_filter("n")} OR ({in_managed_schema("n")} AND {whole_database()})
"""

_COMMANDS = {"*": "ALL", "r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE"}


def policies(rows: Iterable[asyncpg.Record]) -> tuple[Policy, ...]:
    out = [
        Policy(
            r["schema"],
            qname(r["schema"], r["rel"]),
            r["name"],
            _COMMANDS[r["cmd"]],
            r["permissive"],
            tuple(sorted(r["roles"])),
            r["using_expr"],
            r["check_expr"],
            r["comment"],
        )
        for r in rows
    ]
    return tuple(sorted(out, key=lambda o: o.key))
