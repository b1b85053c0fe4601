"""The 'see' tools: environments, tables, one table in detail, extensions.

Catalog reads run in READ ONLY transactions with bind parameters; one query per object kind, filtered
by schema (never one query per table). Everything read from the database is returned fenced (`Untrusted`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from pgshift.tools.databases import Databases, EnvironmentBusy
from pgshift.tools.errors import ConfigError, ConnectionFailed
from pgshift.tools.sql import qualified, quote_ident
from pgshift.tools.untrusted import Untrusted, fence


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class EnvironmentInfo(Frozen):
    name: str
    url: str = Field(description="Connection URL with the password masked")
    reachable: bool
    server_version: str | None = None
    protected: bool
    read_only: bool
    error: str | None = Field(default=None, description="Why the environment could not be reached")


class EnvironmentList(Frozen):
    environments: list[EnvironmentInfo]


class ColumnInfo(Frozen):
    name: str
    type: str
    nullable: bool
    default: str | None = None
    identity: str | None = Field(default=None, description="'always' or 'by default' for identity columns")
    generated: str | None = Field(default=None, description="Expression of a stored generated column")
    comment: str | None = None


class ForeignKeyInfo(Frozen):
    name: str
    columns: list[str]
    references: str = Field(description="Referenced table, schema-qualified")
    referenced_columns: list[str]
    definition: str


class TableSummary(Frozen):
    schema_name: str = Field(alias="schema")
    name: str
    kind: str = Field(description="table or partitioned table")
    row_estimate: int = Field(description="Planner estimate (pg_class.reltuples); -1 when never analysed")
    total_size_bytes: int
    rls_enabled: bool
    columns: list[ColumnInfo] | None = None
    primary_key: list[str] | None = None
    foreign_keys: list[ForeignKeyInfo] | None = None

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)


class TableList(Frozen):
    environment: str
    schemas: list[str]
    total: int = Field(description="Tables in these schemas, on every page")
    offset: int = Field(default=0, description="Position of this page's first table")
    next_offset: int | None = Field(default=None, description="Pass as offset for the next page; none on the last")
    tables: Untrusted[list[TableSummary]] = Field(description="This page of tables (by schema, name), fenced")


class ConstraintInfo(Frozen):
    name: str
    type: str = Field(description="primary key, foreign key, unique, check, exclusion")
    definition: str
    validated: bool


class IndexInfo(Frozen):
    name: str
    definition: str
    unique: bool
    primary: bool
    valid: bool


class TriggerInfo(Frozen):
    name: str
    definition: str
    enabled: bool


class PolicyInfo(Frozen):
    name: str
    command: str
    permissive: bool
    roles: list[str]
    using: str | None = None
    with_check: str | None = None


class TableDescription(Frozen):
    schema_name: str = Field(alias="schema")
    name: str
    kind: str
    comment: str | None = None
    rls_enabled: bool
    rls_forced: bool
    row_estimate: int
    total_size_bytes: int
    columns: list[ColumnInfo]
    constraints: list[ConstraintInfo]
    indexes: list[IndexInfo]
    triggers: list[TriggerInfo]
    policies: list[PolicyInfo]
    ddl: str = Field(description="CREATE statements that rebuild this table's structure")

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)


class TableDetail(Frozen):
    environment: str
    table: Untrusted[TableDescription] = Field(description="The table, fenced as untrusted data")


class ExtensionInfo(Frozen):
    name: str
    installed: bool
    installed_version: str | None = None
    default_version: str | None = None
    schema_name: str | None = Field(default=None, alias="schema")
    comment: str | None = None

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)


class Extensions(Frozen):
    installed: list[ExtensionInfo]
    available: list[ExtensionInfo] = Field(description="Extensions the server offers that are not installed")


class ExtensionList(Frozen):
    environment: str
    extensions: Untrusted[Extensions] = Field(
        description="Installed and available extensions, fenced as untrusted data"
    )


# ---------------------------------------------------------------------------------------------- queries

TABLES_SQL = """
SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind,
       c.reltuples::bigint AS row_estimate, pg_total_relation_size(c.oid) AS total_size,
       c.relrowsecurity AS rls_enabled, c.relforcerowsecurity AS rls_forced,
       obj_description(c.oid, 'pg_class') AS comment
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1::text[]) AND ($2::text IS NULL OR c.relname = $2)
ORDER BY 1, 2
"""

COLUMNS_SQL = """
SELECT n.nspname AS schema, c.relname AS table, a.attname AS name,
       format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable,
       CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END AS default,
       CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END AS identity,
       CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END AS generated,
       col_description(c.oid, a.attnum) AS comment
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
  AND n.nspname = ANY($1::text[]) AND ($2::text IS NULL OR c.relname = $2)
