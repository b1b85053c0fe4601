"""Default privileges (`ALTER DEFAULT PRIVILEGES`, pg_default_acl), one value per role, schema, object type and
grantee whose privileges differ from what PostgreSQL gives without any (see `tools.model.DefaultPrivilege`).

An entry for every schema belongs to no schema: read only when no schema selection is given. Default privileges of
Supabase's platform roles (FOR ROLE supabase_admin) are the platform's and left out; grants to platform roles
(anon, authenticated...) are marked `platform` (`tools.introspect.platform`). Both are compared with
`include_managed`. The same rows tell which grants on app objects those default privileges produce
(`platform.PlatformGrants.of`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import asyncpg

from pgshift.tools.introspect.declared import KindQuery, ReadOptions
from pgshift.tools.introspect.filters import SUPABASE_PLATFORM_ROLES, schema_filter, whole_database
from pgshift.tools.model import DefaultPrivilege, builtin_default_privileges

DEFAULT_PRIVILEGES = f"""
SELECT r.rolname AS role, n.nspname AS schema, a.defaclobjtype::text AS objtype,
       CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE g.rolname END AS grantee,
       x.privilege_type AS privilege, x.is_grantable AS grantable
FROM pg_catalog.pg_default_acl a
JOIN pg_catalog.pg_roles r ON r.oid = a.defaclrole
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = a.defaclnamespace
LEFT JOIN LATERAL pg_catalog.aclexplode(a.defaclacl) x ON true
LEFT JOIN pg_catalog.pg_roles g ON g.oid = x.grantee
WHERE (a.defaclnamespace = 0 AND {whole_database()}) OR {schema_filter("n")}
"""

OBJECT_TYPES = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES", "n": "SCHEMAS", "L": "LARGE OBJECTS"}


Entry = tuple[str, str | None, str]  # (role, schema, object type)


def default_privileges(rows: Iterable[asyncpg.Record], options: ReadOptions) -> tuple[DefaultPrivilege, ...]:
    held: dict[Entry, dict[str, dict[str, bool]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        object_type = OBJECT_TYPES.get(r["objtype"])
        if object_type is None or (not options.include_managed and r["role"] in SUPABASE_PLATFORM_ROLES):
            continue
        grants = held[(r["role"], r["schema"], object_type)]
        if r["grantee"] is not None and r["grantee"] != r["role"]:
            grants[r["grantee"]][r["privilege"]] = r["grantable"]
    out = []
    for (role, schema, object_type), grants in held.items():
        for grantee in sorted(grants.keys() | {"PUBLIC"}):
            privileges = tuple(sorted(grants.get(grantee, {})))
            grantable = tuple(sorted(p for p, option in grants.get(grantee, {}).items() if option))
            if privileges == builtin_default_privileges(object_type, grantee, schema) and not grantable:
                continue
            platform = not options.include_managed and grantee in SUPABASE_PLATFORM_ROLES
            out.append(DefaultPrivilege(role, schema, object_type, grantee, privileges, grantable, platform=platform))
    return tuple(sorted(out, key=lambda o: o.key))


QUERIES: tuple[KindQuery, ...] = (KindQuery("default_privileges", DEFAULT_PRIVILEGES, default_privileges),)
