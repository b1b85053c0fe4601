"""A Supabase production stand-in built from Supabase's own published SQL (tests/corpus/supabase-real).

`pg_tree` lays out a private PostgreSQL install (Debian's 15 here) with pgjwt added; `build_stand_in` starts it
with `supabase_admin` as the bootstrap superuser, as Supabase's image does, and builds the platform state into one
template database the way supabase/postgres's `migrate.sh`, GoTrue and storage-api do:

1. as supabase_admin: role `postgres` SUPERUSER (migrate.sh), the database owned by it;
2. as postgres: the pgbouncer auth schema (Dockerfile's `00-schema.sql`), then `init-scripts/*.sql`;
3. as supabase_admin: `stat_extension.sql` (`00-extension.sql`), then `migrations/*.sql`, in name order
   (`10000000000000_demote-postgres.sql` makes postgres NOSUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS);
4. as supabase_auth_admin (search_path auth): GoTrue's `*.up.sql`, one transaction each, versions recorded;
5. as supabase_storage_admin (search_path storage, public, with the `storage.*` settings storage-api sets):
   storage-api's tenant migrations in id order, one transaction each unless marked `disable-transaction`;
6. what supautils (C, not built here) lets a hosted `postgres` do, done as superuser: the extensions a hosted
   project of this major has (extensions.toml) are created, and SET is granted to `postgres` on each setting its
   `privileged_role_allowed_configs` names (`pgrst.*`: the settings PostgREST documents), so that `postgres` may
   `ALTER ROLE authenticator SET pgrst.…` as on a hosted project.

Scripts run statement by statement in autocommit as psql runs them. Two substitutions at build time, nothing else:
GoTrue's `{{ index .Options "Namespace" }}` → `auth`, and `DATABASE postgres` → the template's name. A role that
pgsodium's extension script would create is created before the migration that grants it (pgsodium is not
installed). Roles are cluster-wide: one stand-in per cluster; each test gets a `CREATE DATABASE … TEMPLATE` copy.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import shutil
import stat
import subprocess
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.migrations.parse import split_statements
from pgshift.tools.sql import quote_ident

SUPABASE_REAL = Path(__file__).resolve().parent / "corpus" / "supabase-real"
POSTGRES_SRC = SUPABASE_REAL / "postgres"
AUTH_SRC = SUPABASE_REAL / "auth" / "migrations"
STORAGE_SRC = SUPABASE_REAL / "storage" / "migrations" / "tenant"
PGJWT_SRC = SUPABASE_REAL / "pgjwt"
EXTENSIONS = SUPABASE_REAL / "extensions.toml"
SUPAUTILS_CONF = POSTGRES_SRC / "ansible/files/postgresql_config/supautils.conf.j2"
POSTGREST_CONFIG = SUPABASE_REAL / "postgrest/docs/references/configuration.rst"
TEMPLATE = "supabase_template"
BOOTSTRAP = "supabase_admin"
# Login roles the build connects as, and a client may: given the server's (random) password.
LOGIN_ROLES = ("postgres", "supabase_auth_admin", "supabase_storage_admin", "authenticator")
NAMESPACE = re.compile(r"\{\{ *index \.Options \"Namespace\" *\}\}")
DATABASE_POSTGRES = re.compile(r"DATABASE postgres( |;)", re.IGNORECASE)
PGSODIUM_ROLES = (
    "create role pgsodium_keyiduser nologin; create role pgsodium_keyholder nologin;"
    " create role pgsodium_keymaker nologin; grant pgsodium_keyiduser to pgsodium_keyholder;"
    " grant pgsodium_keyholder to pgsodium_keymaker;"
)
GRANTS_PGSODIUM = "20230529180330_alter_api_roles_for_inherit.sql"
ALLOWED_CONFIGS = re.compile(r"^supautils\.privileged_role_allowed_configs = '([^']*)'", re.MULTILINE)
IN_DATABASE = re.compile(r"\*\*In-Database\*\* +`?(pgrst\.[a-z0-9_]+)`?")
STORAGE_SETTINGS = (
    "select set_config('storage.install_roles','false',false), set_config('storage.multitenant','false',false),"
    " set_config('storage.anon_role','anon',false), set_config('storage.authenticated_role','authenticated',false),"
    " set_config('storage.service_role','service_role',false), set_config('storage.super_user','postgres',false)"
)


@dataclass(frozen=True)
class MajorExtensions:
    """What a hosted Supabase project of one PostgreSQL major has (extensions.toml)."""

    major: int
    installed: tuple[str, ...]  # created in every new project, in schema `extensions`
    not_shipped: tuple[str, ...]  # not available on this major


def privileged_role_settings() -> list[str]:
    """The settings supautils lets the hosted `postgres` set (on itself and on the API roles), by name: the entries of
    `supautils.privileged_role_allowed_configs`, a `prefix.*` entry read as every such setting PostgREST documents
    (its "In-Database" names). Prefixes nothing here documents (plan_filter.*) are left out."""
    allowed = ALLOWED_CONFIGS.search(SUPAUTILS_CONF.read_text())
    assert allowed is not None, f"no privileged_role_allowed_configs in {SUPAUTILS_CONF}"
    documented = sorted(set(IN_DATABASE.findall(POSTGREST_CONFIG.read_text())))
    names: list[str] = []
    for entry in (e.strip() for e in allowed.group(1).split(",")):
        if entry.endswith(".*"):
            names += [n for n in documented if n.startswith(entry[:-1])]
        else:
            names.append(entry)
    return names


def major_extensions(major: int) -> MajorExtensions:
    data = tomllib.loads(EXTENSIONS.read_text())[str(major)]
    return MajorExtensions(major, tuple(data["installed"]), tuple(data["not_shipped"]))


@dataclass(frozen=True)
class StandIn:
    """A running cluster holding the Supabase platform state in database `template`."""

    server: LocalPostgres
    major: int
    template: str
    build_seconds: float

    def admin_url(self, database: str) -> str:
        """As supabase_admin, the platform's superuser (the tests' own checks, never pgshift)."""
        return self.server.url(database)

    def app_url(self, database: str) -> str:
        """As `postgres` with its password over TCP, as an app connects to a hosted project (not a superuser)."""
        return self.server.url(database, user="postgres")


def _link_or_copy(source: str, target: str) -> None:
    """A hard link when others may read the file (nothing copied, the original untouched), else a readable copy."""
    if os.stat(source).st_mode & stat.S_IROTH:
        try:
            os.link(source, target)
            return
        except OSError:
            pass
    shutil.copyfile(source, target)
    os.chmod(target, 0o755 if os.stat(source).st_mode & stat.S_IXUSR else 0o644)


def pg_tree(source_bin: Path, into: Path, extensions: MajorExtensions) -> Path:
    """A private copy of a Debian PostgreSQL install, laid out as Debian's (`usr/lib/postgresql/<major>` and
    `usr/share/postgresql/<major>`) so its binaries find their share folder relative to themselves, with pgjwt's
    files added to `share/extension` when the major ships it. Readable by others (the server may run as `nobody`).
    Returns the copy's bin folder."""
    install = source_bin.parent  # /usr/lib/postgresql/<major>
    major = install.name
    share = install.parents[2] / "share" / "postgresql" / major
    if (install / "share").is_dir():  # a self-contained install (bin, lib, share side by side): copied whole
        lib_copy = into / "install"
        share_copy = lib_copy / "share"
        shutil.copytree(install, lib_copy, symlinks=True, copy_function=_link_or_copy)
    else:
        lib_copy = into / "usr" / "lib" / "postgresql" / major
        share_copy = into / "usr" / "share" / "postgresql" / major
        for src, dst in ((install, lib_copy), (share, share_copy)):
            shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
    if "pgjwt" in extensions.installed:
        for f in PGJWT_SRC.iterdir():
            if f.name == "pgjwt.control" or (f.name.startswith("pgjwt--") and f.suffix == ".sql"):
                shutil.copyfile(f, share_copy / "extension" / f.name)
                os.chmod(share_copy / "extension" / f.name, 0o644)
    for folder, _, _ in os.walk(into):
        os.chmod(folder, 0o755)  # all ours
    return lib_copy / "bin"


