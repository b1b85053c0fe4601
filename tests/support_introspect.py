"""Helpers for the introspection, diff and compare tests: databases loaded from SQL text, read into the model."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from pgshift.tools.diff import SchemaDiff, diff_schemas
from pgshift.tools.introspect import introspect
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.model import Schema

CORPUS_ROLES = ("schemainspect_test_role",)


async def ensure_roles(server: LocalPostgres, roles: tuple[str, ...] = CORPUS_ROLES) -> None:
    """Create cluster-wide roles the corpus needs (another test may have created them already)."""
    conn = await asyncpg.connect(server.url())
    try:
        for role in roles:
            try:
                await conn.execute(f'CREATE ROLE "{role}"')
            except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
                pass
    finally:
        await conn.close()


async def has_icu(server: LocalPostgres) -> bool:
    """Whether the server was built with ICU (trying to create an ICU collation, rolled back)."""
    conn = await asyncpg.connect(server.url())
    try:
        async with conn.transaction():
            await conn.execute("CREATE COLLATION pgshift_icu_probe (provider = icu, locale = 'und')")
            raise _Rollback
    except asyncpg.FeatureNotSupportedError:
        return False
    except _Rollback:
        return True
    finally:
        await conn.close()


class _Rollback(Exception):
    pass


async def _create(server: LocalPostgres, sql: str) -> str:
    name = f"i_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = server.url(name)
    if sql.strip():
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()
    return url


async def _drop(server: LocalPostgres, url: str) -> None:
    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def databases(*specs: tuple[LocalPostgres, str]) -> AsyncIterator[list[str]]:
    """New databases, each on its server holding its SQL (one script), created concurrently; dropped on exit."""
    results = await asyncio.gather(*(_create(server, sql) for server, sql in specs), return_exceptions=True)
    created = [(spec[0], url) for spec, url in zip(specs, results, strict=True) if isinstance(url, str)]
    try:
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        yield [url for _, url in created]
    finally:
        await asyncio.gather(*(_drop(server, url) for server, url in created))


@asynccontextmanager
async def database(server: LocalPostgres, sql: str = "") -> AsyncIterator[str]:
    """A new database on `server` holding `sql` (run as one script); dropped on exit. Yields its URL."""
    async with databases((server, sql)) as urls:
        yield urls[0]


async def read(url: str, **options: object) -> Schema:
    conn = await asyncpg.connect(url)
    try:
        return await introspect(conn, **options)  # type: ignore[arg-type]
    finally:
        await conn.close()


async def execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def describe(diff: SchemaDiff) -> str:
    """A readable listing of a diff for assertion messages."""
    lines = []
    for c in diff.changes:
        lines.append(f"{c.change} {c.kind} {c.key}")
        for f in c.fields:
            lines.append(f"    {f.field}: {f.before!r} -> {f.after!r}")
    return "\n".join(lines)


def no_difference(source: Schema, target: Schema) -> tuple[bool, str]:
    diff = diff_schemas(source, target)
    return diff.in_sync, describe(diff)
