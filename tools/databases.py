"""Named database environments and their connection pools: the I/O edge every tool goes through.

Pools are created lazily, on the first call that needs an environment, and closed by `close()`
(the server's lifespan calls it on shutdown). Every error message is scrubbed of passwords.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from pgshift.tools.errors import ConfigError, ConnectionFailed, EnvironmentBusy, NotAllowed
from pgshift.tools.redact import redact_url, scrub, split_userinfo, url_secrets
from pgshift.tools.untrusted import fence_text

CONNECT_TIMEOUT_S = 10.0
POOL_WAIT_S = 30.0
POOL_SIZE = 5
DEFAULT_STATEMENT_TIMEOUT_MS = 30_000
SUPABASE_POOLER_PORT = 6543
# Query parameters Prisma (and libpq) understand that are not server settings: read here, never sent as such.
CLIENT_PARAMETERS = frozenset(
    {
        "schema",
        "pgbouncer",
        "connection_limit",
        "connect_timeout",
        "pool_timeout",
        "socket_timeout",
        "statement_cache_size",
        "sslmode",
        "sslaccept",
        "sslidentity",
        "single_use_connections",
    }
)
LIBPQ_PARAMETERS = frozenset({"sslmode", "connect_timeout"})  # client parameters libpq itself understands
_ENCODE_HINT = "percent-encode # as %23, / as %2F, ? as %3F, @ as %40, % as %25 and spaces as %20 in the password"


class Environment(BaseModel):
    """One configured database. `url` holds the secret: never return this object to a client."""

    model_config = ConfigDict(frozen=True)

    name: str
    url: str = Field(repr=False)
    protected: bool = False
    read_only: bool = False
    max_kept_bytes: int | None = Field(
        default=None, ge=0, description="Refuse a migration whose kept data (for undo) would exceed this many bytes"
    )
    shadow_url: str | None = Field(default=None, repr=False)  # scratch server for copies (tools.scratch)
    kept_retention_days: int = Field(default=30, ge=0, description="Days undo keeps destroyed data (tools.undo)")
    keep_snapshots: int = Field(default=20, ge=1, description="Newest snapshots kept per environment (tools.undo)")

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url)

    @property
    def uses_transaction_pooler(self) -> bool:
        """Supabase's transaction pooler (port 6543, or Prisma's `pgbouncer=true`) cannot keep session state.

        The session pooler (`*.pooler.supabase.com:5432`) keeps a server session per client: not this."""
        try:
            return connect_options(self).transaction_pooler
        except ConfigError:
            return False

    @property
    def transaction_pooler_sign(self) -> str:
        """What in the URL says it is the transaction pooler, for messages ("port 6543", "pgbouncer=true")."""
        parts = urlsplit(self.url)
        pgbouncer = any(k == "pgbouncer" and v.lower() in ("true", "1", "yes", "on") for k, v in parse_qsl(parts.query))
        try:
            port = _port(self, parts.netloc.rpartition("@")[2])
        except ConfigError:
            port = None
        on_port = f"port {port}" if port is not None else "its URL's port"
        return f"pgbouncer=true in its URL, {on_port}" if pgbouncer else on_port

    @property
    def libpq_url(self) -> str:
        """The URL for libpq tools (pg_dump, psql): Prisma's own parameters removed, libpq's kept."""
        parts = urlsplit(self.url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        kept = urlencode([(k, v) for k, v in query if k not in CLIENT_PARAMETERS - LIBPQ_PARAMETERS])
        return urlunsplit((parts.scheme, parts.netloc, parts.path, kept, parts.fragment))

    @property
    def prisma_schema(self) -> str | None:
        """Prisma's `?schema=` parameter: the schema Prisma uses, and where its `_prisma_migrations` lives."""
        try:
            return connect_options(self).prisma_schema
        except ConfigError:
            return None


@dataclass(frozen=True)
class ConnectOptions:
    """An environment's URL read once: the DSN asyncpg gets, and the client-side parameters taken out of it."""

    dsn: str
    sslmode: str | None = None
    connect_timeout: float = CONNECT_TIMEOUT_S
    pool_size: int = POOL_SIZE
    pool_timeout: float = POOL_WAIT_S
    statement_cache_size: int | None = None
    transaction_pooler: bool = False
    prisma_schema: str | None = None


def _malformed(env: Environment, reason: str) -> ConfigError:
    return ConfigError(f"environment '{env.name}': its URL {env.redacted_url} cannot be read: {reason}")


