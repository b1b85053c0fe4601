"""A snapshot's DDL loaded into a throw-away database on an embedded PostgreSQL, read back as a schema model.

The database is set up like the dry run's shadow (`tools.migrations.dryrun`: the target's roles exist, its
search_path is set) and loaded with psql; it is dropped afterwards, and a server started here is stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from pgshift.tools.introspect import introspect
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.migrations.dryrun import load_with_psql, sandboxed_database
from pgshift.tools.model import Schema
from pgshift.tools.redact import scrub
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
    async with sandboxed_database(target, "pgshift_snapshot", shadow) as box:
        errors = await load_with_psql(box.server.bin_dir, box.url, ddl)
        conn = await asyncpg.connect(box.admin_url)
        try:
            schema = await introspect(conn)
        finally:
            await conn.close()
        return Loaded(schema, tuple(fence_text(scrub(e, list(secrets_))) for e in errors))
