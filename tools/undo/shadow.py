"""A snapshot's DDL loaded into a throw-away database on a scratch server, read back as a schema model.

The server and the database are `tools.scratch`'s (the target's major version and extensions when it can; what it
cannot reproduce is `fidelity_lost`). The DDL is loaded over the protocol by `tools.script_loader`, as the scratch
database's owner, a role created without superuser, file or program rights: a psql meta-command in it refuses
the whole load (nothing runs), and each statement can do no more than that role. The database is dropped
afterwards, and a server started for it is stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from pgshift.tools.introspect import introspect
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.model import Schema
from pgshift.tools.scratch import create_extensions, sandboxed_database
from pgshift.tools.script_loader import load_pieces, pieces, roles_acted_for

INSUFFICIENT_PRIVILEGE = "42501"


@dataclass(frozen=True)
class Loaded:
    schema: Schema
    errors: tuple[str, ...]  # the load's errors, each with its line, scrubbed and fenced
    scratch_server: str = ""  # which server the DDL was loaded on ("PostgreSQL 15 (local, ...)")
    fidelity_lost: tuple[str, ...] = ()  # what that server cannot reproduce of the target (empty: faithful)
    refused: tuple[str, ...] = ()  # load errors for want of a right the sandboxed role never has (SQLSTATE 42501)

    @property
    def fingerprint(self) -> str:
        return self.schema.fingerprint()


async def load_ddl(
    ddl: str,
    target: asyncpg.Connection,
    *,
    shadow: LocalPostgres | None = None,
    shadow_url: str | None = None,
    secrets_: Sequence[str] = (),
) -> Loaded:
    """Load `ddl` into a fresh scratch database (see `tools.scratch` for which server) and read its schema the way
    the target's fingerprint is read. Raises MetaCommandRefused, before anything is created, when the DDL holds a
    psql meta-command."""
    todo = pieces(ddl, what="the snapshot's DDL")
    acts_for = roles_acted_for(todo)
    async with sandboxed_database(target, "pgshift_snapshot", shadow, shadow_url=shadow_url, acts_for=acts_for) as box:
        prepared = await create_extensions(box, {p.extension for p in todo if p.extension})
        lost = box.fidelity_lost + prepared.fidelity_lost
        conn = await box.connect()
        try:
            loaded = await load_pieces(conn, todo, secrets_=[*secrets_, *box.secrets], prepared=prepared.done)
        finally:
            await conn.close()
        conn = await asyncpg.connect(box.admin_url)
        try:
            schema = await introspect(conn)
        finally:
            await conn.close()
        refused = tuple(str(e) for e in loaded.errors if e.sqlstate == INSUFFICIENT_PRIVILEGE)
        return Loaded(schema, tuple(str(e) for e in loaded.errors), box.server.label, lost, refused)


def not_reached(snapshot_id: int, loaded: Loaded) -> str:
    """Why a loaded snapshot does not reach its recorded fingerprint, in words that never call a snapshot corrupted
    when the scratch server could not have reproduced it (another major version, an extension it lacks)."""
    shown = f": {'; '.join(loaded.errors[:3])}" if loaded.errors else ""
    errors = f"{len(loaded.errors)} load error(s){shown}"
    if loaded.fidelity_lost:
        return (
            f"snapshot {snapshot_id} cannot be reproduced on the scratch server {loaded.scratch_server}, which does "
            f"not match the target: {'; '.join(loaded.fidelity_lost)}. Loaded there it does not reach its recorded "
            f"fingerprint ({errors}); this says nothing against the snapshot itself"
        )
    if loaded.refused:
        return (
            f"snapshot {snapshot_id} cannot be reproduced in a scratch database: {len(loaded.refused)} of its "
            "statements need a right the loading role never has there (superuser, server files or programs, such "
            f"as event triggers or untrusted languages): {'; '.join(loaded.refused[:3])}. It does not reach its "
            "recorded fingerprint; this alone says nothing against the snapshot, but pgshift cannot verify it"
        )
    return (
        f"snapshot {snapshot_id} does not reach its recorded fingerprint when loaded on a scratch server that matches "
        f"the target ({loaded.scratch_server}, every extension of the target available): its DDL was damaged or "
        f"altered since it was recorded ({errors})"
    )