def _number(env: Environment, params: Mapping[str, str], key: str, default: float, *, minimum: float) -> float:
    if key not in params:
        return default
    try:
        value = float(params[key])
    except ValueError:
        raise _malformed(env, f"{key}={params[key]!r} is not a number") from None
    return value if value >= minimum else default


def _netloc(userinfo: str | None, netloc: str) -> str:
    """The network location with the user and password encoded as asyncpg reads them (an unencoded `@`,
    space or `%` in a password then reaches the server as written)."""
    if userinfo is None:
        return netloc
    user, sep, password = userinfo.partition(":")
    hosts = netloc.rpartition("@")[2]
    encoded = quote(unquote(user), safe="") + (":" + quote(unquote(password), safe="") if sep else "")
    return f"{encoded}@{hosts}"


def _port(env: Environment, hosts: str) -> int | None:
    """The port of a single-host URL (None for several hosts, which asyncpg reads itself); ConfigError when it is
    not a number."""
    if "," in hosts:
        return None
    _, colon, port = hosts.rpartition(":")
    if not colon or "]" in port or not port:  # no port, or the last colon belongs to an IPv6 address
        return None
    if not port.isdigit():
        raise _malformed(env, f"the port is not a number (if the password holds any of # / ? @ %: {_ENCODE_HINT})")
    return int(port)


def connect_options(env: Environment) -> ConnectOptions:
    """Read an environment's URL (Prisma and Supabase forms included). ConfigError, naming the environment and
    never quoting the password, when it cannot be read."""
    prefix, userinfo, _ = split_userinfo(env.url)
    if prefix not in ("postgres://", "postgresql://"):
        raise _malformed(env, "it must start with postgresql:// (or postgres://)")
    if userinfo is not None and any(c in userinfo for c in "/?#"):
        raise _malformed(env, f"the user name or password holds an unencoded '/', '?' or '#': {_ENCODE_HINT}")
    parts = urlsplit(env.url)
    port = _port(env, parts.netloc.rpartition("@")[2])
    query = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(query)
    pgbouncer = params.get("pgbouncer", "").lower() in ("true", "1", "yes", "on")
    cache = params.get("statement_cache_size")
    limit = _number(env, params, "connection_limit", POOL_SIZE, minimum=1)
    server_query = urlencode([(k, v) for k, v in query if k not in CLIENT_PARAMETERS])
    return ConnectOptions(
        dsn=urlunsplit((parts.scheme, _netloc(userinfo, parts.netloc), parts.path, server_query, "")),
        sslmode=params.get("sslmode"),
        connect_timeout=_number(env, params, "connect_timeout", CONNECT_TIMEOUT_S, minimum=0.001),
        pool_size=int(limit),
        pool_timeout=_number(env, params, "pool_timeout", POOL_WAIT_S, minimum=0.001),
        statement_cache_size=int(_number(env, params, "statement_cache_size", 0, minimum=0)) if cache else None,
        transaction_pooler=port == SUPABASE_POOLER_PORT or pgbouncer,
        prisma_schema=params.get("schema") or None,
    )


def _ssl(sslmode: str) -> Any:
    if sslmode in ("require", "prefer", "allow"):
        # libpq semantics: encrypt but do not verify the certificate.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx if sslmode == "require" else sslmode
    return sslmode  # disable, verify-ca, verify-full: asyncpg knows them


def connect_kwargs(env: Environment) -> dict[str, Any]:
    """asyncpg connection arguments for an environment (pooler, sslmode and Prisma's parameters handled)."""
    options = connect_options(env)
    kwargs: dict[str, Any] = {"dsn": options.dsn, "timeout": options.connect_timeout}
    if options.sslmode is not None:
        kwargs["ssl"] = _ssl(options.sslmode)
    if options.transaction_pooler:
        kwargs["statement_cache_size"] = 0
    elif options.statement_cache_size is not None:
        kwargs["statement_cache_size"] = options.statement_cache_size
    return kwargs


