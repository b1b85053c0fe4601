"""A snapshot's DDL loaded into a throw-away database on an embedded PostgreSQL, read back as a schema model.

The database is set up like the dry run's shadow (`tools.migrations.dryrun`: the target's roles exist, its
search_path is set) and loaded with psql; it is dropped afterwards, and a server started here is stopped.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
import asyncpg

from pgshift.tools.introspect import introspect
from pgshift.tools.localpg import LocalPostgres, embedded_server
from pgshift.tools.migrations.dryrun import load_with_psql, sandbox
from pgshift.tools.model import Schema
from pgshift.tools.redact import scrub
from pgshift.tools.sql import quote_ident
from pgshift.tools.untrusted import fence_text


@dataclass(frozen=True)
class Loaded:
    schema: Schema
    errors: tuple[str, ...]  # psql's error lines, scrubbed and fenced

    @property
    def fingerprint(self) -> str:
        return self.schema.fingerprint()


async def load_ddl(
    ddl: str, target: asyncpg.Connection, *, shadow: LocalPostgres | None = None, secrets_: Sequence[str] = ()
) -> Loaded:
    """Load `ddl` into a fresh database (on `shadow`, else on an embedded PostgreSQL 18 started for it) and read
    its schema the way the target's fingerprint is read."""
    owned = shadow is None
    server = shadow or embedded_server()
    if owned:
        await anyio.to_thread.run_sync(server.start)
    name = f"pgshift_snapshot_{secrets.token_hex(6)}"
    password = secrets.token_urlsafe(24)
    try:
        await sandbox(server, name, password, target)
        errors = await load_with_psql(server.bin_dir, server.url(name, user=name, password=password), ddl)
        conn = await asyncpg.connect(server.url(name))
        try:
            schema = await introspect(conn)
        finally:
            await conn.close()
        return Loaded(schema, tuple(fence_text(scrub(e, list(secrets_))) for e in errors))
    finally:
        try:
            admin = await asyncpg.connect(server.url())
            try:
                await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
                await admin.execute(f"DROP ROLE IF EXISTS {quote_ident(name)}")
            finally:
                await admin.close()
        finally:
            if owned:
                await anyio.to_thread.run_sync(server.stop)
