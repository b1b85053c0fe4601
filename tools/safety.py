"""Safety rules over parsed statements: what a read-only query, a dry run on the real target, and a migration may
contain. Pure functions over PostgreSQL's parse tree (`SqlStatement.node`), plus one catalog query and its loader.

The function policy is derived from the target's `pg_proc`, not hand-picked. A function is refused when any of:

- it is volatile (`provolatile = 'v'`: it may change state, including state outside the transaction, such as
  sequences, advisory locks, other backends, files, replication) and is not one of the reviewed harmless
  volatile functions in `HARMLESS_VOLATILE` / `HARMLESS_EXTENSION_VOLATILE` below;
- its EXECUTE is not granted to PUBLIC (`proacl` set and without a PUBLIC grant): the server's own list of
  privileged functions (pg_read_file, pg_ls_dir, pg_reload_conf, pg_stat_reset*, pg_switch_wal, lo_import, ...);
- it belongs to an extension that reaches outside the database (`OUTSIDE_EXTENSIONS`: dblink, postgres_fdw, ...).

Functions of every schema count (extension functions such as dblink_exec live in `public` or `extensions`), and
operators whose implementing function is refused are refused under their symbol (no built-in operator is). On a
fresh database it refuses 206 of PostgreSQL 15.18's 3,244 functions (251 volatile) and 227 of PostgreSQL 18.6's
3,413 (283 volatile); with dblink installed, 227 and 248 (`tests/test_safety_rules.py` loads both).

Name resolution is conservative: an unqualified call is refused when any function of that name is refused in any
schema; a qualified call when that schema's function is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from pglast import ast, parse_sql
from pglast.enums import TransactionStmtKind
from pglast.parser import ParseError, parse_plpgsql_json, scan

from pgshift.tools.migrations.parse import SqlStatement
from pgshift.tools.sql import quote_literal

# Volatile built-ins (pg_catalog) that change nothing outside the transaction and read nothing privileged.
HARMLESS_VOLATILE: Mapping[str, str] = {
    "random": "a random number",
    "random_normal": "a random number (PostgreSQL 16+)",
    "setseed": "seeds this session's random(); no other session or data is affected",
    "clock_timestamp": "reads the clock",
    "timeofday": "reads the clock",
    "gen_random_uuid": "a random UUID, the usual column default",
    "uuidv4": "a random UUID (PostgreSQL 18)",
    "uuidv7": "a time-ordered UUID (PostgreSQL 18)",
    "array_shuffle": "a random permutation of its argument",
    "array_sample": "a random sample of its argument",
    "pg_relation_size": "reads a relation's file size (volatile only because files change)",
    "pg_table_size": "reads file sizes",
    "pg_indexes_size": "reads file sizes",
    "pg_total_relation_size": "reads file sizes",
    "pg_database_size": "reads file sizes",
    "pg_tablespace_size": "reads file sizes",
    "currval": "reads this session's last sequence value, advances nothing",
    "lastval": "reads this session's last sequence value, advances nothing",
    "pg_is_in_recovery": "reads the server's recovery state",
    "pg_blocking_pids": "reads the lock table",
    "pg_jit_available": "reads a setting",
    "pg_partition_tree": "reads the catalog",
    "pg_partition_ancestors": "reads the catalog",
}

# Volatile extension functions, as "extension/function", that only produce random values.
HARMLESS_EXTENSION_VOLATILE: Mapping[str, str] = {
    "uuid-ossp/uuid_generate_v1": "a time-based UUID, the usual Supabase column default",
    "uuid-ossp/uuid_generate_v1mc": "a time-based UUID",
    "uuid-ossp/uuid_generate_v4": "a random UUID, the usual Supabase column default",
    "pgcrypto/gen_random_uuid": "a random UUID",
    "pgcrypto/gen_random_bytes": "random bytes",
    "pgcrypto/gen_salt": "a random salt",
}

# Extensions whose functions reach outside the database (other servers, HTTP, files, background jobs).
OUTSIDE_EXTENSIONS: tuple[str, ...] = (
    "dblink",
    "postgres_fdw",
    "file_fdw",
    "pg_net",
    "http",
    "adminpack",
    "pg_cron",
    "pg_background",
)

FUNCTION_POLICY_SQL = """
WITH refused AS (
    SELECT p.oid, n.nspname, p.proname
    FROM pg_catalog.pg_proc p
    JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    LEFT JOIN pg_catalog.pg_depend d
        ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid AND d.deptype = 'e'
    LEFT JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
    WHERE (
            p.provolatile = 'v'
            AND NOT (n.nspname = 'pg_catalog' AND p.proname = ANY ($1::text[]))
            AND NOT (e.extname IS NOT NULL AND e.extname || '/' || p.proname = ANY ($2::text[]))
        )
        OR NOT (
            p.proacl IS NULL
            OR EXISTS (
                SELECT FROM pg_catalog.aclexplode(p.proacl) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'
            )
        )
        OR e.extname = ANY ($3::text[])
)
SELECT r.nspname AS schema, r.proname AS name FROM refused r
UNION
SELECT n.nspname, o.oprname
FROM pg_catalog.pg_operator o
JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
JOIN refused r ON r.oid = o.oprcode
ORDER BY 1, 2
"""


@dataclass(frozen=True)
class FunctionPolicy:
    refused: frozenset[str]  # lower-case "name" and "schema.name" of functions that act outside the transaction

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> FunctionPolicy:
        refused: set[str] = set()
        for row in rows:
            name = str(row["name"]).lower()
            refused.update((name, f"{str(row['schema']).lower()}.{name}"))
        return cls(frozenset(refused))

    def refuses(self, name: str, schema: str | None) -> bool:
        name = name.lower()
        return (f"{schema.lower()}.{name}" if schema else name) in self.refused


async def load_function_policy(conn: asyncpg.Connection) -> FunctionPolicy:
    """The policy of the server behind `conn`, from its catalog (one query)."""
    rows = await conn.fetch(
        FUNCTION_POLICY_SQL, list(HARMLESS_VOLATILE), list(HARMLESS_EXTENSION_VOLATILE), list(OUTSIDE_EXTENSIONS)
    )
    return FunctionPolicy.from_rows(rows)


# ---------------------------------------------------------------------------------------------------------------
# Walking parse trees


def _walk(root: Any) -> Iterator[ast.Node]:
    """Every node under `root`, `root` included."""
    stack = [root]
    while stack:
        value = stack.pop()
        if isinstance(value, ast.Node):
            yield value
            stack.extend(getattr(value, slot, None) for slot in getattr(type(value), "__slots__", ()))
        elif isinstance(value, tuple | list):
            stack.extend(value)


def _names(items: Any) -> list[str]:
    return [str(item.sval) for item in items or () if isinstance(item, ast.String)]


def _called(node: Any) -> tuple[str | None, str] | None:
    """(schema or None, name) when `node` calls a function or an operator (whose function runs too)."""
    if isinstance(node, ast.FuncCall):
        parts = _names(node.funcname)
    elif isinstance(node, ast.A_Expr):  # every operator form (=, LIKE, IN, ANY, ...) runs the operator's function
        parts = _names(node.name)
    else:
        return None
    return (parts[-2] if len(parts) > 1 else None, parts[-1]) if parts else None


def functions_called(node: Any) -> set[tuple[str | None, str]]:
    """(schema or None, name) of every function call in the tree; operators are included under their symbol."""
    return {called for n in _walk(node) if (called := _called(n)) is not None}


def _call_refusal(node: Any, policy: FunctionPolicy) -> str | None:
    called = _called(node)
    if called is None or not policy.refuses(called[1], called[0]):
        return None
    shown = f"{called[0]}.{called[1]}" if called[0] else called[1]
    return (
        f"it calls {shown}(), which can act outside the transaction or needs more than read privileges on this "
        "server (volatile, not executable by PUBLIC, or from an extension that reaches outside the database)"
    )


# ---------------------------------------------------------------------------------------------------------------
# Read-only

_NOT_A_READ: Mapping[type, str] = {
    ast.CopyStmt: "COPY moves data to or from files, programs or the client",
    ast.LockStmt: "LOCK takes a table lock that blocks other sessions",
    ast.VariableSetStmt: "SET/RESET changes session settings",
    ast.ListenStmt: "LISTEN subscribes the shared connection to notifications",
    ast.UnlistenStmt: "UNLISTEN changes the shared connection's subscriptions",
    ast.NotifyStmt: "NOTIFY sends a notification to other sessions",
    ast.DoStmt: "DO runs procedural code",
    ast.CallStmt: "CALL runs a procedure",
    ast.PrepareStmt: "PREPARE leaves a prepared statement on the shared connection",
    ast.ExecuteStmt: "EXECUTE runs a prepared statement whose text is not checked here",
    ast.DeallocateStmt: "DEALLOCATE changes the shared connection's prepared statements",
    ast.DeclareCursorStmt: "DECLARE opens a cursor on the shared connection",
    ast.FetchStmt: "FETCH/MOVE reads from a cursor on the shared connection",
    ast.ClosePortalStmt: "CLOSE changes the shared connection's cursors",
    ast.TransactionStmt: "transaction control would end or alter the read-only transaction",
    ast.DiscardStmt: "DISCARD resets the shared connection's state",
}
_FALSE = frozenset({"false", "off", "0", "no"})


def _explain_analyzes(node: ast.ExplainStmt) -> bool:
    return any(
        o.defname == "analyze" and not (isinstance(o.arg, ast.String) and str(o.arg.sval).lower() in _FALSE)
        for o in node.options or ()
    )


def _read_refusal(node: Any, label: str) -> str | None:
    """Why a statement node is not a plain read (None when it is); `label` names the statement."""
    if isinstance(node, ast.VariableShowStmt):
        return None
    if isinstance(node, ast.ExplainStmt):
        inner = _read_refusal(node.query, "the explained statement") if _explain_analyzes(node) else None
        return f"EXPLAIN ANALYZE runs the statement it explains, and {inner}" if inner else None
    if not isinstance(node, ast.SelectStmt):
        return _NOT_A_READ.get(type(node)) or f"{label} is not a plain read: it changes the database or the session"
    for n in _walk(node):
        if isinstance(n, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt | ast.MergeStmt):
            return "a data-modifying WITH clause writes rows"
        if isinstance(n, ast.SelectStmt) and n.intoClause is not None:
            return "SELECT INTO creates a table"
        if isinstance(n, ast.SelectStmt) and n.lockingClause:
            return "FOR UPDATE/SHARE locks rows"
    return None


def read_only_refusal(stmt: SqlStatement, policy: FunctionPolicy) -> str | None:
    """One sentence saying why `stmt` may not run as a read-only query, or None when it may.

    Allowed: SELECT / WITH / VALUES / TABLE without data-modifying CTEs, SELECT INTO or locking clauses; SHOW;
    EXPLAIN (with ANALYZE only of an allowed read); and no call anywhere in the tree that the policy refuses.
    """
    label = " ".join(stmt.words[:2]) or "this statement"
    reason = _read_refusal(stmt.node, label) or next(
        (r for n in _walk(stmt.node) if (r := _call_refusal(n, policy))), None
    )
    if reason is None:
        return None
    return (
        f"Refused in read-only mode: {reason}. Run a SELECT, VALUES, TABLE, SHOW or EXPLAIN without it, or pass "
        "write=true on an environment that allows writes."
    )


# ---------------------------------------------------------------------------------------------------------------
# Dry run and apply: rules over every statement node, nested ones in DO blocks and function bodies included

_Check = Callable[[Any], str | None]

_TWO_PHASE = frozenset(
    {
        TransactionStmtKind.TRANS_STMT_PREPARE,
        TransactionStmtKind.TRANS_STMT_COMMIT_PREPARED,
        TransactionStmtKind.TRANS_STMT_ROLLBACK_PREPARED,
    }
)


def _never_in_migration(node: Any) -> str | None:
    """What no migration may contain, dry run or not."""
    if isinstance(node, ast.TransactionStmt) and node.kind in _TWO_PHASE:
        return (
            "two-phase commit (PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED) acts outside the migration's transaction"
        )
    if isinstance(node, ast.CopyStmt) and (node.is_program or node.filename):
        return "COPY to or from a program or a server file reaches outside the database"
    if isinstance(node, ast.VariableSetStmt) and node.name == "session_authorization":
        return "SET SESSION AUTHORIZATION changes who the rest of the script runs as"
    return None


_NOT_IN_DRY_RUN: Mapping[type, str] = {
    ast.TransactionStmt: "transaction control would end the dry run's transaction and make its changes permanent",
    ast.AlterSystemStmt: "ALTER SYSTEM writes the server's configuration file, which no rollback undoes",
    ast.CheckPointStmt: "CHECKPOINT acts on the whole server",
    ast.LoadStmt: "LOAD loads a shared library into the server process",
    ast.CreateSubscriptionStmt: "CREATE SUBSCRIPTION connects to another server",
    ast.AlterSubscriptionStmt: "ALTER SUBSCRIPTION connects to another server",
    ast.ImportForeignSchemaStmt: "IMPORT FOREIGN SCHEMA connects to another server",
    ast.PrepareStmt: "PREPARE leaves a prepared statement on the connection after the rollback",
    ast.DeallocateStmt: "DEALLOCATE removes the connection's prepared statements, which no rollback restores",
}


@dataclass(frozen=True)
class _Rules:
    check: _Check  # applied to every node of every statement, nested ones included
    dry_run: bool  # also report what cannot be checked (dynamic SQL, other languages) and COMMIT in bodies


def _option(options: Any, name: str) -> Any:
    return next((o.arg for o in options or () if isinstance(o, ast.DefElem) and o.defname == name), None)


def _sql_statements(sql: str) -> list[tuple[str, Any]]:
    """(text, node) of each statement of SQL that PostgreSQL parses at run time (function bodies, EXECUTE)."""
    out = []
    for raw in parse_sql(sql):  # pglast reports character offsets
        begin = raw.stmt_location or 0
        out.append((sql[begin : begin + raw.stmt_len] if raw.stmt_len else sql[begin:], raw.stmt))
    return out


def _assigned_expression(query: str) -> str:
    """The right-hand side of a PL/pgSQL assignment `target := expression` (or `target = expression`)."""
    depth = 0
    for t in scan(query):
        if t.name in ("ASCII_40", "ASCII_91"):
            depth += 1
        elif t.name in ("ASCII_41", "ASCII_93"):
            depth -= 1
        elif depth == 0 and t.name in ("COLON_EQUALS", "ASCII_61"):
            return query[t.end + 1 :]
    return query


def _plpgsql_exprs(value: Any, parent: str = "") -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(PL/pgSQL statement type, key, PLpgSQL_expr) of every expression in a parsed PL/pgSQL function."""
    if isinstance(value, list):
        for item in value:
            yield from _plpgsql_exprs(item, parent)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict) and "PLpgSQL_expr" in item:
                yield parent, key, item["PLpgSQL_expr"]
            else:
                yield from _plpgsql_exprs(item, key if key.startswith("PLpgSQL_stmt") else parent)