def describe_connect_error(env: Environment, exc: BaseException, timeout_s: float = CONNECT_TIMEOUT_S) -> str:
    """A user-facing sentence for a failed connection, without secrets."""
    if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        reason = "authentication failed (check the user and password in its URL)"
    elif isinstance(exc, asyncpg.InvalidCatalogNameError):
        reason = "the database named in its URL does not exist"
    elif isinstance(exc, TimeoutError | asyncio.TimeoutError):
        reason = f"no answer within {timeout_s:g} s"
    elif isinstance(exc, OSError):
        reason = f"server unreachable ({exc.strerror or type(exc).__name__})"
    elif isinstance(exc, ValueError):  # asyncpg's own URL reading: its message may quote the URL
        reason = f"its URL cannot be read ({_ENCODE_HINT})"
    else:  # the server's own words: untrusted text
        reason = f"{type(exc).__name__}: {fence_text(exc)}"
    return scrub(f"cannot connect to environment '{env.name}' at {env.redacted_url}: {reason}", url_secrets(env.url))


_CONNECT_ERRORS = (OSError, TimeoutError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def connect(env: Environment) -> asyncpg.Connection:
    """One connection, outside any pool (for the CLI and one-off work). Raises ConnectionFailed."""
    kwargs = connect_kwargs(env)
    try:
        return await asyncpg.connect(**kwargs)
    except _CONNECT_ERRORS as exc:
        raise ConnectionFailed(describe_connect_error(env, exc, kwargs["timeout"])) from None


@asynccontextmanager
async def snapshot_pair(env: Environment) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection]]:
    """Two direct connections to `env` inside a read-only REPEATABLE READ transaction on the first: the second shares
    its snapshot and takes half of a catalog read (compare and plan, from the CLI). Both are closed afterwards, and a
    connection that fails closes the other."""
    opened = await asyncio.gather(connect(env), connect(env), return_exceptions=True)
    failed = [r for r in opened if isinstance(r, BaseException)]
    if failed:
        await asyncio.gather(*(c.close() for c in opened if isinstance(c, asyncpg.Connection)))
        raise failed[0]
    conn, helper = (c for c in opened if isinstance(c, asyncpg.Connection))
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            yield conn, helper
    finally:
        await asyncio.gather(conn.close(), helper.close())


async def _discard_all(conn: asyncpg.Connection) -> None:
    """Pool reset: the next caller gets a session as new (role, session authorization, settings, temporary
    objects, prepared statements, cursors, listeners, advisory locks). asyncpg's default reset keeps the role,
    temporary tables and prepared statements; pools therefore run with asyncpg's statement cache off, since
    DISCARD ALL would drop the statements that cache names."""
    await conn.execute("DISCARD ALL")