async def _connect(stand_in_server: LocalPostgres, database: str, user: str, **settings: str) -> asyncpg.Connection:
    return await asyncpg.connect(
        stand_in_server.url(database, user=user), server_settings=settings or None, command_timeout=300
    )


async def _run_script(conn: asyncpg.Connection, sql: str, *, skip_extensions: frozenset[str] = frozenset()) -> None:
    """Each statement on its own, in autocommit, as `psql -f` runs a file. `CREATE EXTENSION` of an extension the
    major does not ship is left out (as Supabase's own scripts for that major do)."""
    for s in split_statements(sql):
        if s.node_type == "CreateExtensionStmt" and s.node.extname in skip_extensions:
            continue
        await conn.execute(s.text)


def _sub_db(sql: str, database: str) -> str:
    return DATABASE_POSTGRES.sub(lambda m: f"DATABASE {quote_ident(database)}{m.group(1)}", sql)


def _storage_order(path: Path) -> int:
    return int(path.name.split("-", 1)[0])


async def build_platform(server: LocalPostgres, database: str, extensions: MajorExtensions) -> None:
    """Build Supabase's platform state into a new `database` of a fresh cluster (see the module docstring)."""
    skip = frozenset(extensions.not_shipped)
    password = server.password
    conn = await _connect(server, "postgres", BOOTSTRAP)
    try:  # 1
        await conn.execute(f"CREATE ROLE postgres SUPERUSER LOGIN PASSWORD '{password}'")
        await conn.execute(f"CREATE DATABASE {quote_ident(database)} OWNER postgres")
    finally:
        await conn.close()
    conn = await _connect(server, database, "postgres")
    try:  # 2
        await _run_script(conn, (POSTGRES_SRC / "ansible/files/pgbouncer_config/pgbouncer_auth_schema.sql").read_text())
        for f in sorted((POSTGRES_SRC / "migrations/db/init-scripts").glob("*.sql")):
            await _run_script(conn, _sub_db(f.read_text(), database), skip_extensions=skip)
    finally:
        await conn.close()
    conn = await _connect(server, database, BOOTSTRAP)
    try:  # 3
        await _run_script(conn, (POSTGRES_SRC / "ansible/files/stat_extension.sql").read_text())
        for f in sorted((POSTGRES_SRC / "migrations/db/migrations").glob("*.sql")):
            if f.name == GRANTS_PGSODIUM and not await conn.fetchval(
                "select count(*) from pg_extension where extname = 'pgsodium'"
            ):
                await conn.execute(PGSODIUM_ROLES)  # what pgsodium's extension script would have created
            await _run_script(conn, _sub_db(f.read_text(), database), skip_extensions=skip)
        for name in LOGIN_ROLES[1:]:
            await conn.execute(f"ALTER ROLE {quote_ident(name)} PASSWORD '{password}'")
    finally:
        await conn.close()
    conn = await _connect(server, database, "supabase_auth_admin", search_path="auth")
    try:  # 4: GoTrue (pop): each pending .up.sql in one transaction, its version recorded
        for f in sorted(AUTH_SRC.glob("*.up.sql")):
            version = f.name.split("_", 1)[0]
            if await conn.fetchval("select count(*) from auth.schema_migrations where version = $1", version):
                continue
            async with conn.transaction():
                await conn.execute("set local search_path = auth")
                await conn.execute(NAMESPACE.sub("auth", f.read_text()))
                await conn.execute("insert into auth.schema_migrations(version) values ($1)", version)
    finally:
        await conn.close()
    conn = await _connect(server, database, "supabase_storage_admin", search_path="storage, public")
    try:  # 5: storage-api (postgres-migrations)
        await conn.execute(STORAGE_SETTINGS)
        for f in sorted(STORAGE_SRC.glob("*.sql"), key=_storage_order):
            sql = f.read_text()
            ident, name = f.stem.split("-", 1)
            digest = hashlib.sha1((f.name + sql).encode()).hexdigest()  # postgres-migrations: sha1(file name + text)
            record = (
                "insert into storage.migrations(id, name, hash, executed_at) values ($1, $2, $3, now())"
                " on conflict do nothing"
            )
            if "postgres-migrations disable-transaction" in sql:
                await _run_script(conn, sql)
                await conn.execute(record, int(ident), name, digest)
            else:
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(record, int(ident), name, digest)
    finally:
        await conn.close()
    conn = await _connect(server, database, BOOTSTRAP)
    try:  # 6: what supautils lets the hosted `postgres` do, done or granted here as superuser
        for ext in extensions.installed:
            await conn.execute(f"CREATE EXTENSION IF NOT EXISTS {quote_ident(ext)} WITH SCHEMA extensions")
        for setting in privileged_role_settings():
            await conn.execute(f"GRANT SET ON PARAMETER {setting} TO postgres")
        await conn.execute("select pg_stat_reset()")
    finally:
        await conn.close()


