"""The platform rule: what a hosted Supabase project holds that is the platform's, never the app's.

One rule, read by every introspection (so compare, plan, drift, adopt and revert see the same `platform` marks;
`tools.diff` decides what a mark means for a comparison, `tools.diff.with_platform_state_of` for drift):

- extensions: Supabase's default set (`filters.SUPABASE_DEFAULT_EXTENSIONS`) installed in one of its schemas;
- default privileges granted to a platform role (`filters.SUPABASE_PLATFORM_ROLES`); those *of* a platform role
  (FOR ROLE supabase_admin) are not read at all;
- schema grants the platform gives: USAGE on `public` to postgres, anon, authenticated and service_role
  (Supabase's init script), on a Supabase database;
- grants to platform roles on app objects. On a database that has default privileges for platform roles (every
  hosted project: `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated,
  service_role`...), a grant is the platform's when those default privileges, as they apply to the object's owner
  in the object's schema, give at least that much: what any new object gets. A grant beyond them (on a table in
  another schema, or more than the defaults give) is the app's own, compared like any grant, so drift, adopt and
  revert see it. On a database without such default privileges (a local database, a hand-made miniature of
  Supabase) every grant to a platform role counts as the platform's, as before: never revoked, granted where the
  source has it and the target lacks it.

Internal roles: the sandboxed roles pgshift creates on scratch servers (`pgshift_expected_<hex>`...) own what a
replay builds; `with_role_renamed` maps them back to the target's connecting role before a replayed schema is
compared with the live one, so their names never reach an answer.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from pgshift.tools.introspect.filters import SUPABASE_DEFAULT_EXTENSIONS, SUPABASE_PLATFORM_ROLES
from pgshift.tools.model import Schema

__all__ = [
    "INTERNAL_ROLE",
    "PLATFORM_SCHEMA_GRANTEES",
    "PlatformGrants",
    "RoleSetting",
    "is_internal_role",
    "platform_extensions",
    "platform_role_setting",
    "with_role_renamed",
]

# Who Supabase's init script grants USAGE on schema public to.
PLATFORM_SCHEMA_GRANTEES: tuple[str, ...] = ("postgres", "anon", "authenticated", "service_role")
PLATFORM_SCHEMA_GRANTS: dict[str, frozenset[str]] = {"public": frozenset({"USAGE"})}

# The sandboxed login roles of pgshift's throw-away databases: `<prefix>_<12 hex digits>`.
INTERNAL_ROLE = re.compile(r"^pgshift_[a-z_]+_[0-9a-f]{12}$")

# pg_default_acl object types of each kind of grant (SCHEMA: global entries only).
_DEFAULT_TYPE = {
    "TABLE": "r",
    "VIEW": "r",
    "MATERIALIZED VIEW": "r",
    "SEQUENCE": "S",
    "FUNCTION": "f",
    "PROCEDURE": "f",
    "TYPE": "T",
    "SCHEMA": "n",
}


# Platform roles that are superusers on a hosted project: their settings are never the app's to change.
_SUPERUSER_PLATFORM_ROLES = frozenset({"supabase_admin"})
_SET, _DEFAULT, _RESET = 0, 1, 4  # pglast VariableSetKind: VAR_SET_VALUE, VAR_SET_DEFAULT, VAR_RESET


@dataclass(frozen=True)
class RoleSetting:
    """`ALTER ROLE <platform role> SET <parameter> ...` / `RESET <parameter>`: what Supabase (supautils) lets
    `postgres` run on its API roles (`alter role authenticator set pgrst.db_aggregates_enabled to 'true'`,
    `alter role authenticated set statement_timeout = '8s'`). Allowed only for a parameter that is a placeholder
    (`pgrst.x`) or user-settable (pg_settings.context 'user', checked where it runs)."""

    role: str
    parameter: str

    @property
    def placeholder(self) -> bool:
        return "." in self.parameter

    def in_database(self, node: Any, database: str) -> str:
        """The statement's text scoped to `database` (ALTER ROLE r IN DATABASE d ...): a copy's setting stays in
        the copy and goes with it."""
        from pglast import ast
        from pglast.stream import RawStream

        return str(RawStream()(ast.AlterRoleSetStmt(role=node.role, database=database, setstmt=node.setstmt)))


def platform_role_setting(node_type: str, node: Any) -> RoleSetting | None:
    """The setting when the parse tree `node` is an ALTER ROLE ... SET / RESET of one parameter on a platform role
    that is not a superuser (never ALL roles, never RESET ALL, never FROM CURRENT)."""
    if node_type != "AlterRoleSetStmt":
        return None
    role, setstmt = getattr(node, "role", None), getattr(node, "setstmt", None)
    name = getattr(role, "rolename", None)
    if name is None or setstmt is None or setstmt.name is None or int(setstmt.kind) not in (_SET, _DEFAULT, _RESET):
        return None
    if name not in SUPABASE_PLATFORM_ROLES or name in _SUPERUSER_PLATFORM_ROLES:
        return None
    return RoleSetting(role=name, parameter=setstmt.name)


def is_internal_role(name: str) -> bool:
    return bool(INTERNAL_ROLE.fullmatch(name))


def platform_extensions(include_managed: bool) -> tuple[str, ...]:
    """The extensions marked `platform` when installed in a managed schema (none when managed objects are read)."""
    return () if include_managed else SUPABASE_DEFAULT_EXTENSIONS


_Entry = tuple[str, str | None, str, str]  # (role, schema or None, object type, grantee)


@dataclass(frozen=True)
class PlatformGrants:
    """Which grants of one database are the platform's (see the module docstring), from its default privileges."""

    supabase: bool = False
    include_managed: bool = False
    # (role, schema, object type, grantee) -> (privileges, grantable), for platform-role grantees only
    defaults: dict[_Entry, tuple[frozenset[str], frozenset[str]]] = field(default_factory=dict)

    @classmethod
    def of(
        cls, default_rows: Iterable[Any], *, supabase: bool, include_managed: bool, roles: Collection[str] = ()
    ) -> PlatformGrants:
        """From the rows of `default_privileges.DEFAULT_PRIVILEGES` (role, schema, objtype, grantee, privilege,
        grantable)."""
        platform_roles = set(roles or SUPABASE_PLATFORM_ROLES)
        held: dict[_Entry, tuple[set[str], set[str]]] = {}
        for r in default_rows:
            if r["grantee"] not in platform_roles or r["privilege"] is None:
                continue
            privileges, grantable = held.setdefault(
                (r["role"], r["schema"], r["objtype"], r["grantee"]), (set(), set())
            )
            privileges.add(r["privilege"])
            if r["grantable"]:
                grantable.add(r["privilege"])
        return cls(
            supabase=supabase,
            include_managed=include_managed,
            defaults={k: (frozenset(p), frozenset(g)) for k, (p, g) in held.items()},
        )

    @property
    def explains(self) -> bool:
        """Whether the database has default privileges for platform roles (then only what they give is platform)."""
        return bool(self.defaults)

    def given(self, owner: str, schema: str, kind: str, grantee: str) -> tuple[frozenset[str], frozenset[str]]:
        """What the default privileges give `grantee` on a new object of `kind` that `owner` creates in `schema`."""
        objtype = _DEFAULT_TYPE.get(kind)
        if objtype is None:
            return frozenset(), frozenset()
        entries = [(owner, None, objtype, grantee)] + ([(owner, schema, objtype, grantee)] if kind != "SCHEMA" else [])
        privileges: frozenset[str] = frozenset()
        grantable: frozenset[str] = frozenset()
        for entry in entries:
            p, g = self.defaults.get(entry, (frozenset(), frozenset()))
            privileges, grantable = privileges | p, grantable | g
        return privileges, grantable

    def is_platform(
        self,
        kind: str,
        schema: str,
        owner: str | None,
        grantee: str,
        privileges: Collection[str],
        grantable: Collection[str] = (),
    ) -> bool:
        """Whether this grant is the platform's (see the module docstring)."""
        if self.include_managed:
            return False
        if (
            self.supabase
            and kind == "SCHEMA"
            and grantee in PLATFORM_SCHEMA_GRANTEES
            and schema in PLATFORM_SCHEMA_GRANTS
            and set(privileges) <= PLATFORM_SCHEMA_GRANTS[schema]
            and not grantable
        ):
            return True
        if grantee not in SUPABASE_PLATFORM_ROLES:
            return False
        if not self.explains:
            return True
        if owner is None:
            return False
        given, optioned = self.given(owner, schema, kind, grantee)
        return set(privileges) <= given and set(grantable) <= optioned


