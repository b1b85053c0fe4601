"""pgshift's own schema on a target database (`pgshift`: ledger, snapshots, kept data) is used only when it is ours.

A role with nothing but CREATE on the database can create `pgshift` (or a table in it) before pgshift does; writing
snapshots into that role's table, or loading what it put there, hands it pgshift's power. So before every read and
write of the schema, one catalog query proves: the schema and everything in it are owned by the role pgshift
connects as (or an admin role the session names in the setting `pgshift.state_owner`, e.g. a read-only CI role
reading what `postgres` wrote: `ALTER ROLE ci SET pgshift.state_owner = 'postgres'`, or `options=-c
pgshift.state_owner=postgres` in its URL); no other role may create in the schema or write its tables (INSERT,
UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER, for PUBLIC or any role); and no other role inherits the owner's rights.
Superusers are left aside: they can do anything anyway. A schema that does not exist passes (pgshift creates it, as
the connecting role).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import asyncpg

from pgshift.tools.errors import NotAllowed
from pgshift.tools.introspect.filters import LEDGER_SCHEMA
from pgshift.tools.sql import quote_ident
from pgshift.tools.untrusted import fence_text

_PLAIN = re.compile(r"[a-z_][a-z0-9_$]{0,62}")
WRITE_PRIVILEGES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")

STATE_SCHEMA_CHECK = """
WITH s AS (SELECT oid, nspowner, nspacl FROM pg_catalog.pg_namespace WHERE nspname = $1),
trusted AS (SELECT btrim(x) AS name FROM unnest($2::text[] || pg_catalog.string_to_array(
               coalesce(pg_catalog.current_setting('pgshift.state_owner', true), ''), ',')) AS x),
mine AS (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user OR rolname IN (SELECT name FROM trusted)),
outsider AS (SELECT oid, rolname FROM pg_catalog.pg_roles WHERE NOT rolsuper)
SELECT current_user::text AS me,
       (SELECT rolname::text FROM pg_catalog.pg_roles WHERE oid = s.nspowner) AS schema_owner,
       s.nspowner IN (SELECT oid FROM mine) AS schema_mine,
       ARRAY(SELECT DISTINCT coalesce(o.rolname::text, 'PUBLIC')
             FROM pg_catalog.aclexplode(coalesce(s.nspacl, pg_catalog.acldefault('n', s.nspowner))) a
             LEFT JOIN outsider o ON o.oid = a.grantee
             WHERE a.privilege_type = 'CREATE' AND a.grantee <> s.nspowner
               AND (a.grantee = 0 OR o.oid IS NOT NULL) ORDER BY 1) AS schema_writers,
       ARRAY(SELECT format('%s (owned by %s)', x.name, r.rolname)
             FROM (SELECT c.relname::text AS name, c.relowner AS owner FROM pg_catalog.pg_class c
                   WHERE c.relnamespace = s.oid
                   UNION ALL SELECT p.proname::text, p.proowner FROM pg_catalog.pg_proc p WHERE p.pronamespace = s.oid
                   UNION ALL SELECT t.typname::text, t.typowner FROM pg_catalog.pg_type t
                             WHERE t.typnamespace = s.oid AND t.typrelid = 0) x
             JOIN pg_catalog.pg_roles r ON r.oid = x.owner
             WHERE x.owner NOT IN (SELECT oid FROM mine) ORDER BY 1) AS foreign_objects,
       ARRAY(SELECT DISTINCT format('%s may %s %s', coalesce(o.rolname::text, 'PUBLIC'), a.privilege_type, c.relname)
             FROM pg_catalog.pg_class c
             CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
             LEFT JOIN outsider o ON o.oid = a.grantee
             WHERE c.relnamespace = s.oid AND c.relacl IS NOT NULL AND a.grantee <> c.relowner
               AND (a.grantee = 0 OR o.oid IS NOT NULL)
               AND a.privilege_type = ANY($3::text[]) ORDER BY 1) AS table_writers,
       ARRAY(SELECT DISTINCT o.rolname::text FROM pg_catalog.pg_auth_members m JOIN outsider o ON o.oid = m.member
             WHERE m.roleid IN (SELECT oid FROM mine) AND m.roleid IN (s.nspowner) ORDER BY 1) AS owner_members
FROM s
"""


def _role(name: str) -> str:
    """A role name as SQL would write it; fenced as database text unless it is a plain identifier."""
    return name if _PLAIN.fullmatch(name) else fence_text(quote_ident(name))


def _names(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


async def check_state_schema(conn: asyncpg.Connection, admin_roles: Sequence[str] = ()) -> None:
    """Refuse (NotAllowed) to read or write pgshift's schema unless it is owned by the connecting role (or one of
    `admin_roles`) and writable by no other role. One catalog query; works in a READ ONLY transaction."""
    row = await conn.fetchrow(STATE_SCHEMA_CHECK, LEDGER_SCHEMA, list(admin_roles), list(WRITE_PRIVILEGES))
    if row is None:
        return
    me = quote_ident(row["me"])
    schema = quote_ident(LEDGER_SCHEMA)
    refusal = "pgshift will not read or write it."
    owner = _role(row["schema_owner"] or "?")
    if not row["schema_mine"]:
        raise NotAllowed(
            f"schema {schema} is owned by role {owner}, not by {me} (the role pgshift connects as): {refusal} Drop or "
            f"rename it as its owner, or ALTER SCHEMA {schema} OWNER TO {me}, then retry (a role that only reads what "
            f"a trusted admin role wrote may name it: ALTER ROLE {me} SET pgshift.state_owner = '<role>'). "
            "Nothing was changed."
        )
    problems = []
    if row["schema_writers"]:
        who = _names([_role(r) if r != "PUBLIC" else r for r in row["schema_writers"]])
        problems.append(f"{who} may create objects in schema {schema} (REVOKE CREATE ON SCHEMA {schema} FROM them)")
    if row["foreign_objects"]:
        problems.append(
            f"objects in it are owned by other roles: {fence_text(_names(list(row['foreign_objects'])))} "
            f"(drop them, or ALTER ... OWNER TO {me})"
        )
    if row["table_writers"]:
        problems.append(
            f"other roles may write its tables: {fence_text(_names(list(row['table_writers'])))} "
            f"(REVOKE those privileges)"
        )
    if row["owner_members"]:
        problems.append(
            f"roles {_names([_role(r) for r in row['owner_members']])} are members of its owner "
            f"{owner} and act with its rights (REVOKE {owner} FROM them, or let pgshift connect as a role no one else "
            "is a member of)"
        )
    if problems:
        raise NotAllowed(
            f"schema {schema} is not pgshift's alone: {'; '.join(problems)}. {refusal} Fix it as its owner, then "
            "retry. Nothing was changed."
        )


async def seal(conn: asyncpg.Connection) -> None:
    """Right after pgshift created objects in its schema: take back whatever default privileges gave other roles on
    any of its tables and sequences (an owned `serial` sequence too), so the check above keeps passing."""
    rows = await conn.fetch(
        """SELECT DISTINCT pg_catalog.format('%I.%I', n.nspname, c.relname),
                  CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r.rolname) END
           FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
           LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
           WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'S') AND c.relacl IS NOT NULL
             AND a.grantee <> c.relowner""",
        LEDGER_SCHEMA,
    )
    for relation, grantee in rows:
        await conn.execute(f"REVOKE ALL ON {relation} FROM {grantee}")
