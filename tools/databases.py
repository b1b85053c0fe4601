"""Named database environments and their connection pools: the I/O edge every tool goes through.

Pools are created lazily, on the first call that needs an environment, and closed by `close()`
(the server's lifespan calls it on shutdown). Every error message is scrubbed of passwords.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from tools.errors import ConfigError, ConnectionFailed, NotAllowed
from tools.redact import redact_url, scrub, url_password

CONNECT_TIMEOUT_S = 10.0
DEFAULT_STATEMENT_TIMEOUT_MS = 30_000
SUPABASE_POOLER_PORT = 6543


class Environment(BaseModel):
    """One configured database. `url` holds the secret: never return this object to a client."""

    model_config = ConfigDict(frozen=True)

    name: str
    url: str = Field(repr=False)
    protected: bool = False
    read_only: bool = False

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url)

    @property
    def uses_transaction_pooler(self) -> bool:
        """Supabase's transaction pooler (Supavisor/PgBouncer) cannot keep prepared statements."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        try:
            port = parts.port
        except ValueError:
            port = None
        return port == SUPABASE_POOLER_PORT or host.endswith("pooler.supabase.com")


def _split_sslmode(url: str) -> tuple[str, str | None]:
    """Remove `sslmode` from the URL's query so we can pass it to asyncpg explicitly."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    sslmode = next((v for k, v in query if k == "sslmode"), None)
    rest = [(k, v) for k, v in query if k != "sslmode"]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment)), sslmode


def connect_kwargs(env: Environment) -> dict[str, Any]:
    """asyncpg connection arguments for an environment (pooler and sslmode handled)."""
    dsn, sslmode = _split_sslmode(env.url)
    kwargs: dict[str, Any] = {"dsn": dsn, "timeout": CONNECT_TIMEOUT_S}
    if sslmode is not None:
        if sslmode in ("require", "prefer", "allow"):
            # libpq semantics: encrypt but do not verify the certificate.
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            kwargs["ssl"] = ctx if sslmode == "require" else sslmode
        else:
            kwargs["ssl"] = sslmode  # disable, verify-ca, verify-full: asyncpg knows them
    if env.uses_transaction_pooler:
        kwargs["statement_cache_size"] = 0
    return kwargs


def describe_connect_error(env: Environment, exc: BaseException) -> str:
    """A user-facing sentence for a failed connection, without secrets."""
    if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        reason = "authentication failed (check the user and password in its URL)"
    elif isinstance(exc, asyncpg.InvalidCatalogNameError):
        reason = "the database named in its URL does not exist"
    elif isinstance(exc, TimeoutError | asyncio.TimeoutError):
        reason = f"no answer within {CONNECT_TIMEOUT_S:.0f} s"
    elif isinstance(exc, OSError):
        reason = f"server unreachable ({exc.strerror or type(exc).__name__})"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    secrets = [p for p in [url_password(env.url)] if p]
    return scrub(f"cannot connect to environment '{env.name}' at {env.redacted_url}: {reason}", secrets)


async def connect(env: Environment) -> asyncpg.Connection:
    """One connection, outside any pool (for the CLI and one-off work). Raises ConnectionFailed."""
    try:
        return await asyncpg.connect(**connect_kwargs(env))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise ConnectionFailed(describe_connect_error(env, exc)) from None


class Databases:
    """The configured environments and their lazily created pools."""

    def __init__(self, environments: Mapping[str, Environment] | list[Environment]) -> None:
        envs = list(environments.values()) if isinstance(environments, Mapping) else list(environments)
        self._envs: dict[str, Environment] = {e.name: e for e in envs}
        self._pools: dict[str, asyncpg.Pool] = {}
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
        return [p for p in (url_password(e.url) for e in self._envs.values()) if p]

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets())

    async def pool(self, name: str) -> asyncpg.Pool:
        env = self.environment(name)
        async with self._locks[name]:
            pool = self._pools.get(name)
            if pool is None:
                try:
                    pool = await asyncpg.create_pool(min_size=0, max_size=5, **connect_kwargs(env))
                    # min_size=0 creates nothing: prove the environment answers now, not at first use.
                    async with pool.acquire() as conn:
                        await conn.execute("SELECT 1")
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    raise ConnectionFailed(describe_connect_error(env, exc)) from None
                self._pools[name] = pool
            return pool

    @asynccontextmanager
    async def connection(self, name: str) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection with no transaction open: the caller manages it."""
        pool = await self.pool(name)
        env = self.environment(name)
        try:
            conn = await pool.acquire(timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise ConnectionFailed(describe_connect_error(env, exc)) from None
        try:
            yield conn
        finally:
            await pool.release(conn)

    @asynccontextmanager
    async def read_only(
        self, name: str, *, statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS, snapshot: bool = False
    ) -> AsyncIterator[asyncpg.Connection]:
        """A connection inside a READ ONLY transaction (enforced by PostgreSQL), rolled back at the end.

        `snapshot=True` uses REPEATABLE READ so several queries see one consistent catalog.
        """
        async with self.connection(name) as conn:
            isolation = "repeatable_read" if snapshot else "read_committed"
            tx = conn.transaction(isolation=isolation, readonly=True)
            await tx.start()
            try:
                await conn.execute(f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}")
                yield conn
            finally:
                await tx.rollback()

    def require_writable(self, name: str) -> Environment:
        env = self.environment(name)
        if env.read_only:
            raise NotAllowed(f"environment '{name}' is configured read_only: writes are refused")
        return env

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except TimeoutError:
                pool.terminate()