ORDER BY 1, 2, a.attnum
"""

CONSTRAINTS_SQL = """
SELECT n.nspname AS schema, c.relname AS table, con.conname AS name, con.contype::text AS contype,
       pg_get_constraintdef(con.oid) AS definition, con.convalidated AS validated,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.i)::text[] AS columns,
       rn.nspname AS ref_schema, rc.relname AS ref_table,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(attnum, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.i)::text[]
         AS ref_columns
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE con.contype IN ('p', 'f', 'u', 'c', 'x') AND n.nspname = ANY($1::text[])
  AND ($2::text IS NULL OR c.relname = $2)
ORDER BY 1, 2, CASE con.contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 WHEN 'c' THEN 2 WHEN 'x' THEN 3 ELSE 4 END, 3
"""

INDEXES_SQL = """
SELECT i.relname AS name, pg_get_indexdef(x.indexrelid) AS definition, x.indisunique AS unique,
       x.indisprimary AS primary, x.indisvalid AS valid,
       EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = x.indexrelid AND con.conrelid = x.indrelid)
         AS backs_constraint
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2
ORDER BY 1
"""

TRIGGERS_SQL = """
SELECT t.tgname AS name, pg_get_triggerdef(t.oid) AS definition, t.tgenabled <> 'D' AS enabled
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND n.nspname = $1 AND c.relname = $2
ORDER BY 1
"""

POLICIES_SQL = """
SELECT policyname AS name, cmd AS command, permissive = 'PERMISSIVE' AS permissive, roles::text[] AS roles,
       qual AS using, with_check
FROM pg_policies WHERE schemaname = $1 AND tablename = $2
ORDER BY 1
"""

EXTENSIONS_SQL = """
SELECT a.name, e.extname IS NOT NULL AS installed, e.extversion AS installed_version,
       a.default_version, n.nspname AS schema, a.comment
