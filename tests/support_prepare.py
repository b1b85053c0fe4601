"""Helpers for the prepare-half tests (parse, rewrite, lint, check): corpus chains and Supabase-shaped databases."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg
from conftest import corpus_root

from pgshift.tools.migrations.parse import SqlStatement, StatementKind, name_at, split_statements

ROOT = Path(__file__).resolve().parents[1]
CORPUS = corpus_root()
SUPABASE_SHAPE = ROOT / "tools" / "sample" / "supabase_shape.sql"


@dataclass(frozen=True)
class Chain:
    name: str
    files: tuple[Path, ...]
    supabase: bool

    def label(self, path: Path) -> str:
        return path.parent.name if path.name == "migration.sql" else path.stem


def chains() -> list[Chain]:
    return [
        Chain(
            "hoppscotch",
            tuple(sorted((CORPUS / "prisma" / "hoppscotch" / "migrations").glob("*/migration.sql"))),
            supabase=False,
        ),
        Chain(
            "chatbot-ui",
            tuple(sorted((CORPUS / "supabase" / "chatbot-ui" / "supabase" / "migrations").glob("*.sql"))),
            supabase=True,
        ),
    ]


async def execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def make_supabase_shaped(url: str) -> list[str]:
    """Load the Supabase stand-in into the database at `url`; returns the notes on what stands in for what.

    Supabase puts `extensions` on every role's search_path; here the database's search_path does the same. When
    the server lacks uuid-ossp (the embedded PostgreSQL 18 build), `extensions.uuid_generate_v4()` is defined over
    `gen_random_uuid()`, so tables whose defaults call it can be created.
    """
    notes: list[str] = []
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(SUPABASE_SHAPE.read_text())
        # Supabase's storage.objects has had `owner_id text` since storage v0.40; chatbot-ui's policies use it.
        await conn.execute("ALTER TABLE storage.objects ADD COLUMN IF NOT EXISTS owner_id text")
        database = await conn.fetchval("SELECT current_database()")
        await conn.execute(f'ALTER DATABASE "{database}" SET search_path = "$user", public, extensions')
        has_uuid = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'extensions' AND p.proname = 'uuid_generate_v4')"
        )
        if not has_uuid:
            await conn.execute(
                "CREATE FUNCTION extensions.uuid_generate_v4() RETURNS uuid LANGUAGE sql VOLATILE "
                "AS 'SELECT gen_random_uuid()'"
            )
            notes.append("uuid-ossp unavailable: extensions.uuid_generate_v4() stands in over gen_random_uuid()")
    finally:
        await conn.close()
    return notes


async def available_extensions(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        return {r["name"] for r in await conn.fetch("SELECT name FROM pg_available_extensions")}
    finally:
        await conn.close()


def extension_created(statement: SqlStatement) -> str | None:
    """The extension a CREATE EXTENSION statement creates."""
    if statement.kind is not StatementKind.CREATE_EXTENSION:
        return None
    toks = statement.tokens
    i = 2
    if i < len(toks) and toks[i].upper == "IF":
        i += 3
    name = name_at(toks, i, statement.text)
    return name.parts[-1] if name else None


def without_unavailable_extensions(script: str, available: set[str]) -> tuple[str, list[str]]:
    """The script without CREATE EXTENSION statements for extensions the server does not ship, and what was left out."""
    kept: list[str] = []
    left_out: list[str] = []
    for s in split_statements(script):
        ext = extension_created(s)
        if ext is not None and ext not in available:
            left_out.append(ext)
            kept.append(s.leading + "SELECT 1" + (s.suffix if ";" in s.suffix else ";" + s.suffix))
            continue
        kept.append(s.leading + s.text + (s.suffix if ";" in s.suffix else ";" + s.suffix))
    return "".join(kept), left_out
