"""Read a database's schema into the model: a fixed set of catalog queries, whatever the database's size.

    async with db.read_only("local", snapshot=True) as conn:
        schema = await introspect(conn)

One query per object kind (see the modules of this package), each run once with the same schema
filter as bind parameters, inside one REPEATABLE READ snapshot so they see one consistent catalog.
Definitions are read with `search_path = pg_catalog`, so every user object in them is qualified.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import asyncpg

from pgshift.tools.errors import ConfigError, DatabaseError
from pgshift.tools.introspect import (
    aggregates,
    constraints,
    default_privileges,
    dependencies,
    functions,
    indexes,
    namespaces,
    privileges,
    publications,
    range_types,
    relations,
    sequences,
    triggers,
    types,
    uncompared,
)
from pgshift.tools.introspect.declared import KindQuery, ReadOptions
from pgshift.tools.introspect.filters import SUPABASE_MANAGED_SCHEMAS, SYSTEM_SCHEMAS, filter_args
from pgshift.tools.introspect.history import without_history_tables
from pgshift.tools.introspect.platform import PlatformGrants, platform_extensions
from pgshift.tools.model import Schema
from pgshift.tools.sql import quote_literal
from pgshift.tools.untrusted import fence_text

__all__ = [
    "DECLARED",
    "QUERIES",
    "SUPABASE_MANAGED_SCHEMAS",
    "SYSTEM_SCHEMAS",
    "gc_paused",
    "introspect",
]

# Kinds declared as one unit (a query and a builder, see `tools.introspect.declared`): adding one is a line here.
DECLARED: tuple[KindQuery, ...] = (
    *publications.QUERIES,
    *default_privileges.QUERIES,
    *range_types.QUERIES,
    *aggregates.QUERIES,
)

# Every catalog query: (name, SQL, takes the schema filter). Costliest first, so that helper connections
# pulling from one queue finish together. Plus one statement for the version, search_path and Supabase test.
QUERIES: tuple[tuple[str, str, bool], ...] = (
    ("columns", relations.COLUMNS, True),
    ("dependencies", dependencies.DEPENDENCIES, True),
    ("indexes", indexes.INDEXES, True),
    ("constraints", constraints.CONSTRAINTS, True),
    ("sequences", sequences.SEQUENCES, True),
    ("tables", relations.TABLES, True),
    ("privileges", privileges.PRIVILEGES, True),
    ("functions", functions.FUNCTIONS, True),
    ("triggers", triggers.TRIGGERS, True),
    ("policies", triggers.POLICIES, True),
    ("views", relations.VIEWS, True),
    ("enums", types.ENUMS, True),
    ("domains", types.DOMAINS, True),
    ("composite_types", types.COMPOSITES, True),
    ("collations", namespaces.COLLATIONS, True),
    ("uncompared", uncompared.UNCOMPARED, True),
    ("namespaces", namespaces.NAMESPACES, True),
    *((q.attr, q.sql, True) for q in DECLARED),
    ("extensions", namespaces.EXTENSIONS, False),
)

# Run first in every transaction (all settings local to it):
# - search_path = pg_catalog: definitions come out schema-qualified, whatever the session's search_path;
# - enable_nestloop = off: the catalog queries then hash-join whole catalogs, which costs the same whatever
#   the catalog statistics say. Right after a large migration the catalogs have no statistics yet, every
#   estimate is "1 row", and nested loops over 5,000 tables made single queries ten times slower.
# - jit = off: those hash-join plans cost enough to trigger JIT compilation where the server has it
#   (Debian's PostgreSQL 15 does), which took 0.5-1 s per query on a 20-table database (0.02 s without).
_SETUP = (
    "SELECT pg_catalog.current_setting('server_version_num')::int, pg_catalog.current_setting('statement_timeout'),"
    f" ({namespaces.SUPABASE})"
    " FROM pg_catalog.set_config('search_path', 'pg_catalog', true) AS path,"
    " pg_catalog.set_config('enable_nestloop', 'off', true) AS nestloop,"
    " pg_catalog.set_config('jit', 'off', true) AS jit"
)
# In a helper: the same, plus the main connection's statement_timeout.
_HELPER_SETUP = (
    "SELECT pg_catalog.set_config('search_path', 'pg_catalog', true),"
    " pg_catalog.set_config('enable_nestloop', 'off', true),"
    " pg_catalog.set_config('jit', 'off', true),"
    " pg_catalog.set_config('statement_timeout', $1, true)"
)


async def introspect(
    conn: asyncpg.Connection,
    *,
    schemas: Sequence[str] | None = None,
    include_managed: bool = False,
    with_dependencies: bool = True,
    helpers: Sequence[asyncpg.Connection] = (),
) -> Schema:
    """The schema of the database behind `conn`.

    `schemas` limits the read to those schemas (None: every non-system schema). Supabase-managed schemas
    (`SUPABASE_MANAGED_SCHEMAS`) are left out unless `include_managed` or named in `schemas`.
    Runs inside the caller's transaction when there is one (use REPEATABLE READ for a consistent read),
    else in its own read-only REPEATABLE READ transaction. `helpers` are extra idle connections to the same
    database (no transaction open): the queries are spread over them, each inside a transaction that imports
    `conn`'s snapshot (pg_export_snapshot, which needs `conn` at the top level of its transaction, not in a
    savepoint), so every query still sees one catalog; their transactions are rolled back before returning.
    Raises DatabaseError if a catalog read fails.
    """
    if schemas is not None:
        bad = [s for s in schemas if not isinstance(s, str) or not s]
        if bad:
            raise ConfigError(f"schema names must be non-empty strings, got {bad!r}")
    with gc_paused():
        if conn.is_in_transaction():
            return await _read(conn, helpers, schemas, include_managed, with_dependencies)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await _read(conn, helpers, schemas, include_managed, with_dependencies)


_gc_pauses = 0
_gc_was_enabled = True


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building the model (a large schema is 100k+ small objects
    that hold no cycles; collecting during their creation costs more than building them). Nested and
    concurrent pauses share one: the collector's state from before the first is restored after the last."""
    global _gc_pauses, _gc_was_enabled
    if _gc_pauses == 0:
        _gc_was_enabled = gc.isenabled()
        gc.disable()
    _gc_pauses += 1
    try:
        yield
    finally:
        _gc_pauses -= 1
        if _gc_pauses == 0 and _gc_was_enabled:
            gc.enable()