def _rename(value: str, old: str, new: str) -> str:
    return new if value == old else value


def with_role_renamed(schema: Schema, old: str, new: str) -> Schema:
    """`schema` with role `old` read as `new` wherever a role is named: default privileges (FOR ROLE and TO), grants,
    policies. A default privilege that then names `new` for itself (FOR ROLE new TO new) is left out, as
    introspection leaves out a role's own."""
    if old == new:
        return schema
    defaults = []
    for d in schema.default_privileges:
        if old not in (d.role, d.grantee):
            defaults.append(d)
            continue
        renamed = dataclasses.replace(d, role=_rename(d.role, old, new), grantee=_rename(d.grantee, old, new))
        if renamed.role != renamed.grantee:
            defaults.append(renamed)
    grants = [p if p.grantee != old else dataclasses.replace(p, grantee=new) for p in schema.privileges]
    policies = [
        p
        if old not in p.roles
        else dataclasses.replace(p, roles=tuple(sorted({_rename(r, old, new) for r in p.roles})))
        for p in schema.policies
    ]
    return dataclasses.replace(
        schema,
        default_privileges=tuple(sorted(defaults, key=lambda o: o.key)),
        privileges=tuple(sorted(grants, key=lambda o: o.key)),
        policies=tuple(sorted(policies, key=lambda o: o.key)),
    )


def internal_roles(schema: Schema) -> set[str]:
    """The internal role names a schema mentions."""
    names = {d.role for d in schema.default_privileges} | {d.grantee for d in schema.default_privileges}
    names |= {p.grantee for p in schema.privileges}
    names |= {r for p in schema.policies for r in p.roles}
    return {n for n in names if is_internal_role(n)}


def without_internal_roles(schema: Schema, role: str | None) -> Schema:
    """`schema` with every internal role read as `role` (the target's connecting role); without one, what names an
    internal role is left out."""
    for name in sorted(internal_roles(schema)):
        if role is not None:
            schema = with_role_renamed(schema, name, role)
        else:
            schema = _without_role(schema, name)
    return schema


def _without_role(schema: Schema, name: str) -> Schema:
    return dataclasses.replace(
        schema,
        default_privileges=tuple(d for d in schema.default_privileges if name not in (d.role, d.grantee)),
        privileges=tuple(p for p in schema.privileges if p.grantee != name),
        policies=tuple(
            p
            if name not in p.roles
            else dataclasses.replace(p, roles=tuple(r for r in p.roles if r != name) or ("public",))
            for p in schema.policies
        ),
    )
