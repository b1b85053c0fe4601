"""Row-level security policies and privileges (grants): every statement here is an authorisation change."""

from __future__ import annotations

from collections.abc import Iterable

from pgshift.tools.model import Policy, Privilege
from pgshift.tools.plan.context import Context, Node
from pgshift.tools.plan.ddl import comment_on
from pgshift.tools.plan.statement import Hazard, HazardKind, Statement
from pgshift.tools.sql import quote_ident


def role_sql(name: str) -> str:
    return "PUBLIC" if name.lower() == "public" else quote_ident(name)


class PolicyGenerator:
    kind = "policy"
    recreates_dependants = True  # recreated when a column or function its expressions use is

    def depends_on(self, p: Policy) -> Iterable[tuple[Node, bool]]:
        """Inside its table: dropped with it (what its expressions use comes from pg_depend)."""
        return ((("table", p.table), True),)

    def create(self, new: Policy, ctx: Context) -> list[Statement]:
        kind = "PERMISSIVE" if new.permissive else "RESTRICTIVE"
        roles = ", ".join(role_sql(r) for r in new.roles) or "PUBLIC"
        using = f" USING ({new.using})" if new.using is not None else ""
        check = f" WITH CHECK ({new.with_check})" if new.with_check is not None else ""
        sql = (
            f"CREATE POLICY {quote_ident(new.name)} ON {new.table} AS {kind} FOR {new.command} TO {roles}{using}{check}"
        )
        authz = Hazard.of(HazardKind.AUTHZ_CHANGE, f"policy {new.key} is created")
        out = [Statement(sql=sql, hazards=(authz,), object=f"policy {new.key}")]
        if new.comment is not None:
            out.append(Statement(sql=comment_on(f"POLICY {quote_ident(new.name)} ON {new.table}", new.comment)))
        return out

    def drop(self, old: Policy, ctx: Context) -> list[Statement]:
        authz = Hazard.of(HazardKind.AUTHZ_CHANGE, f"policy {old.key} is dropped")
        sql = f"DROP POLICY {quote_ident(old.name)} ON {old.table}"
        return [Statement(sql=sql, hazards=(authz,), object=f"policy {old.key}")]

    def alter(self, old: Policy, new: Policy, ctx: Context) -> list[Statement] | None:
        if (old.command, old.permissive, old.roles, old.using, old.with_check) != (
            new.command,
            new.permissive,
            new.roles,
            new.using,
            new.with_check,
        ):
            return None
        return [Statement(sql=comment_on(f"POLICY {quote_ident(new.name)} ON {new.table}", new.comment))]


def _on(p: Privilege, ctx: Context, privileges: tuple[str, ...]) -> tuple[str, str]:
    """(privilege list, `ON ...` clause) for a GRANT or REVOKE."""
    kind = p.object_kind
    if kind == "COLUMN":
        relations = [t.key for t in (*ctx.source.tables, *ctx.target.tables)]
        relations += [v.key for v in (*ctx.source.views, *ctx.target.views)]
        table = next((k for k in relations if p.object.startswith(k + ".")), p.object.rsplit(".", 1)[0])
        column = p.object[len(table) + 1 :]
        return ", ".join(f"{priv} ({column})" for priv in privileges), f"TABLE {table}"
    if kind in ("VIEW", "MATERIALIZED VIEW"):
        kind = "TABLE"
    if kind == "SCHEMA":
        return ", ".join(privileges), f"SCHEMA {p.object}"
    return ", ".join(privileges), f"{kind} {p.object}"


class PrivilegeGenerator:
    kind = "privilege"

    def _grant(self, p: Privilege, privileges: tuple[str, ...], ctx: Context) -> list[Statement]:
        out = []
        plain = tuple(x for x in privileges if x not in p.grantable)
        granted = tuple(x for x in privileges if x in p.grantable)
        authz = Hazard.of(HazardKind.AUTHZ_CHANGE, f"{p.grantee} gains privileges on {p.object}")
        for group, suffix in ((plain, ""), (granted, " WITH GRANT OPTION")):
            if group:
                privs, on = _on(p, ctx, group)
                out.append(Statement(sql=f"GRANT {privs} ON {on} TO {role_sql(p.grantee)}{suffix}", hazards=(authz,)))
        return out

    def _revoke(self, p: Privilege, privileges: tuple[str, ...], ctx: Context) -> list[Statement]:
        if not privileges:
            return []
        privs, on = _on(p, ctx, privileges)
        authz = Hazard.of(HazardKind.AUTHZ_CHANGE, f"{p.grantee} loses privileges on {p.object}")
        return [Statement(sql=f"REVOKE {privs} ON {on} FROM {role_sql(p.grantee)}", hazards=(authz,))]

    def create(self, new: Privilege, ctx: Context) -> list[Statement]:
        return self._grant(new, new.privileges, ctx)

    def drop(self, old: Privilege, ctx: Context) -> list[Statement]:
        return self._revoke(old, old.privileges, ctx)

    def alter(self, old: Privilege, new: Privilege, ctx: Context) -> list[Statement] | None:
        removed = tuple(x for x in old.privileges if x not in new.privileges)
        lost_option = tuple(x for x in old.grantable if x not in new.grantable and x in new.privileges)
        added = tuple(
            x for x in new.privileges if x not in old.privileges or (x in new.grantable and x not in old.grantable)
        )
        out = self._revoke(old, removed, ctx)
        if lost_option:
            privs, on = _on(old, ctx, lost_option)
            authz = Hazard.of(HazardKind.AUTHZ_CHANGE, f"{old.grantee} loses the grant option on {old.object}")
            out.append(
                Statement(sql=f"REVOKE GRANT OPTION FOR {privs} ON {on} FROM {role_sql(old.grantee)}", hazards=(authz,))
            )
        return out + self._grant(new, added, ctx)
