"""get_advisors: Supabase-style database advisors (security and performance lints), read-only.

Every lint is one file in `lints/`: a header of `-- key: value` lines declaring it (name, title, level,
categories, requires, description, remediation) and one catalog query returning `detail`, `metadata` (jsonb) and
`cache_key`; adding a lint is adding a file. Each query sees two relations: `exposed(nspname)`, the schemas the
Data API exposes, and `managed(nspname)`, the system and Supabase-managed schemas most lints leave out.

Lints that need something a plain PostgreSQL lacks (the anon/authenticated roles, auth.users, storage,
pg_graphql, pgmq, Auth's own settings) are skipped and named with the reason. The answer uses splinter's field
names (name, title, level, facing, categories, description, detail, remediation, metadata, cache_key).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from pgshift.tools.databases import Databases
from pgshift.tools.errors import ConfigError
from pgshift.tools.introspect.filters import SUPABASE_MANAGED_SCHEMAS, SYSTEM_SCHEMAS
from pgshift.tools.untrusted import Untrusted, fence, fence_text

LINTS_DIR = Path(__file__).with_name("lints")
Kind = Literal["security", "performance", "all"]
LEVELS = ("ERROR", "WARN", "INFO")
DEFAULT_EXPOSED = ("public",)
# Schemas most lints leave out: PostgreSQL's own, Supabase's, and those of common extensions.
MANAGED_SCHEMAS: tuple[str, ...] = tuple(
    sorted(
        {*SYSTEM_SCHEMAS, *SUPABASE_MANAGED_SCHEMAS, "pgroonga", "_timescaledb_cache", "_timescaledb_catalog"}
        | {"_timescaledb_config", "_timescaledb_internal"}
    )
)

# What a lint may require, and how the answer names what is missing.
REQUIREMENTS: dict[str, str] = {
    "api_roles": "the Data API roles anon and authenticated",
    "auth": "Supabase Auth's auth.users table",
    "storage": "Supabase Storage's storage.buckets and storage.objects tables",
    "pg_graphql": "the pg_graphql extension",
    "pgmq": "the pgmq schema (Supabase Queues)",
    "auth_config": "Supabase Auth's settings, which live outside the database (read them in the dashboard)",
}

CAPABILITIES_SQL = """
SELECT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'anon')
         AND EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'authenticated') AS api_roles,
       to_regclass('auth.users') IS NOT NULL AS auth,
       to_regclass('storage.buckets') IS NOT NULL AND to_regclass('storage.objects') IS NOT NULL AS storage,
       EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_graphql') AS pg_graphql,
       EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = 'pgmq') AS pgmq,
       false AS auth_config
"""

# Every lint query runs inside this frame, with the exposed ($1) and managed ($2) schemas as bind parameters.
FRAME = """WITH exposed AS (SELECT unnest($1::text[]) AS nspname),
     managed AS (SELECT unnest($2::text[]) AS nspname)
