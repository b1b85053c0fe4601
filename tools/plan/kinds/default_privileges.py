"""Default privileges (`ALTER DEFAULT PRIVILEGES`): what a role's future objects grant, an authorisation change.

Every change is a move from one set of privileges to another: creating goes from what PostgreSQL gives without
a default privilege (`builtin_default_privileges`), dropping goes back to it.
"""

from __future__ import annotations

from collections.abc import Iterable

from pgshift.tools.model import DefaultPrivilege, builtin_default_privileges, ident
from pgshift.tools.plan.context import Context, Node
from pgshift.tools.plan.kinds.security import role_sql
from pgshift.tools.plan.statement import Hazard, HazardKind, Statement


def _prefix(p: DefaultPrivilege) -> str:
    where = f" IN SCHEMA {ident(p.schema)}" if p.schema is not None else ""
    return f"ALTER DEFAULT PRIVILEGES FOR ROLE {ident(p.role)}{where}"


def _builtin(p: DefaultPrivilege) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return builtin_default_privileges(p.object_type, p.grantee, p.schema), ()


def _move(
    p: DefaultPrivilege, before: tuple[tuple[str, ...], tuple[str, ...]], after: tuple[tuple[str, ...], tuple[str, ...]]
) -> list[Statement]:
    """The statements that take `p`'s grantee from `before` to `after` ((privileges, grantable) pairs)."""
    (old, old_option), (new, new_option) = before, after
    removed = [x for x in old if x not in new]
    lost_option = [x for x in old_option if x not in new_option and x in new]
    plain = [x for x in new if x not in old and x not in new_option]
    optioned = [x for x in new if x in new_option and (x not in old or x not in old_option)]
    on, grantee = f"ON {p.object_type}", role_sql(p.grantee)
    authz = Hazard.of(HazardKind.AUTHZ_CHANGE, f"default privileges {p.key}")
    sql = []
    if removed:
        sql.append(f"{_prefix(p)} REVOKE {', '.join(removed)} {on} FROM {grantee}")
    if lost_option:
        sql.append(f"{_prefix(p)} REVOKE GRANT OPTION FOR {', '.join(lost_option)} {on} FROM {grantee}")
    if plain:
        sql.append(f"{_prefix(p)} GRANT {', '.join(plain)} {on} TO {grantee}")
    if optioned:
        sql.append(f"{_prefix(p)} GRANT {', '.join(optioned)} {on} TO {grantee} WITH GRANT OPTION")
    return [Statement(sql=s, hazards=(authz,), object=f"default_privilege {p.key}") for s in sql]


class DefaultPrivilegeGenerator:
    kind = "default_privilege"
    recreates_dependants = False

    def create(self, new: DefaultPrivilege, ctx: Context) -> list[Statement]:
        return _move(new, _builtin(new), (new.privileges, new.grantable))

    def drop(self, old: DefaultPrivilege, ctx: Context) -> list[Statement]:
        return _move(old, (old.privileges, old.grantable), _builtin(old))

    def alter(self, old: DefaultPrivilege, new: DefaultPrivilege, ctx: Context) -> list[Statement] | None:
        return _move(new, (old.privileges, old.grantable), (new.privileges, new.grantable))

    def depends_on(self, p: DefaultPrivilege) -> Iterable[tuple[Node, bool]]:
        return ((("schema", ident(p.schema)), True),) if p.schema is not None else ()