def server_major(bin_dir: Path) -> int:
    out = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"(\d+)(?:\.\d+)?", out.split(")", 1)[-1]).group(1))  # type: ignore[union-attr]


def start_stand_in(source_bin: Path) -> tuple[StandIn, Path]:
    """Build a private tree from `source_bin`, start it and build the platform template. Returns the stand-in and
    the tree's folder (the caller removes it after `server.stop()`)."""
    started = time.perf_counter()
    major = server_major(source_bin)
    extensions = major_extensions(major)
    tree = Path(tempfile.mkdtemp(prefix="pgshift-supabase-tree-"))
    try:
        os.chmod(tree, 0o755)
        bin_dir = pg_tree(source_bin, tree, extensions)
        server = LocalPostgres(bin_dir, user=BOOTSTRAP).start()
        try:
            asyncio.run(build_platform(server, TEMPLATE, extensions))
        except BaseException:
            server.stop()
            raise
    except BaseException:
        shutil.rmtree(tree, ignore_errors=True)
        raise
    return StandIn(server, major, TEMPLATE, time.perf_counter() - started), tree


async def copy_project(stand_in: StandIn, prefix: str = "supa") -> str:
    """A new database copied from the platform template, owned by postgres and granted what the template's
    database-level grants give (those live in the shared catalog, which a copy does not carry). Its name."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(stand_in.admin_url("postgres"))
    try:
        await conn.execute(
            f"CREATE DATABASE {quote_ident(name)} TEMPLATE {quote_ident(stand_in.template)} OWNER postgres"
        )
        rows = await conn.fetch(
            "select a.privilege_type, r.rolname from pg_database d, aclexplode(d.datacl) a"
            " join pg_roles r on r.oid = a.grantee where d.datname = $1 and r.rolname <> 'postgres'",
            stand_in.template,
        )
        for row in rows:
            await conn.execute(
                f"GRANT {row['privilege_type']} ON DATABASE {quote_ident(name)} TO {quote_ident(row['rolname'])}"
            )
        await conn.execute(f"GRANT ALL ON DATABASE {quote_ident(name)} TO postgres")
    finally:
        await conn.close()
    return name


async def drop_project(stand_in: StandIn, name: str) -> None:
    conn = await asyncpg.connect(stand_in.admin_url("postgres"))
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
    finally:
        await conn.close()