async def _fetch_all(
    conn: asyncpg.Connection, helpers: Sequence[asyncpg.Connection], queries: list[tuple[str, str, bool]], args: tuple
) -> tuple[tuple[int, bool], dict[str, list[asyncpg.Record]]]:
    """((server_version_num, is Supabase), rows by query name), the queries spread over `conn` and the helpers."""
    version, timeout, supabase = await conn.fetchrow(_SETUP)
    rows: dict[str, list[asyncpg.Record]] = {}
    if not helpers:
        for name, sql, filtered in queries:
            rows[name] = await conn.fetch(sql, *args) if filtered else await conn.fetch(sql)
        return (version, supabase), rows
    # Not in a savepoint: PostgreSQL exports a snapshot only from the top level of a transaction.
    snapshot = await conn.fetchval("SELECT pg_catalog.pg_export_snapshot()")
    pending = list(reversed(queries))  # pop() takes the costliest first
    started: list[asyncpg.transaction.Transaction] = []

    async def worker(c: asyncpg.Connection) -> None:
        while pending:
            name, sql, filtered = pending.pop()
            rows[name] = await c.fetch(sql, *args) if filtered else await c.fetch(sql)

    try:
        for helper in helpers:
            tx = helper.transaction(isolation="repeatable_read", readonly=True)
            await tx.start()
            started.append(tx)
            await helper.execute(f"SET TRANSACTION SNAPSHOT {quote_literal(snapshot)}")
            await helper.fetchval(_HELPER_SETUP, timeout)
        await asyncio.gather(*(worker(c) for c in (conn, *helpers)))
    finally:
        for tx in started:
            try:
                await tx.rollback()
            except (asyncpg.PostgresError, asyncpg.InterfaceError):
                pass  # the connection is going back to its pool or being closed anyway
    return (version, supabase), rows


async def _read(
    conn: asyncpg.Connection,
    helpers: Sequence[asyncpg.Connection],
    schemas: Sequence[str] | None,
    include_managed: bool,
    with_dependencies: bool,
) -> Schema:
    args = filter_args(schemas, include_managed)
    queries = [q for q in QUERIES if with_dependencies or q[0] != "dependencies"]
    try:
        (version, supabase), rows = await _fetch_all(conn, helpers, queries, args)
    except asyncpg.PostgresError as exc:
        raise DatabaseError(
            f"reading the catalog failed ({type(exc).__name__}: {fence_text(exc)}); nothing was changed in the "
            "database. Check that the role can read pg_catalog and retry.",
            getattr(exc, "sqlstate", None),
        ) from exc
    return build_schema(rows, version, supabase, schemas, include_managed, with_dependencies)


def build_schema(
    rows: dict[str, list[asyncpg.Record]],
    version: int,
    supabase: bool,
    schemas: Sequence[str] | None,
    include_managed: bool,
    with_dependencies: bool,
) -> Schema:
    """The model from the rows of the catalog queries (pure: the second half of `introspect`, apart so that
    bench/profile_compare.py can time reading and building separately)."""
    seqs, identity = sequences.sequences(rows["sequences"])
    names: relations.AttributeNames = {}
    cols = relations.columns(rows["columns"], identity, names)
    platform_ext = platform_extensions(include_managed)
    grants = PlatformGrants.of(rows["default_privileges"], supabase=supabase, include_managed=include_managed)
    options = ReadOptions(include_managed=include_managed)
    schema = Schema(
        namespaces=namespaces.namespaces(rows["namespaces"]),
        extensions=namespaces.extensions(
            rows["extensions"], ("plpgsql",), schemas, platform_ext, SUPABASE_MANAGED_SCHEMAS
        ),
        collations=namespaces.collations(rows["collations"]),
        enums=types.enums(rows["enums"]),
        domains=types.domains(rows["domains"]),
        composite_types=types.composite_types(rows["composite_types"]),
        sequences=seqs,
        tables=relations.tables(rows["tables"], cols),
        views=relations.views(rows["views"], cols),
        constraints=constraints.constraints(rows["constraints"], names),
        indexes=indexes.indexes(rows["indexes"], names),
        functions=functions.functions(rows["functions"]),
        triggers=triggers.triggers(rows["triggers"]),
        policies=triggers.policies(rows["policies"]),
        privileges=privileges.privileges(rows["privileges"], grants),
        dependencies=dependencies.dependencies(rows["dependencies"]) if with_dependencies else (),
        server_version_num=version,
        included_schemas=tuple(schemas) if schemas is not None else (),
        supabase=supabase,
        available_extensions=namespaces.available_extensions(rows["extensions"]),
        default_extensions=namespaces.available_extensions(rows["extensions"], "default"),
        uncompared=uncompared.uncompared(rows["uncompared"]),
        **{q.attr: q.build(rows[q.attr], options) for q in DECLARED},
    )
    return without_history_tables(schema)