def _plpgsql_statement_types(value: Any) -> Iterator[str]:
    if isinstance(value, list):
        for item in value:
            yield from _plpgsql_statement_types(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _plpgsql_statement_types(item)


_DYNAMIC = frozenset(
    {
        ("PLpgSQL_stmt_dynexecute", "query"),
        ("PLpgSQL_stmt_dynfors", "query"),
        ("PLpgSQL_stmt_open", "dynquery"),
        ("PLpgSQL_stmt_return_query", "dynquery"),
    }
)
_PLPGSQL_TRANSACTION = frozenset({"PLpgSQL_stmt_commit", "PLpgSQL_stmt_rollback"})


def _constant_string(expression: str) -> str | None:
    """The value of an expression that is one string literal, else None."""
    try:
        (raw,) = parse_sql(f"SELECT {expression}")
    except (ParseError, ValueError):
        return None
    targets = getattr(raw.stmt, "targetList", None) or ()
    value = targets[0].val if len(targets) == 1 else None  # type: ignore[misc]
    return str(value.val.sval) if isinstance(value, ast.A_Const) and isinstance(value.val, ast.String) else None


def _plpgsql_reasons(function_sql: str, rules: _Rules, where: str) -> Iterator[str]:
    try:
        parsed = json.loads(parse_plpgsql_json(function_sql))
    except ParseError as error:
        if rules.dry_run:
            yield f"{where} is not valid PL/pgSQL ({error.args[0] if error.args else error}), so it cannot be checked"
        return
    if rules.dry_run and _PLPGSQL_TRANSACTION.intersection(_plpgsql_statement_types(parsed)):
        yield f"{where} commits or rolls back, which would end the dry run's transaction"
    for parent, key, expr in _plpgsql_exprs(parsed):
        query = str(expr.get("query", ""))
        mode = int(expr.get("parseMode", 0))
        if (parent, key) in _DYNAMIC:
            constant = _constant_string(query)
            if constant is None:
                if rules.dry_run:
                    yield (
                        f"{where} runs SQL built at run time (EXECUTE {query[:40]}), which cannot be checked before "
                        "it runs; dry-run this script on a shadow database instead"
                    )
                continue
            query = constant
        elif mode != 0:  # an expression, or an assignment (modes 3-5): PostgreSQL runs it as SELECT <expression>
            query = f"SELECT {_assigned_expression(query) if mode >= 3 else query}"
        yield from _sql_reasons(query, rules, where)


def _sql_reasons(sql: str, rules: _Rules, where: str) -> Iterator[str]:
    try:
        statements = _sql_statements(sql)
    except ParseError as error:
        if rules.dry_run:
            yield f"{where} holds SQL PostgreSQL cannot parse ({error.args[0] if error.args else error})"
        return
    for text, node in statements:
        yield from _reasons(text, node, rules, where)


def _language(options: Any, default: str) -> str:
    language = _option(options, "language")
    return str(language.sval).lower() if isinstance(language, ast.String) else default


def _do_block_reasons(node: ast.DoStmt, rules: _Rules) -> Iterator[str]:
    body = _option(node.args, "as")
    language = _language(node.args, "plpgsql")
    if language != "plpgsql" or not isinstance(body, ast.String):
        if rules.dry_run:
            yield f"a DO block in language {language} cannot be checked"
        return
    wrapper = f"CREATE FUNCTION pg_temp.pgshift_do() RETURNS void LANGUAGE plpgsql AS {quote_literal(str(body.sval))}"
    yield from _plpgsql_reasons(wrapper, rules, "a DO block")


def _function_reasons(text: str, node: ast.CreateFunctionStmt, rules: _Rules) -> Iterator[str]:
    if node.sql_body is not None:
        return  # a BEGIN ATOMIC / RETURN body is part of the statement's own tree, checked with it
    where = f"the body of {'.'.join(_names(node.funcname))}"
    language = _language(node.options, "sql")
    body = _names(_option(node.options, "as"))
    if language == "plpgsql":
        yield from _plpgsql_reasons(text, rules, where)
    elif language == "sql" and body:
        yield from _sql_reasons(body[0], rules, where)
    elif rules.dry_run:
        yield f"{where} is written in {language}, which cannot be checked"


def _reasons(text: str, node: Any, rules: _Rules, where: str = "") -> Iterator[str]:
    """Every rule violation in one statement, including those inside a DO block or a created function's body."""
    prefix = f"{where}: " if where else ""
    for n in _walk(node):
        reason = rules.check(n)
        if reason:
            yield prefix + reason
    if isinstance(node, ast.DoStmt):
        yield from _do_block_reasons(node, rules)
    elif isinstance(node, ast.CreateFunctionStmt):
        yield from _function_reasons(text, node, rules)


def dry_run_refusal(stmt: SqlStatement, policy: FunctionPolicy) -> str | None:
    """One sentence saying why `stmt` may not run in a dry run on the real target (inside a transaction that is
    then rolled back), or None when it may. Apply it to the statements that are sent (the script's own
    BEGIN/COMMIT removed by `steps.body`): any transaction control left is refused.

    Looks inside DO blocks and the bodies of functions and procedures the script creates (PL/pgSQL and SQL); a
    body that runs SQL built at run time, or is written in another language, cannot be checked, which is a
    refusal too (dry-run that script on a shadow database instead).
    """

    def check(node: Any) -> str | None:
        return _never_in_migration(node) or _NOT_IN_DRY_RUN.get(type(node)) or _call_refusal(node, policy)

    reason = next(_reasons(stmt.text, stmt.node, _Rules(check, dry_run=True)), None)
    return f"Not dry-run on the real database: {reason}." if reason else None


def apply_refusal(stmt: SqlStatement) -> str | None:
    """One sentence saying what `stmt` does that a migration may never do, or None. The author's own BEGIN/COMMIT
    stay allowed (they group statements)."""
    reason = next(_reasons(stmt.text, stmt.node, _Rules(_never_in_migration, dry_run=False)), None)
    return f"A migration may not contain this: {reason}." if reason else None
