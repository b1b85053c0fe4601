"""Load stored or dumped SQL text (a snapshot's DDL, a `pg_dump --schema-only`) into a scratch database.

This replaces psql. The text goes over the protocol, statement by statement, each through the one statement
runner (`tools.statement_runner`: one prepared statement, so PostgreSQL itself refuses a second command hidden in
one), as whoever the connection is: the callers connect as the scratch database's sandboxed owner, a role created
without superuser, role, database, replication, RLS-bypass, server-file or server-program rights
(`tools.scratch`). An error does not stop the load (as psql's ON_ERROR_STOP=0 did not): it is collected with its
line, and the next statement runs.

Nothing in the text is a command to pgshift. A psql meta-command (a backslash outside a literal or comment, as
PostgreSQL's own scanner sees it: `\\!`, `\\copy`, `\\gexec`, `\\i`, ...) makes the whole load refuse before
anything runs. The one exception is the pair pg_dump itself writes since PostgreSQL 15.14 / 16.10 / 17.6 / 18:
a line `\\restrict <key>` and a line `\\unrestrict <key>` with the same key, which are skipped.

Statements come from PostgreSQL's grammar (pglast's parser, `tools.migrations.parse.split_statements`). When that
grammar is older than the text (a newer server's dump), the text is cut at the top-level semicolons PostgreSQL's
scanner finds instead, and the server's own parser judges each piece.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Collection
from dataclasses import dataclass

import asyncpg
from pglast.enums import ObjectType
from pglast.parser import ParseError, Token, scan

from pgshift.tools.errors import ConfigError, DatabaseError, NotAllowed
from pgshift.tools.migrations.parse import SqlStatement, split_statements, statement
from pgshift.tools.redact import scrub
from pgshift.tools.statement_runner import run_statement
from pgshift.tools.untrusted import fence_text

_BACKSLASH = "ASCII_92"
_SEMICOLON = "ASCII_59"
_RESTRICT = re.compile(r"\\(un)?restrict ([A-Za-z0-9]+)")
_LINE_META = re.compile(r"^[ \t]*(\\\S*)", re.MULTILINE)  # only to name it when the text does not scan
ERRORS_KEPT = 200
LOAD_TIMEOUT_S = 300.0


class MetaCommandRefused(NotAllowed):
    """The text holds a psql meta-command: nothing of it was run."""


@dataclass(frozen=True)
class Piece:
    """One statement of the text: its exact characters and the line it starts on."""

    text: str
    line: int
    extension: str | None = None  # the extension a CREATE EXTENSION statement names
    acts_for: tuple[str, ...] = ()  # the roles an ALTER DEFAULT PRIVILEGES FOR ROLE statement acts for
    prepares: tuple[str, str] | None = None  # ("schema", name) / ("extension comment", name): what it sets up


@dataclass(frozen=True)
class LoadError:
    line: int
    sqlstate: str | None
    message: str  # scrubbed and fenced: PostgreSQL's words about the text

    def __str__(self) -> str:
        return f"line {self.line}: ERROR: {self.message}"


@dataclass(frozen=True)
class LoadReport:
    statements: int
    errors: tuple[LoadError, ...]
    errors_total: int


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _scan(text: str, what: str) -> list[Token]:
    try:
        return list(scan(text))
    except ParseError as exc:
        said = exc.args[0] if exc.args else exc
    backslash = _LINE_META.search(text)
    if backslash is not None:  # unreadable, and a line that psql would have run as a meta-command
        raise _refused(what, backslash.group(1), _line_of(text, backslash.start(1)))
    raise ConfigError(
        f"{what} is not SQL that PostgreSQL's scanner can read ({fence_text(said)}): nothing of it was loaded"
    )


def _refused(what: str, command: str, line: int) -> MetaCommandRefused:
    return MetaCommandRefused(
        f"{what} holds the psql meta-command {fence_text(command[:40])} at line {line}: pgshift loads SQL only and "
        "never runs meta-commands, so nothing of it was loaded and nothing ran. A pg_dump output holds none "
        "(besides its \\restrict / \\unrestrict pair): the text was written by something else. Do not use it; "
        "check who can write where it is stored."
    )


def _outside(lines: list[str]) -> bool:
    """Whether these lines hold nothing but blank lines and `--` comments (pg_dump's header and footer)."""
    return all(not ln.strip() or ln.lstrip().startswith("--") for ln in lines)


def _dump_guard_lines(lines: list[str]) -> set[int]:
    """The indexes of pg_dump's `\\restrict <key>` line (before any statement) and its `\\unrestrict <key>` line
    (after the last one, same key); empty when the text does not have exactly that shape."""
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    while first is not None and lines[first].lstrip().startswith("--"):
        first = next((i for i in range(first + 1, len(lines)) if lines[i].strip()), None)
    if first is None or not (opening := _RESTRICT.fullmatch(lines[first].strip())) or opening.group(1):
        return set()
    if not _outside(lines[:first]):
        return set()
    for last in range(len(lines) - 1, first, -1):
        closing = _RESTRICT.fullmatch(lines[last].strip())
        if closing and closing.group(1) and closing.group(2) == opening.group(2) and _outside(lines[last + 1 :]):
            return {first, last}
    return {first}


def without_meta_commands(text: str, *, what: str = "the text") -> str:
    """`text` with pg_dump's `\\restrict <key>` / `\\unrestrict <key>` lines blanked (line numbers kept).

    Raises MetaCommandRefused naming the first other meta-command and its line: such a text is never loaded."""
    lines = text.split("\n")
    guards = _dump_guard_lines(lines)
    clean = "\n".join("" if i in guards else ln for i, ln in enumerate(lines))
    for token in _scan(clean, what):
        if token.name == _BACKSLASH:
            command = clean[token.start :].split(maxsplit=1)[0]
            raise _refused(what, command, _line_of(clean, token.start))
    return clean


def _scanner_pieces(text: str) -> list[Piece]:
    """Pieces cut at top-level semicolons (outside parentheses and BEGIN ATOMIC ... END bodies)."""
    tokens = _scan(text, "the text")
    pieces: list[Piece] = []
    start: int | None = None
    depth = atomic = 0
    for i, t in enumerate(tokens):
        if start is None and t.name != _SEMICOLON:
            start = t.start
        if t.name == "ASCII_40":
            depth += 1
        elif t.name == "ASCII_41":
            depth = max(0, depth - 1)
        elif t.name == "BEGIN_P" and i + 1 < len(tokens) and tokens[i + 1].name == "ATOMIC":
            atomic += 1
        elif atomic and t.name == "CASE":
            atomic += 1
        elif atomic and t.name == "END_P":
            atomic -= 1
        elif t.name == _SEMICOLON and depth == 0 and atomic == 0:
            if start is not None:
                pieces.append(Piece(text[start : t.start], _line_of(text, start)))
            start = None
    if start is not None and text[start:].strip():
        pieces.append(Piece(text[start:], _line_of(text, start)))
    return pieces


def pieces(text: str, *, what: str = "the text") -> list[Piece]:
    """The statements of `text` in order (meta-commands refused first, see the module docstring)."""
    clean = without_meta_commands(text, what=what)
    try:
        return [_described(s.text, s.line, s) for s in split_statements(clean)]
    except ConfigError:
        return [_with_parse(p) for p in _scanner_pieces(clean)]


def _described(text: str, line: int, s: SqlStatement) -> Piece:
    """The piece, with what `tools.scratch` prepares for it: the extension it creates, the roles it acts for."""
    if s.node_type == "CreateExtensionStmt":
        return Piece(text, line, extension=str(s.node.extname))
    if s.node_type == "AlterDefaultPrivilegesStmt":
        roles = next((o.arg for o in s.node.options or () if o.defname == "roles"), ())
        return Piece(text, line, acts_for=tuple(str(r.rolename) for r in roles if r.rolename))
    if s.node_type == "CreateSchemaStmt" and not s.node.authrole and not s.node.schemaElts:
        return Piece(text, line, prepares=("schema", str(s.node.schemaname)))
    if s.node_type == "CommentStmt" and s.node.objtype == ObjectType.OBJECT_EXTENSION:
        return Piece(text, line, prepares=("extension comment", str(s.node.object.sval)))
    return Piece(text, line)


def _with_parse(piece: Piece) -> Piece:
    head = [t.name for t in _scan(piece.text, "the text")[:2]]
    if head not in (["CREATE", "EXTENSION"], ["ALTER", "DEFAULT"], ["CREATE", "SCHEMA"], ["COMMENT", "ON"]):
        return piece
    try:
        return _described(piece.text, piece.line, statement(piece.text))
    except ConfigError:
        return piece


def roles_acted_for(todo: list[Piece]) -> frozenset[str]:
    """The roles the pieces' ALTER DEFAULT PRIVILEGES FOR ROLE act for (the sandboxed role must be a member)."""
    return frozenset(r for p in todo for r in p.acts_for)


def extensions_named(text: str) -> frozenset[str]:
    """The extensions the text's own CREATE EXTENSION statements name (meta-commands refused first)."""
    return frozenset(p.extension for p in pieces(text) if p.extension)


async def load_script(
    conn: asyncpg.Connection, text: str, *, secrets_: list[str] | tuple[str, ...] = (), what: str = "the text"
) -> LoadReport:
    """Run every statement of `text` on `conn`, in order, each in its own implicit transaction; errors are collected
    (scrubbed of `secrets_`, fenced) and the load goes on. Raises MetaCommandRefused before anything runs when the
    text holds a meta-command."""
    return await load_pieces(conn, pieces(text, what=what), secrets_=secrets_)


async def load_pieces(
    conn: asyncpg.Connection,
    todo: list[Piece],
    *,
    secrets_: list[str] | tuple[str, ...] = (),
    timeout_s: float = LOAD_TIMEOUT_S,
    prepared: Collection[tuple[str, str]] = (),
) -> LoadReport:
    """`load_script` for a text already cut into pieces (see `pieces`); DatabaseError after `timeout_s`. A piece
    that sets up what is in `prepared` (a schema, an extension's comment, done from the target's catalog by
    `tools.scratch.create_extensions`) is skipped: it would only fail on what is already there."""
    errors: list[LoadError] = []
    total = 0
    todo = [p for p in todo if p.prepares is None or p.prepares not in prepared]
    try:
        async with asyncio.timeout(timeout_s):
            total = await _run_all(conn, todo, errors, secrets_)
    except TimeoutError:
        raise DatabaseError(
            f"loading the text into the scratch database took over {timeout_s:.0f} s: stopped; the scratch database "
            "is dropped, nothing else was touched"
        ) from None
    return LoadReport(statements=len(todo), errors=tuple(errors), errors_total=total)


async def _run_all(
    conn: asyncpg.Connection, todo: list[Piece], errors: list[LoadError], secrets_: list[str] | tuple[str, ...]
) -> int:
    total = 0
    for piece in todo:
        try:
            await run_statement(conn, piece.text)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            total += 1
            if len(errors) < ERRORS_KEPT:
                said = scrub(str(exc), list(secrets_))
                errors.append(LoadError(piece.line, getattr(exc, "sqlstate", None), fence_text(said)))
        if conn.is_in_transaction():  # the text's own BEGIN: psql would have let it run on; we end it
            await conn.execute("ROLLBACK")
    return total
