"""Read a database's schema into the model: a fixed set of catalog queries, whatever the database's size.

    async with db.read_only("local", snapshot=True) as conn:
        schema = await introspect(conn)

One query per object kind (see the modules of this package), each run once with the same schema
filter as bind parameters, inside one REPEATABLE READ snapshot so they see one consistent catalog.
Definitions are read with `search_path = pg_catalog`, so every user object in them is qualified.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import asyncpg

from tools.errors import ConfigError, DatabaseError
from tools.introspect import (
    constraints,
    dependencies,
    functions,
    indexes,
    namespaces,
    privileges,
    relations,
    sequences,
    triggers,
    types,
)
from tools.introspect.filters import (
    SUPABASE_DEFAULT_EXTENSIONS,
    SUPABASE_MANAGED_SCHEMAS,
    SYSTEM_SCHEMAS,
    filter_args,
)
from tools.model import Schema

__all__ = ["SUPABASE_MANAGED_SCHEMAS", "SYSTEM_SCHEMAS", "QUERY_COUNT", "introspect"]

# Queries run per introspection (plus one for the version and one for search_path), dependencies included.
QUERY_COUNT = 16


async def introspect(
    conn: asyncpg.Connection,
    *,
    schemas: Sequence[str] | None = None,
    include_managed: bool = False,
    with_dependencies: bool = True,
) -> Schema:
    """The schema of the database behind `conn`.

    `schemas` limits the read to those schemas (None: every non-system schema). Supabase-managed schemas
    (`SUPABASE_MANAGED_SCHEMAS`) are left out unless `include_managed` or named in `schemas`.
    Runs inside the caller's transaction when there is one (use REPEATABLE READ for a consistent read),
    else in its own read-only REPEATABLE READ transaction. Raises DatabaseError if a catalog read fails.
    """
    if schemas is not None:
        bad = [s for s in schemas if not isinstance(s, str) or not s]
        if bad:
            raise ConfigError(f"schema names must be non-empty strings, got {bad!r}")
    with gc_paused():
        if conn.is_in_transaction():
            return await _read(conn, schemas, include_managed, with_dependencies)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await _read(conn, schemas, include_managed, with_dependencies)


_gc_pauses = 0


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building the model (a large schema is 100k+ small objects
    that hold no cycles; collecting during their creation costs more than building them). Nested and
    concurrent introspections share the pause; it ends with the last one."""
    global _gc_pauses
    was_enabled = gc.isenabled()
    _gc_pauses += 1
    gc.disable()
    try:
        yield
    finally:
        _gc_pauses -= 1
        if _gc_pauses == 0 and was_enabled:
            gc.enable()


async def _read(
    conn: asyncpg.Connection, schemas: Sequence[str] | None, include_managed: bool, with_dependencies: bool
) -> Schema:
    args = filter_args(schemas, include_managed)
    try:
        # search_path local to the transaction: definitions come out schema-qualified, whatever the session used.
        version = int(
            await conn.fetchval(
                "SELECT pg_catalog.current_setting('server_version_num')"
                " FROM pg_catalog.set_config('search_path', 'pg_catalog', true)"
            )
        )
        seq_rows = await conn.fetch(sequences.SEQUENCES, *args)
        column_rows = await conn.fetch(relations.COLUMNS, *args)
        table_rows = await conn.fetch(relations.TABLES, *args)
        view_rows = await conn.fetch(relations.VIEWS, *args)
        seqs, identity = sequences.sequences(seq_rows)
        cols = relations.columns(column_rows, identity)
        skip_ext = ("plpgsql",) if include_managed else ("plpgsql", *SUPABASE_DEFAULT_EXTENSIONS)
        schema = Schema(
            namespaces=namespaces.namespaces(await conn.fetch(namespaces.NAMESPACES, *args)),
            extensions=namespaces.extensions(await conn.fetch(namespaces.EXTENSIONS), skip_ext),
            collations=namespaces.collations(await conn.fetch(namespaces.COLLATIONS, *args)),
            enums=types.enums(await conn.fetch(types.ENUMS, *args)),
            domains=types.domains(await conn.fetch(types.DOMAINS, *args)),
            composite_types=types.composite_types(await conn.fetch(types.COMPOSITES, *args)),
            sequences=seqs,
            tables=relations.tables(table_rows, cols),
            views=relations.views(view_rows, cols),
            constraints=constraints.constraints(await conn.fetch(constraints.CONSTRAINTS, *args)),
            indexes=indexes.indexes(await conn.fetch(indexes.INDEXES, *args)),
            functions=functions.functions(await conn.fetch(functions.FUNCTIONS, *args)),
            triggers=triggers.triggers(await conn.fetch(triggers.TRIGGERS, *args)),
            policies=triggers.policies(await conn.fetch(triggers.POLICIES, *args)),
            privileges=privileges.privileges(await conn.fetch(privileges.PRIVILEGES, *args)),
            dependencies=(
                dependencies.dependencies(await conn.fetch(dependencies.DEPENDENCIES, *args))
                if with_dependencies
                else ()
            ),
            server_version_num=version,
            included_schemas=tuple(schemas) if schemas is not None else (),
        )
    except asyncpg.PostgresError as exc:
        raise DatabaseError(
            f"reading the catalog failed ({type(exc).__name__}: {exc}); nothing was changed in the database. "
            "Check that the role can read pg_catalog and retry.",
            getattr(exc, "sqlstate", None),
        ) from exc
    return schema