class _Slots:
    """At most `size` connections of one environment out at once; several for one caller are taken together."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = asyncio.Semaphore(size)
        self.several = asyncio.Lock()

    async def take(self, count: int) -> None:
        if count == 1:
            await self.free.acquire()
            return
        taken = 0
        try:
            # One caller at a time gathers several: a caller holding some never waits on another such caller.
            async with self.several:
                for _ in range(count):
                    await self.free.acquire()
                    taken += 1
        except BaseException:
            self.give(taken)
            raise

    def give(self, count: int) -> None:
        for _ in range(count):
            self.free.release()


class Databases:
    """The configured environments and their lazily created pools.

    Every connection goes back to its pool reset (`DISCARD ALL`). A caller that needs several connections of
    one environment (compare: one snapshot and a helper) takes them together, so concurrent callers never each
    hold one while waiting for another; waiting for a busy pool is `EnvironmentBusy`, never a failed connect.
    """

    def __init__(self, environments: Mapping[str, Environment] | list[Environment]) -> None:
        envs = list(environments.values()) if isinstance(environments, Mapping) else list(environments)
        self._envs: dict[str, Environment] = {e.name: e for e in envs}
        self._pools: dict[str, tuple[asyncpg.Pool, _Slots]] = {}
        # One lock per environment: a slow or unreachable one never holds up the others.
        self._locks: dict[str, asyncio.Lock] = {name: asyncio.Lock() for name in self._envs}

    @classmethod
    def from_urls(cls, urls: Mapping[str, str], *, protected: frozenset[str] = frozenset()) -> Databases:
        return cls([Environment(name=n, url=u, protected=n in protected) for n, u in urls.items()])

    def names(self) -> list[str]:
        return list(self._envs)

    def environment(self, name: str) -> Environment:
        try:
            return self._envs[name]
        except KeyError:
            known = ", ".join(sorted(self._envs)) or "none configured"
            raise ConfigError(f"unknown environment '{name}'; configured environments: {known}") from None

    def secrets(self) -> list[str]:
        urls = [u for e in self._envs.values() for u in (e.url, e.shadow_url) if u]
        return sorted({p for u in urls for p in url_secrets(u)})

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets())

    async def _pool(self, name: str) -> tuple[asyncpg.Pool, _Slots]:
        env = self.environment(name)
        async with self._locks[name]:
            found = self._pools.get(name)
            if found is not None:
                return found
            options = connect_options(env)
            kwargs = {**connect_kwargs(env), "statement_cache_size": 0}  # see _discard_all
            try:
                pool = await asyncpg.create_pool(min_size=0, max_size=options.pool_size, reset=_discard_all, **kwargs)
                # min_size=0 creates nothing: prove the environment answers now, not at first use.
                async with pool.acquire() as conn:
                    await conn.execute("SELECT 1")
            except _CONNECT_ERRORS as exc:
                raise ConnectionFailed(describe_connect_error(env, exc, options.connect_timeout)) from None
            self._pools[name] = (pool, _Slots(options.pool_size))
            return self._pools[name]

    async def pool(self, name: str) -> asyncpg.Pool:
        return (await self._pool(name))[0]

    @asynccontextmanager
    async def connections(self, name: str, count: int = 1) -> AsyncIterator[list[asyncpg.Connection]]:
        """Up to `count` pooled connections (never more than the pool holds, at least one), taken together,
        with no transaction open. Raises EnvironmentBusy when they stay in use for the pool's whole wait."""
        pool, slots = await self._pool(name)
        env = self.environment(name)
        options = connect_options(env)
        count = max(1, min(count, slots.size))
        try:
            async with asyncio.timeout(options.pool_timeout):
                await slots.take(count)
        except TimeoutError:
            raise EnvironmentBusy(
                f"environment '{name}' is busy: its {slots.size} connection(s) stayed in use for "
                f"{options.pool_timeout:g} s. Nothing was run; retry, or raise connection_limit in its URL."
            ) from None
        conns: list[asyncpg.Connection] = []
        try:
            for _ in range(count):
                try:
                    conns.append(await pool.acquire(timeout=options.connect_timeout))
                except _CONNECT_ERRORS as exc:
                    raise ConnectionFailed(describe_connect_error(env, exc, options.connect_timeout)) from None
            yield conns
        finally:
            await asyncio.gather(*(self._release(pool, c) for c in conns))
            slots.give(count)

    @staticmethod
    async def _release(pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
        # A connection whose reset fails is closed by asyncpg; the caller's own outcome is what matters.
        try:
            await pool.release(conn)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            pass

    @asynccontextmanager
    async def connection(self, name: str) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection with no transaction open: the caller manages it."""
        async with self.connections(name, 1) as conns:
            yield conns[0]

    @asynccontextmanager
    async def read_only(
        self, name: str, *, statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS, snapshot: bool = False
    ) -> AsyncIterator[asyncpg.Connection]:
        """A connection inside a READ ONLY transaction (enforced by PostgreSQL), rolled back at the end.

        `snapshot=True` uses REPEATABLE READ so several queries see one consistent catalog.
        """
        async with self.read_only_with_helpers(
            name, helpers=0, statement_timeout_ms=statement_timeout_ms, snapshot=snapshot
        ) as (conn, _):
            yield conn

    @asynccontextmanager
    async def read_only_with_helpers(
        self,
        name: str,
        *,
        helpers: int,
        statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
        snapshot: bool = True,
    ) -> AsyncIterator[tuple[asyncpg.Connection, list[asyncpg.Connection]]]:
        """`read_only`, plus up to `helpers` idle connections taken at the same time (fewer when the pool is
        smaller): for work spread over several connections that share the first one's snapshot."""
        async with self.connections(name, 1 + helpers) as conns:
            conn = conns[0]
            isolation = "repeatable_read" if snapshot else "read_committed"
            tx = conn.transaction(isolation=isolation, readonly=True)
            await tx.start()
            try:
                await conn.execute(f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}")
                yield conn, conns[1:]
            finally:
                await tx.rollback()

    def require_writable(self, name: str) -> Environment:
        env = self.environment(name)
        if env.read_only:
            raise NotAllowed(f"environment '{name}' is configured read_only: writes are refused")
        return env

    async def close(self) -> None:
        pools, self._pools = [p for p, _ in self._pools.values()], {}
        for pool in pools:
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except TimeoutError:
                pool.terminate()