FROM pg_available_extensions a
LEFT JOIN pg_extension e ON e.extname = a.name
LEFT JOIN pg_namespace n ON n.oid = e.extnamespace
ORDER BY a.name
"""

SERVER_VERSION_SQL = "SELECT current_setting('server_version')"

_CONTYPE = {"p": "primary key", "f": "foreign key", "u": "unique", "c": "check", "x": "exclusion"}


def split_table_name(table: str) -> tuple[str, str]:
    """'schema.table' or 'table' (public) → (schema, table). Quoted parts keep dots and case."""
    parts: list[str] = []
    buf, quoted, i = "", False, 0
    while i < len(table):
        ch = table[i]
        if ch == '"':
            if quoted and i + 1 < len(table) and table[i + 1] == '"':
                buf += '"'
                i += 1
            else:
                quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(buf)
            buf = ""
        else:
            buf += ch
        i += 1
    parts.append(buf)
    if quoted or not all(parts) or len(parts) > 2:
        raise ConfigError(f"invalid table name {table!r}: use 'table' or 'schema.table' (quote parts with \")")
    return ("public", parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def _column(r: asyncpg.Record) -> ColumnInfo:
    return ColumnInfo(
        name=r["name"],
        type=r["type"],
        nullable=r["nullable"],
        default=r["default"],
        identity=r["identity"],
        generated=r["generated"],
        comment=r["comment"],
    )


def _kind(relkind: str) -> str:
    return "partitioned table" if relkind == "p" else "table"


# ---------------------------------------------------------------------------------------------- tools


async def list_environments(db: Databases) -> EnvironmentList:
    async def probe(name: str) -> EnvironmentInfo:
        env = db.environment(name)
        info = EnvironmentInfo(
            name=name, url=env.redacted_url, protected=env.protected, read_only=env.read_only, reachable=False
        )
        try:
            async with db.read_only(name) as conn:
                version = await conn.fetchval(SERVER_VERSION_SQL)
            return info.model_copy(update={"reachable": True, "server_version": version})
        except (ConnectionFailed, ConfigError, EnvironmentBusy) as exc:  # one bad environment never hides the others
            return info.model_copy(update={"error": db.scrub(str(exc))})

    return EnvironmentList(environments=list(await asyncio.gather(*(probe(n) for n in db.names()))))


TABLES_PAGE_CHARS = 24_000
"""A page of `list_tables` is cut by size too: verbose tables (columns, keys) run to a few thousand characters each."""


async def list_tables(
    db: Databases,
    environment: str,
    schemas: list[str] | None = None,
    verbose: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> TableList:
    """One page of tables: `limit` of them (all when None) from `offset`, in schema and name order."""
    schemas = schemas or ["public"]
    async with db.read_only(environment, snapshot=True) as conn:
        every = await conn.fetch(TABLES_SQL, schemas, None)
        end = len(every) if limit is None else offset + limit
        tables = every[offset:end]
        columns: dict[tuple[str, str], list[ColumnInfo]] = {}
        pks: dict[tuple[str, str], list[str]] = {}
        fks: dict[tuple[str, str], list[ForeignKeyInfo]] = {}
        if verbose:
            for r in await conn.fetch(COLUMNS_SQL, schemas, None):
                columns.setdefault((r["schema"], r["table"]), []).append(_column(r))
            for r in await conn.fetch(CONSTRAINTS_SQL, schemas, None):
                key = (r["schema"], r["table"])
                if r["contype"] == "p":
                    pks[key] = list(r["columns"])
                elif r["contype"] == "f":
                    fks.setdefault(key, []).append(
                        ForeignKeyInfo(
                            name=r["name"],
                            columns=list(r["columns"]),
                            references=qualified(r["ref_schema"], r["ref_table"]),
                            referenced_columns=list(r["ref_columns"]),
                            definition=r["definition"],
                        )
                    )
    out = []
    for t in tables:
        key = (t["schema"], t["name"])
        extra: dict[str, Any] = {}
        if verbose:
            extra = {"columns": columns.get(key, []), "primary_key": pks.get(key), "foreign_keys": fks.get(key, [])}
        out.append(
            TableSummary(
                schema_name=t["schema"],
                name=t["name"],
                kind=_kind(t["relkind"]),
                row_estimate=t["row_estimate"],
                total_size_bytes=t["total_size"],
                rls_enabled=t["rls_enabled"],
                **extra,
            )
        )
    kept = _within(out, TABLES_PAGE_CHARS)
    end = offset + len(kept)
    more = end if end < len(every) else None
    return TableList(
        environment=environment, schemas=schemas, total=len(every), offset=offset, next_offset=more, tables=fence(kept)
    )


def _within(tables: list[TableSummary], chars: int) -> list[TableSummary]:
    """The first tables whose JSON fits in `chars` (at least one): a page stays within an assistant's budget."""
    used = 0
    for i, table in enumerate(tables):
        used += len(table.model_dump_json())
        if used > chars and i > 0:
            return tables[:i]
    return tables


