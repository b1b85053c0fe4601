"""What an interrupted run of a migration can leave behind: indexes left INVALID, constraints left NOT VALID.

`CREATE INDEX CONCURRENTLY` commits its catalog entry before it builds: a build that is cancelled or whose session
dies leaves the index behind, INVALID (`pg_index.indisvalid = false`, maybe not even `indisready`). Running the
statement again does not help: `IF NOT EXISTS` skips the invalid index, and without it the name is taken. So before
each such step the runner drops an invalid index of the name the statement creates (`DROP INDEX CONCURRENTLY`) and
builds it again, and after it, and before the migration is recorded, it checks that every index the migration
builds concurrently is valid and every constraint it validates (`ALTER TABLE ... VALIDATE CONSTRAINT`) is
validated (`pg_constraint.convalidated`). A migration is never recorded while one is not.

The objects are read from the statements' parse trees (index name and table; table and constraint name), never
from their text; from the author's statements, since a rewrite may wrap one in a guard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from pglast import ast
from pglast.enums import AlterTableType

from pgshift.tools.migrations.parse import SqlStatement
from pgshift.tools.sql import qualified


@dataclass(frozen=True)
class IndexBuild:
    """An index a statement builds concurrently, by name, on `table` (as written: schema-qualified or not)."""

    table: str  # quoted, for to_regclass (resolved with the session's search_path, as the statement was)
    name: str
    line: int


@dataclass(frozen=True)
class Validation:
    """A constraint a statement validates."""

    table: str
    name: str
    line: int


def index_build(statement: SqlStatement) -> IndexBuild | None:
    """The named index a CREATE INDEX CONCURRENTLY builds (None for any other statement, or an unnamed index)."""
    if statement.node_type != "IndexStmt":  # the author's node type: a rewrite may have changed the text
        return None
    node = statement.node
    if not isinstance(node, ast.IndexStmt) or not node.concurrent or not node.idxname or node.relation is None:
        return None
    return IndexBuild(qualified(node.relation.schemaname, node.relation.relname or ""), node.idxname, statement.line)


def validations(statement: SqlStatement) -> list[Validation]:
    """The constraints an ALTER TABLE ... VALIDATE CONSTRAINT validates."""
    if statement.node_type != "AlterTableStmt":
        return []
    node = statement.node
    if not isinstance(node, ast.AlterTableStmt) or node.relation is None:
        return []
    table = qualified(node.relation.schemaname, node.relation.relname or "")
    return [
        Validation(table, cmd.name, statement.line)
        for cmd in node.cmds or ()
        if getattr(cmd, "subtype", None) is AlterTableType.AT_ValidateConstraint and cmd.name
    ]


INDEX_STATE = """
SELECT n.nspname AS schema, c.relname AS name, i.indisvalid, i.indisready
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE i.indrelid = pg_catalog.to_regclass($1) AND c.relname = $2
"""

CONSTRAINT_STATE = """
SELECT n.nspname AS schema, c.relname AS table, con.conname AS name, con.convalidated
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE con.conrelid = pg_catalog.to_regclass($1) AND con.conname = $2
"""


async def invalid_index(conn: asyncpg.Connection, build: IndexBuild) -> str | None:
    """The qualified name of `build`'s index when it exists but is not valid and ready (None otherwise)."""
    row = await conn.fetchrow(INDEX_STATE, build.table, build.name)
    if row is None or (row["indisvalid"] and row["indisready"]):
        return None
    return qualified(row["schema"], row["name"])


async def drop_invalid_index(conn: asyncpg.Connection, build: IndexBuild) -> str | None:
    """Drop `build`'s index if an interrupted build left it invalid (outside any transaction, concurrently, so the
    table stays writable); the name dropped, or None when there was nothing to drop."""
    name = await invalid_index(conn, build)
    if name is None:
        return None
    await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    return name


async def unfinished(conn: asyncpg.Connection, statements: Sequence[SqlStatement]) -> list[str]:
    """What the statements should have finished and did not: each index they build concurrently that is not valid,
    each constraint they validate that is not validated (one a later statement dropped is not asked for). Empty when
    all is done."""
    problems: list[str] = []
    for s in statements:
        build = index_build(s)
        if build is not None:
            row = await conn.fetchrow(INDEX_STATE, build.table, build.name)
            if row is not None and not (row["indisvalid"] and row["indisready"]):
                name = qualified(row["schema"], row["name"])
                problems.append(f"index {name} (line {build.line}) is INVALID (an interrupted build)")
        for v in validations(s):
            row = await conn.fetchrow(CONSTRAINT_STATE, v.table, v.name)
            if row is not None and not row["convalidated"]:
                on = qualified(row["schema"], row["table"])
                problems.append(f"constraint {qualified(None, row['name'])} on {on} (line {v.line}) is NOT VALID")
    return problems