SELECT lint.detail, lint.metadata::text AS metadata, lint.cache_key FROM (
{query}
) AS lint"""


PAGE = 50
"""Findings per page by default: about 7,000 tokens (each finding carries splinter's fields)."""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Lint(Frozen):
    """One lint, as declared by its file."""

    name: str
    title: str
    level: str
    facing: str = "EXTERNAL"
    categories: tuple[str, ...]
    requires: tuple[str, ...] = ()
    description: str
    remediation: str
    query: str


class Advisor(Frozen):
    """One finding, with splinter's fields."""

    name: str
    title: str
    level: str = Field(description="ERROR, WARN or INFO")
    facing: str
    categories: list[str] = Field(description="SECURITY and/or PERFORMANCE")
    description: str
    detail: str = Field(description="What was found, naming the object")
    remediation: str = Field(description="Where to read how to fix it")
    metadata: dict[str, Any]
    cache_key: str = Field(description="Stable identifier of this finding (for ignore lists)")


class SkippedLint(Frozen):
    name: str
    title: str
    reason: str


class FailedLint(Frozen):
    name: str
    sqlstate: str | None
    message: str = Field(description="PostgreSQL's message, fenced as untrusted text")


class AdvisorReport(Frozen):
    environment: str
    kind: Kind
    exposed_schemas: list[str] = Field(description="Schemas treated as exposed through the Data API")
    counts: dict[str, int] = Field(description="Findings per level")
    by_lint: dict[str, int] = Field(default_factory=dict, description="Findings per lint name")
    total: int = Field(default=0, description="Findings in all")
    next_offset: int | None = Field(default=None, description="Pass as offset for the next page of findings")
    lints: Untrusted[list[Advisor]] = Field(
        description="One page of the findings, most severe first; they name database objects"
    )
    checked: list[str] = Field(description="Lints that ran")
    skipped: list[SkippedLint] = Field(description="Lints that do not apply to this database, and why")
    failed: list[FailedLint] = Field(default_factory=list, description="Lints whose query failed here")


# ----------------------------------------------------------------------------------------------- declaration


def parse_lint(text: str, source: str = "<lint>") -> Lint:
    """A lint file: leading `-- key: value` lines, then the query (comments inside it are kept)."""
    header: dict[str, str] = {}
    lines = text.splitlines()
    body_start = 0
    for i, line in enumerate(lines):
        key, sep, value = line.removeprefix("-- ").partition(": ")
        if not line.startswith("-- ") or not sep or key not in _HEADER_KEYS:
            body_start = i
            break
        header[key] = value.strip()
    missing = sorted(_REQUIRED_KEYS - header.keys())
    if missing:
        raise ConfigError(f"lint {source} lacks header field(s) {missing}")

    def listed(key: str) -> tuple[str, ...]:
        return tuple(v.strip() for v in header.get(key, "").split(",") if v.strip())

    requires = listed("requires")
    unknown = [r for r in requires if r not in REQUIREMENTS]
    if unknown or header["level"] not in LEVELS:
        raise ConfigError(f"lint {source}: unknown requirement(s) {unknown} or level {header['level']!r}")
    return Lint(
        name=header["name"],
        title=header["title"],
        level=header["level"],
        facing=header.get("facing", "EXTERNAL"),
        categories=listed("categories"),
        requires=requires,
        description=header["description"],
        remediation=header["remediation"],
        query="\n".join(lines[body_start:]).strip(),
    )


_REQUIRED_KEYS = frozenset({"name", "title", "level", "categories", "description", "remediation"})
_HEADER_KEYS = _REQUIRED_KEYS | {"facing", "requires"}


@functools.cache
def load_lints(directory: Path = LINTS_DIR) -> tuple[Lint, ...]:
    """Every lint of the folder, in file-name order."""
    return tuple(parse_lint(p.read_text(), p.name) for p in sorted(directory.glob("*.sql")))


def select_lints(lints: Iterable[Lint], kind: Kind) -> list[Lint]:
    if kind == "all":
        return list(lints)
    return [lint for lint in lints if kind.upper() in lint.categories]


def missing_requirements(lint: Lint, capabilities: Mapping[str, bool]) -> list[str]:
    return [r for r in lint.requires if not capabilities.get(r, False)]


def skip_reason(missing: Sequence[str]) -> str:
    return "needs " + "; ".join(REQUIREMENTS[r] for r in missing)


def advisor(lint: Lint, row: Mapping[str, Any]) -> Advisor:
    metadata = json.loads(row["metadata"]) if row["metadata"] else {}
    return Advisor(
        name=lint.name,
        title=lint.title,
        level=lint.level,
        facing=lint.facing,
        categories=list(lint.categories),
        description=lint.description,
        detail=row["detail"],
        remediation=lint.remediation,
        metadata=metadata,
        cache_key=row["cache_key"],
    )


def ordered(advisors: Iterable[Advisor]) -> list[Advisor]:
    return sorted(advisors, key=lambda a: (LEVELS.index(a.level), a.name, a.cache_key))


def exposed_list(schemas: Sequence[str] | None) -> list[str]:
    chosen = list(DEFAULT_EXPOSED if schemas is None else schemas)
    if not chosen or not all(isinstance(s, str) and s for s in chosen):
        raise ConfigError("exposed_schemas must name at least one schema (the Data API exposes 'public' by default)")
    return sorted(set(chosen))


# ----------------------------------------------------------------------------------------------------- running


async def run_lint(conn: asyncpg.Connection, lint: Lint, exposed: Sequence[str]) -> list[Advisor]:
    """One lint's query (its requirements unchecked: the caller decides)."""
    rows = await conn.fetch(FRAME.format(query=lint.query), list(exposed), list(MANAGED_SCHEMAS))
    return [advisor(lint, r) for r in rows]


async def get_advisors(
    db: Databases,
    environment: str,
    kind: Kind = "all",
    exposed_schemas: Sequence[str] | None = None,
    lints: Sequence[Lint] | None = None,
    limit: int = PAGE,
    offset: int = 0,
) -> AdvisorReport:
    """Run every applicable lint of `kind` (default: every lint of `lints/`) in one READ ONLY snapshot; a failing
    lint is reported, not fatal."""
    if kind not in ("security", "performance", "all"):
        raise ConfigError(f"kind must be 'security', 'performance' or 'all', not {kind!r}")
    exposed = exposed_list(exposed_schemas)
    found: list[Advisor] = []
    checked: list[str] = []
    skipped: list[SkippedLint] = []
    failed: list[FailedLint] = []
    async with db.read_only(environment, snapshot=True) as conn:
        row = await conn.fetchrow(CAPABILITIES_SQL)
        capabilities = dict(row.items()) if row is not None else {}
        for lint in select_lints(load_lints() if lints is None else lints, kind):
            missing = missing_requirements(lint, capabilities)
            if missing:
                skipped.append(SkippedLint(name=lint.name, title=lint.title, reason=skip_reason(missing)))
                continue
            try:
                async with conn.transaction():  # a savepoint: one failing lint leaves the others running
                    found.extend(await run_lint(conn, lint, exposed))
            except asyncpg.PostgresError as exc:
                failed.append(FailedLint(name=lint.name, sqlstate=exc.sqlstate, message=fence_text(exc)))
                continue
            checked.append(lint.name)
    advisors = ordered(found)
    return AdvisorReport(
        environment=environment,
        kind=kind,
        exposed_schemas=exposed,
        counts={level: sum(a.level == level for a in advisors) for level in LEVELS},
        by_lint={name: sum(a.name == name for a in advisors) for name in sorted({a.name for a in advisors})},
        total=len(advisors),
        next_offset=offset + limit if offset + limit < len(advisors) else None,
        lints=fence(advisors[offset : offset + limit]),
        checked=checked,
        skipped=skipped,
        failed=failed,
    )