def table_ddl(
    schema: str,
    name: str,
    relkind: str,
    columns: list[ColumnInfo],
    constraints: list[ConstraintInfo],
    indexes: list[IndexInfo],
    triggers: list[TriggerInfo],
    policies: list[PolicyInfo],
    rls_enabled: bool,
    rls_forced: bool,
) -> str:
    """Plain CREATE statements for one table, from what describe_table read."""
    table = qualified(schema, name)
    lines = []
    for c in columns:
        line = f"    {quote_ident(c.name)} {c.type}"
        if c.generated:
            line += f" GENERATED ALWAYS AS ({c.generated}) STORED"
        elif c.identity:
            line += f" GENERATED {c.identity.upper()} AS IDENTITY"
        elif c.default is not None:
            line += f" DEFAULT {c.default}"
        if not c.nullable:
            line += " NOT NULL"
        lines.append(line)
    lines += [f"    CONSTRAINT {quote_ident(k.name)} {k.definition}" for k in constraints if k.type != "foreign key"]
    body = ",\n".join(lines)
    out = [f"CREATE TABLE {table} (\n{body}\n){' PARTITION BY ...' if relkind == 'p' else ''};"]
    out += [
        f"ALTER TABLE {table} ADD CONSTRAINT {quote_ident(k.name)} {k.definition};"
        for k in constraints
        if k.type == "foreign key"
    ]
    out += [f"{i.definition};" for i in indexes]
    if rls_enabled:
        out.append(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;")
    if rls_forced:
        out.append(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY;")
    for p in policies:
        clause = f" USING ({p.using})" if p.using else ""
        check = f" WITH CHECK ({p.with_check})" if p.with_check else ""
        kind = "" if p.permissive else " AS RESTRICTIVE"
        roles = ", ".join(r if r == "public" else quote_ident(r) for r in p.roles)
        out.append(f"CREATE POLICY {quote_ident(p.name)} ON {table}{kind} FOR {p.command} TO {roles}{clause}{check};")
    out += [f"{t.definition};" for t in triggers]
    return "\n".join(out)


async def describe_table(db: Databases, environment: str, table: str) -> TableDetail:
    schema, name = split_table_name(table)
    async with db.read_only(environment, snapshot=True) as conn:
        found = await conn.fetch(TABLES_SQL, [schema], name)
        if not found:
            raise ConfigError(
                f"table {qualified(schema, name)} not found in environment '{environment}'; "
                "use list_tables to see the tables (names are case-sensitive)"
            )
        t = found[0]
        cols = [_column(r) for r in await conn.fetch(COLUMNS_SQL, [schema], name)]
        cons = [
            ConstraintInfo(
                name=r["name"], type=_CONTYPE[r["contype"]], definition=r["definition"], validated=r["validated"]
            )
            for r in await conn.fetch(CONSTRAINTS_SQL, [schema], name)
        ]
        idx_rows = await conn.fetch(INDEXES_SQL, schema, name)
        trg = [TriggerInfo(**dict(r)) for r in await conn.fetch(TRIGGERS_SQL, schema, name)]
        pol = [
            PolicyInfo(**{**dict(r), "roles": list(r["roles"])}) for r in await conn.fetch(POLICIES_SQL, schema, name)
        ]
    indexes = [
        IndexInfo(
            name=r["name"], definition=r["definition"], unique=r["unique"], primary=r["primary"], valid=r["valid"]
        )
        for r in idx_rows
    ]
    standalone = [i for i, r in zip(indexes, idx_rows, strict=True) if not r["backs_constraint"]]
    ddl = table_ddl(schema, name, t["relkind"], cols, cons, standalone, trg, pol, t["rls_enabled"], t["rls_forced"])
    description = TableDescription(
        schema_name=schema,
        name=name,
        kind=_kind(t["relkind"]),
        comment=t["comment"],
        rls_enabled=t["rls_enabled"],
        rls_forced=t["rls_forced"],
        row_estimate=t["row_estimate"],
        total_size_bytes=t["total_size"],
        columns=cols,
        constraints=cons,
        indexes=indexes,
        triggers=trg,
        policies=pol,
        ddl=ddl,
    )
    return TableDetail(environment=environment, table=fence(description))


async def list_extensions(db: Databases, environment: str) -> ExtensionList:
    async with db.read_only(environment) as conn:
        rows = await conn.fetch(EXTENSIONS_SQL)
    exts = [
        ExtensionInfo(
            name=r["name"],
            installed=r["installed"],
            installed_version=r["installed_version"],
            default_version=r["default_version"],
            schema_name=r["schema"],
            comment=r["comment"],
        )
        for r in rows
    ]
    installed = [e for e in exts if e.installed]
    available = [e for e in exts if not e.installed]
    return ExtensionList(
        environment=environment, extensions=fence(Extensions(installed=installed, available=available))
    )
