"""Split a migration script into statements with PostgreSQL's own grammar, keeping the author's exact text.

Statement boundaries, kinds and transactional flags come from PostgreSQL's parser (libpg_query through pglast):
the statements are exactly those PostgreSQL itself sees, so dollar quotes, `E'...\\'...'` strings, nested
comments and `BEGIN ATOMIC` bodies split as PostgreSQL splits them, and a script PostgreSQL's grammar rejects is
a `ConfigError` naming the line — never a guess by a looser splitter. Each statement carries its parse-tree node
(`node`), so rules dispatch on node types, and its tokens from PostgreSQL's own scanner (`tokens`), which the
rewriter and linter read to edit the author's text in place.

Round trip: `"".join(s.leading + s.text + s.suffix for s in statements) == script` for every script with at
least one statement.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from itertools import accumulate
from typing import Any, Literal

from pglast import parse_sql
from pglast.parser import ParseError, Token, parse_sql_json, scan

from pgshift.tools.errors import ConfigError


class TokenKind(StrEnum):
    WORD = "word"  # keyword or unquoted name
    IDENT = "ident"  # "quoted identifier"
    STRING = "string"  # any string literal, including $tag$ bodies
    NUMBER = "number"
    PUNCT = "punct"


@dataclass(frozen=True)
class Tok:
    """One token of a statement. `start`/`end` are offsets into the statement's `text` (end exclusive)."""

    kind: TokenKind
    text: str  # the source text exactly as written
    start: int
    end: int

    @property
    def upper(self) -> str:
        """Upper-case text for words, '' for anything else (so a quoted "TABLE" is never a keyword)."""
        return self.text.upper() if self.kind is TokenKind.WORD else ""

    @property
    def name(self) -> str:
        """The identifier this token names: unquoted words fold to lower case, quoted ones keep their case."""
        if self.kind is TokenKind.IDENT:
            return self.text[1:-1].replace('""', '"')
        return self.text.lower()


class StatementKind(StrEnum):
    CREATE_TABLE = "create_table"
    ALTER_TABLE = "alter_table"
    DROP_TABLE = "drop_table"
    CREATE_INDEX = "create_index"
    ALTER_INDEX = "alter_index"
    DROP_INDEX = "drop_index"
    CREATE_TYPE = "create_type"
    ALTER_TYPE = "alter_type"
    DROP_TYPE = "drop_type"
    CREATE_DOMAIN = "create_domain"
    CREATE_EXTENSION = "create_extension"
    ALTER_EXTENSION = "alter_extension"
    DROP_EXTENSION = "drop_extension"
    CREATE_SCHEMA = "create_schema"
    DROP_SCHEMA = "drop_schema"
    CREATE_SEQUENCE = "create_sequence"
    ALTER_SEQUENCE = "alter_sequence"
    DROP_SEQUENCE = "drop_sequence"
    CREATE_FUNCTION = "create_function"
    DROP_FUNCTION = "drop_function"
    CREATE_TRIGGER = "create_trigger"
    DROP_TRIGGER = "drop_trigger"
    CREATE_POLICY = "create_policy"
    ALTER_POLICY = "alter_policy"
    DROP_POLICY = "drop_policy"
    CREATE_VIEW = "create_view"
    DROP_VIEW = "drop_view"
    CREATE_ROLE = "create_role"
    CREATE_OTHER = "create_other"
    ALTER_OTHER = "alter_other"
    DROP_OTHER = "drop_other"
    COMMENT = "comment"
    GRANT = "grant"
    REVOKE = "revoke"
    DO_BLOCK = "do_block"
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"
    MERGE = "merge"
    TRUNCATE = "truncate"
    SELECT = "select"
    SET = "set"
    BEGIN = "begin"
    COMMIT = "commit"
    ROLLBACK = "rollback"
    SAVEPOINT = "savepoint"
    VACUUM = "vacuum"
    REINDEX = "reindex"
    REFRESH = "refresh"
    CREATE_DATABASE = "create_database"
    DROP_DATABASE = "drop_database"
    PREPARED_TRANSACTION = "prepared_transaction"  # PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED
    UNKNOWN = "unknown"


Isolation = Literal["read_uncommitted", "read_committed", "repeatable_read", "serializable"]


@dataclass(frozen=True)
class TxCharacteristics:
    """The transaction characteristics a statement asks for (None where it says nothing).

    `scope` "transaction": for the transaction the statement is in (BEGIN/START TRANSACTION's options, SET
    TRANSACTION, SET [LOCAL] transaction_isolation / transaction_read_only / transaction_deferrable); "session": the
    default for the transactions that follow (SET SESSION CHARACTERISTICS AS TRANSACTION, SET
    default_transaction_*). `snapshot` is the snapshot SET TRANSACTION SNAPSHOT imports.
    """

    isolation: Isolation | None = None
    read_only: bool | None = None
    deferrable: bool | None = None
    scope: Literal["transaction", "session"] = "transaction"
    snapshot: str | None = None

    def over(self, base: TxCharacteristics) -> TxCharacteristics:
        """These characteristics, with `base`'s where these say nothing."""
        return TxCharacteristics(
            isolation=self.isolation if self.isolation is not None else base.isolation,
            read_only=self.read_only if self.read_only is not None else base.read_only,
            deferrable=self.deferrable if self.deferrable is not None else base.deferrable,
            scope=base.scope,
            snapshot=self.snapshot if self.snapshot is not None else base.snapshot,
        )

    @property
    def sql(self) -> str:
        """As BEGIN's options would say it ('' when nothing is asked)."""
        words = []
        if self.isolation is not None:
            words.append("ISOLATION LEVEL " + self.isolation.replace("_", " ").upper())
        if self.read_only is not None:
            words.append("READ ONLY" if self.read_only else "READ WRITE")
        if self.deferrable is not None:
            words.append("DEFERRABLE" if self.deferrable else "NOT DEFERRABLE")
        return ", ".join(words)


@dataclass(frozen=True)
class SqlStatement:
    """One statement of a script.

    `text` is the author's exact text, without the terminating semicolon and without the comments and blank
    lines before it (those are in `leading`; `suffix` runs from the end of `text` through the semicolon, and
    for the last statement to the end of the script). `node` is PostgreSQL's parse tree of the statement (a
    `pglast.ast` node such as `ast.IndexStmt`), `node_type` its type name.
    """

    text: str
    kind: StatementKind
    transactional: bool
    line: int
    leading: str = ""
    suffix: str = ""
    start: int = 0  # offset of `text` in the script
    tokens: tuple[Tok, ...] = field(default=(), repr=False, compare=False)
    node_type: str = field(default="", compare=False)  # PostgreSQL's parse-node name: "IndexStmt", "DoStmt", ...
    characteristics: TxCharacteristics | None = field(default=None, compare=False)
    """The transaction characteristics this statement sets (BEGIN's options, SET TRANSACTION, ...), else None."""
    chain: bool = field(default=False, compare=False)
    """COMMIT AND CHAIN: a new transaction with the same characteristics starts right after the commit."""

    @cached_property
    def node(self) -> Any:
        """PostgreSQL's parse tree of this statement, as pglast's typed node (`pglast.ast.IndexStmt`, ...); built on
        first use, since most callers never need it."""
        return parse_sql(self.text)[0].stmt

    @property
    def tx_control(self) -> Literal["begin", "commit", "rollback", "characteristics"] | None:
        """Whether this is the script's own transaction control: BEGIN / COMMIT / ROLLBACK, or "characteristics" for
        a SET that only sets transaction characteristics (SET TRANSACTION ..., SET SESSION CHARACTERISTICS AS
        TRANSACTION ..., SET transaction_isolation / default_transaction_isolation ...), which the runner honours
        by how it opens the transactions rather than by sending it."""
        if self.kind is StatementKind.BEGIN:
            return "begin"
        if self.kind is StatementKind.COMMIT:
            return "commit"
        if self.kind is StatementKind.ROLLBACK:
            return "rollback"
        if self.kind is StatementKind.SET and self.characteristics is not None:
            return "characteristics"
        return None

    @property
    def words(self) -> tuple[str, ...]:
        """Upper-cased leading words, for display and tests."""
        return tuple(t.upper for t in self.tokens if t.kind is TokenKind.WORD)


# ---------------------------------------------------------------------------------------------------------------
# Classification: one entry per parse-tree node type. Rules read libpg_query's JSON form of the node (what
# `pglast.parser.parse_sql_json` gives): enum values are their names, false and empty fields are absent.

Classified = tuple[StatementKind, bool]  # kind, whether it may run inside a transaction block
Node = Mapping[str, Any]
_Rule = Callable[[Node], Classified]


def _always(kind: StatementKind, transactional: bool = True) -> _Rule:
    return lambda _node: (kind, transactional)


_ALTERED: dict[str | None, StatementKind] = {
    "OBJECT_TABLE": StatementKind.ALTER_TABLE,
    "OBJECT_INDEX": StatementKind.ALTER_INDEX,
    "OBJECT_TYPE": StatementKind.ALTER_TYPE,
    "OBJECT_EXTENSION": StatementKind.ALTER_EXTENSION,
    "OBJECT_SEQUENCE": StatementKind.ALTER_SEQUENCE,
    "OBJECT_POLICY": StatementKind.ALTER_POLICY,
}

_DROPPED: dict[str | None, StatementKind] = {
    "OBJECT_TABLE": StatementKind.DROP_TABLE,
    "OBJECT_INDEX": StatementKind.DROP_INDEX,
    "OBJECT_TYPE": StatementKind.DROP_TYPE,
    "OBJECT_EXTENSION": StatementKind.DROP_EXTENSION,
    "OBJECT_SCHEMA": StatementKind.DROP_SCHEMA,
    "OBJECT_SEQUENCE": StatementKind.DROP_SEQUENCE,
    "OBJECT_FUNCTION": StatementKind.DROP_FUNCTION,
    "OBJECT_PROCEDURE": StatementKind.DROP_FUNCTION,
    "OBJECT_TRIGGER": StatementKind.DROP_TRIGGER,
    "OBJECT_POLICY": StatementKind.DROP_POLICY,
    "OBJECT_VIEW": StatementKind.DROP_VIEW,
    "OBJECT_MATVIEW": StatementKind.DROP_VIEW,
}

_TRANSACTION: dict[str | None, StatementKind] = {
    "TRANS_STMT_BEGIN": StatementKind.BEGIN,
    "TRANS_STMT_START": StatementKind.BEGIN,
    "TRANS_STMT_COMMIT": StatementKind.COMMIT,
    "TRANS_STMT_ROLLBACK": StatementKind.ROLLBACK,
    "TRANS_STMT_SAVEPOINT": StatementKind.SAVEPOINT,
    "TRANS_STMT_RELEASE": StatementKind.SAVEPOINT,
    "TRANS_STMT_ROLLBACK_TO": StatementKind.SAVEPOINT,
    "TRANS_STMT_PREPARE": StatementKind.PREPARED_TRANSACTION,
    "TRANS_STMT_COMMIT_PREPARED": StatementKind.PREPARED_TRANSACTION,
    "TRANS_STMT_ROLLBACK_PREPARED": StatementKind.PREPARED_TRANSACTION,
}


def _defnames(items: Any) -> set[str]:
    return {str(item["DefElem"].get("defname")) for item in items or () if "DefElem" in item}


def _altered(object_type: str | None) -> Classified:
    return _ALTERED.get(object_type, StatementKind.ALTER_OTHER), True


def _alter_table(node: Node) -> Classified:
    commands = [c.get("AlterTableCmd", {}) for c in node.get("cmds", ())]
    detach_concurrently = any(c.get("def", {}).get("PartitionCmd", {}).get("concurrent") for c in commands)
    return _ALTERED.get(node.get("objtype"), StatementKind.ALTER_OTHER), not detach_concurrently


def _rename(node: Node) -> Classified:
    """ALTER <object> ... RENAME: columns and attributes name the relation kind separately."""
    renamed = node.get("renameType")
    if renamed == "OBJECT_TABCONSTRAINT":
        return StatementKind.ALTER_TABLE, True
    return _altered(node.get("relationType") if renamed in ("OBJECT_COLUMN", "OBJECT_ATTRIBUTE") else renamed)


def _reindex(node: Node) -> Classified:
    concurrently = "concurrently" in _defnames(node.get("params"))
    whole = node.get("kind") in ("REINDEX_OBJECT_SCHEMA", "REINDEX_OBJECT_SYSTEM", "REINDEX_OBJECT_DATABASE")
    return StatementKind.REINDEX, not (concurrently or whole)


def _create_role(node: Node) -> Classified:
    is_role = node.get("stmt_type") in ("ROLESTMT_ROLE", "ROLESTMT_USER")
    return (StatementKind.CREATE_ROLE if is_role else StatementKind.CREATE_OTHER), True


def _transaction(node: Node) -> Classified:
    kind = _TRANSACTION.get(node.get("kind"), StatementKind.UNKNOWN)
    return kind, kind is StatementKind.SAVEPOINT


def _grant(node: Node) -> Classified:
    return (StatementKind.GRANT if node.get("is_grant") else StatementKind.REVOKE), True


_RULES: dict[str, _Rule] = {
    # CREATE
    "CreateStmt": _always(StatementKind.CREATE_TABLE),
    "CreateTableAsStmt": lambda n: (
        StatementKind.CREATE_VIEW if n.get("objtype") == "OBJECT_MATVIEW" else StatementKind.CREATE_TABLE,
        True,
    ),
    "IndexStmt": lambda n: (StatementKind.CREATE_INDEX, not n.get("concurrent")),
    "CreateEnumStmt": _always(StatementKind.CREATE_TYPE),
    "CompositeTypeStmt": _always(StatementKind.CREATE_TYPE),
    "CreateRangeStmt": _always(StatementKind.CREATE_TYPE),
    "DefineStmt": lambda n: (
        StatementKind.CREATE_TYPE if n.get("kind") == "OBJECT_TYPE" else StatementKind.CREATE_OTHER,
        True,
    ),
    "CreateDomainStmt": _always(StatementKind.CREATE_DOMAIN),
    "CreateExtensionStmt": _always(StatementKind.CREATE_EXTENSION),
    "CreateSchemaStmt": _always(StatementKind.CREATE_SCHEMA),
    "CreateSeqStmt": _always(StatementKind.CREATE_SEQUENCE),
    "CreateFunctionStmt": _always(StatementKind.CREATE_FUNCTION),
    "CreateTrigStmt": _always(StatementKind.CREATE_TRIGGER),
    "CreatePolicyStmt": _always(StatementKind.CREATE_POLICY),
    "ViewStmt": _always(StatementKind.CREATE_VIEW),
    "CreateRoleStmt": _create_role,
    "RuleStmt": _always(StatementKind.CREATE_OTHER),
    "CreatedbStmt": _always(StatementKind.CREATE_DATABASE, False),
    "CreateTableSpaceStmt": _always(StatementKind.CREATE_OTHER, False),
    "CreateSubscriptionStmt": _always(StatementKind.CREATE_OTHER, False),
    # ALTER
    "AlterTableStmt": _alter_table,
    "RenameStmt": _rename,
    "AlterObjectSchemaStmt": lambda n: _altered(n.get("objectType")),
    "AlterOwnerStmt": lambda n: _altered(n.get("objectType")),
    "AlterEnumStmt": _always(StatementKind.ALTER_TYPE),  # ADD VALUE runs in a transaction since PostgreSQL 12
    "AlterTypeStmt": _always(StatementKind.ALTER_TYPE),
    "AlterExtensionStmt": _always(StatementKind.ALTER_EXTENSION),
    "AlterExtensionContentsStmt": _always(StatementKind.ALTER_EXTENSION),
    "AlterSeqStmt": _always(StatementKind.ALTER_SEQUENCE),
    "AlterPolicyStmt": _always(StatementKind.ALTER_POLICY),
    "AlterSystemStmt": _always(StatementKind.ALTER_OTHER, False),
    "AlterDatabaseStmt": lambda n: (StatementKind.ALTER_OTHER, "tablespace" not in _defnames(n.get("options"))),
    # DROP
    "DropStmt": lambda n: (_DROPPED.get(n.get("removeType"), StatementKind.DROP_OTHER), not n.get("concurrent")),
    "DropdbStmt": _always(StatementKind.DROP_DATABASE, False),
    "DropTableSpaceStmt": _always(StatementKind.DROP_OTHER, False),
    "DropSubscriptionStmt": _always(StatementKind.DROP_OTHER, False),
    # everything else
    "CommentStmt": _always(StatementKind.COMMENT),
    "GrantStmt": _grant,
    "GrantRoleStmt": _grant,
    "DoStmt": _always(StatementKind.DO_BLOCK),
    "InsertStmt": _always(StatementKind.INSERT),
    "UpdateStmt": _always(StatementKind.UPDATE),
    "DeleteStmt": _always(StatementKind.DELETE),
    "MergeStmt": _always(StatementKind.MERGE),
    "TruncateStmt": _always(StatementKind.TRUNCATE),
    "SelectStmt": _always(StatementKind.SELECT),
    "VariableSetStmt": _always(StatementKind.SET),
    "TransactionStmt": _transaction,
    "VacuumStmt": lambda n: (StatementKind.VACUUM, False) if n.get("is_vacuumcmd") else (StatementKind.UNKNOWN, True),
    "ReindexStmt": _reindex,
    "RefreshMatViewStmt": _always(StatementKind.REFRESH),
    "ClusterStmt": lambda n: (StatementKind.UNKNOWN, "relation" in n),  # CLUSTER of every table runs alone
}

_ISOLATIONS: dict[str, Isolation] = {
    "read uncommitted": "read_uncommitted",
    "read committed": "read_committed",
    "repeatable read": "repeatable_read",
    "serializable": "serializable",
}
_TRUE = frozenset({"on", "true", "yes", "1", "t", "y"})
_FALSE = frozenset({"off", "false", "no", "0", "f", "n"})
_CHARACTERISTIC_GUCS = {"isolation", "read_only", "deferrable"}


def _const(node: Any) -> str | None:
    """An A_Const's value as text (libpg_query leaves 0 and false as empty objects), None for anything else."""
    if not isinstance(node, Mapping) or "A_Const" not in node:
        return None
    value = node["A_Const"]
    for key, inner in (("sval", "sval"), ("ival", "ival"), ("boolval", "boolval")):
        if key in value:
            raw = value[key].get(inner, 0 if key == "ival" else False)
            return str(raw).lower() if not isinstance(raw, bool) else ("true" if raw else "false")
    return None


def _characteristic(target: dict[str, Any], name: str, value: str | None) -> None:
    """Put one `transaction_isolation` / `transaction_read_only` / `transaction_deferrable` value into `target`."""
    if value is None:
        return
    if name == "isolation":
        if value in _ISOLATIONS:
            target["isolation"] = _ISOLATIONS[value]
    elif value in _TRUE or value in _FALSE:
        target[name] = value in _TRUE


def transaction_characteristics(node_type: str, node: Node) -> TxCharacteristics | None:
    """The transaction characteristics a parsed statement sets, from its parse tree (None: it sets none)."""
    fields: dict[str, Any] = {}
    if node_type == "TransactionStmt" and node.get("kind") in ("TRANS_STMT_BEGIN", "TRANS_STMT_START"):
        for item in node.get("options") or ():
            elem = item.get("DefElem", {})
            _characteristic(fields, str(elem.get("defname", "")).removeprefix("transaction_"), _const(elem.get("arg")))
        return TxCharacteristics(**fields)
    if node_type != "VariableSetStmt":
        return None
    name = str(node.get("name", "")).lower()
    if node.get("kind") == "VAR_SET_MULTI" and name in ("transaction", "session characteristics"):
        for item in node.get("args") or ():
            elem = item.get("DefElem", {})
            _characteristic(fields, str(elem.get("defname", "")).removeprefix("transaction_"), _const(elem.get("arg")))
        return TxCharacteristics(**fields, scope="session" if name == "session characteristics" else "transaction")
    if node.get("kind") == "VAR_SET_MULTI" and name == "transaction snapshot":
        snapshot: list[Any] = list(node.get("args") or [])
        return TxCharacteristics(snapshot=_const(snapshot[0]) if snapshot else "")
    scope: Literal["transaction", "session"] = "session" if name.startswith("default_") else "transaction"
    setting = name.removeprefix("default_").removeprefix("transaction_")
    if not name.removeprefix("default_").startswith("transaction_") or setting not in _CHARACTERISTIC_GUCS:
        return None
    if node.get("kind") != "VAR_SET_VALUE":  # SET ... TO DEFAULT / RESET: back to the server's default
        return TxCharacteristics(scope=scope)
    args: list[Any] = list(node.get("args") or [])
    _characteristic(fields, setting, _const(args[0]) if len(args) == 1 else None)
    return TxCharacteristics(**fields, scope=scope)


_BY_VERB = {"Create": StatementKind.CREATE_OTHER, "Alter": StatementKind.ALTER_OTHER, "Drop": StatementKind.DROP_OTHER}


def classify(node_type: str, node: Node) -> Classified:
    """Kind and transactional flag of one parsed statement, from its node type (`IndexStmt`, ...)."""
    rule = _RULES.get(node_type)
    if rule is not None:
        return rule(node)
    verb = next((v for v in _BY_VERB if node_type.startswith(v)), None)
    return (_BY_VERB[verb] if verb else StatementKind.UNKNOWN), True


# ---------------------------------------------------------------------------------------------------------------
# Splitting

_STRING_TOKENS = frozenset({"SCONST", "USCONST", "BCONST", "XCONST"})
_NUMBER_TOKENS = frozenset({"ICONST", "FCONST"})
_COMMENT_TOKENS = frozenset({"SQL_COMMENT", "C_COMMENT"})
_SEMICOLON = "ASCII_59"


class _Offsets:
    """libpg_query's JSON gives byte offsets into the UTF-8 script; Python slices by character."""

    def __init__(self, sql: str) -> None:
        self.ends = None if sql.isascii() else list(accumulate(len(ch.encode()) for ch in sql))

    def char(self, byte: int) -> int:
        return byte if self.ends is None else bisect_right(self.ends, byte)


def _tok(t: Token, sql: str, base: int) -> Tok:
    """Our token for one of PostgreSQL's scanner tokens (pglast gives character offsets, `end` inclusive)."""
    end = t.end + 1
    raw = sql[t.start : end]
    if t.name in _STRING_TOKENS:
        kind = TokenKind.STRING
    elif t.name in _NUMBER_TOKENS:
        kind = TokenKind.NUMBER
    elif t.name == "UIDENT" or (t.name == "IDENT" and raw.startswith('"')):
        kind = TokenKind.IDENT
    elif t.name == "IDENT" or t.kind != "NO_KEYWORD":
        kind = TokenKind.WORD
    else:
        kind = TokenKind.PUNCT
    return Tok(kind, raw, t.start - base, end - base)


def _line_of(sql: str, offset: int) -> int:
    return sql.count("\n", 0, max(offset, 0)) + 1


def _parse(sql: str) -> list[dict[str, Any]]:
    """libpg_query's raw statements: {"stmt": {NodeType: {...}}, "stmt_location": bytes, "stmt_len": bytes}."""
    try:
        return list(json.loads(parse_sql_json(sql)).get("stmts", ()))
    except ParseError as error:
        message = str(error.args[0]) if error.args else str(error)
        at = error.args[1] if len(error.args) > 1 and isinstance(error.args[1], int) else 0  # characters
        line = _line_of(sql, at)
        if sql[at : at + 1] == "\\":
            command = sql[at:].split(maxsplit=1)[0]
            raise ConfigError(
                f"line {line}: {command!r} is a psql meta-command, not SQL; pgshift sends SQL only. Remove it "
                "(or run that script with psql). Nothing was run."
            ) from None
        raise ConfigError(
            f"malformed SQL at line {line}: PostgreSQL's parser says: {message}. Nothing was run; fix the script "
            "and try again."
        ) from None


def split_statements(sql: str) -> list[SqlStatement]:
    """The statements of a script, in order, each with its exact text, kind, transactional flag, line and parse
    tree: exactly the statements PostgreSQL's parser sees.

    Raises ConfigError (with the line and PostgreSQL's message) for any script PostgreSQL's grammar rejects.
    """
    raws = _parse(sql)
    if not raws:
        return []
    offsets = _Offsets(sql)
    tokens = scan(sql)
    starts = [t.start for t in tokens]
    statements: list[SqlStatement] = []
    cursor = 0  # end of the previous statement's suffix
    line, counted = 1, 0  # the line number at offset `counted`
    for index, raw in enumerate(raws):
        begin = raw.get("stmt_location", 0)
        stop = offsets.char(begin + raw["stmt_len"]) if raw.get("stmt_len") else len(sql)
        after = bisect_left(starts, stop)  # PostgreSQL's statement ends right before its semicolon
        own = [t for t in tokens[bisect_left(starts, offsets.char(begin)) : after] if t.name not in _COMMENT_TOKENS]
        start, end = own[0].start, own[-1].end + 1
        semicolon = tokens[after] if after < len(tokens) and tokens[after].name == _SEMICOLON else None
        suffix_end = len(sql) if index == len(raws) - 1 or semicolon is None else semicolon.end + 1
        line, counted = line + sql.count("\n", counted, start), start
        ((node_type, node),) = raw["stmt"].items()
        kind, transactional = classify(node_type, node)
        characteristics = transaction_characteristics(node_type, node)
        statements.append(
            SqlStatement(
                text=sql[start:end],
                kind=kind,
                transactional=transactional,
                line=line,
                leading=sql[cursor:start],
                suffix=sql[end:suffix_end],
                start=start,
                tokens=tuple(_tok(t, sql, start) for t in own),
                node_type=node_type,
                characteristics=characteristics,
                chain=kind is StatementKind.COMMIT and bool(node.get("chain")),
            )
        )
        cursor = suffix_end
    return statements


def statement(text: str) -> SqlStatement:
    """Parse exactly one statement (used for rewritten text)."""
    parsed = split_statements(text)
    if len(parsed) != 1:
        raise ConfigError(f"expected one statement, found {len(parsed)}: {text[:60]!r}")
    return parsed[0]


# ---------------------------------------------------------------------------------------------------------------
# Helpers for reading a statement's structure from its tokens (used by rewrite and lint)


@dataclass(frozen=True)
class NameRef:
    """A possibly schema-qualified name as written: `raw` is the author's text, `parts` the folded names."""

    raw: str
    parts: tuple[str, ...]
    end: int  # index of the token after the name

    @property
    def schema_raw(self) -> str | None:
        return self.raw.rsplit(".", 1)[0] if len(self.parts) > 1 else None


def is_word(tok: Tok, *words: str) -> bool:
    return tok.kind is TokenKind.WORD and tok.upper in words


def name_at(tokens: Sequence[Tok], i: int, text: str) -> NameRef | None:
    """The dotted name starting at token `i`."""
    if i >= len(tokens) or tokens[i].kind not in (TokenKind.WORD, TokenKind.IDENT):
        return None
    parts = [tokens[i].name]
    j = i + 1
    while j + 1 < len(tokens) and tokens[j].text == "." and tokens[j + 1].kind in (TokenKind.WORD, TokenKind.IDENT):
        parts.append(tokens[j + 1].name)
        j += 2
    return NameRef(raw=text[tokens[i].start : tokens[j - 1].end], parts=tuple(parts), end=j)


def skip_words(tokens: Sequence[Tok], i: int, *words: str) -> int:
    """Index after the run of `words` (in order, each optional) starting at `i`."""
    for word in words:
        if i < len(tokens) and is_word(tokens[i], word):
            i += 1
    return i


def has_if(tokens: Sequence[Tok], i: int) -> bool:
    return i < len(tokens) and is_word(tokens[i], "IF")


def top_level_actions(tokens: Sequence[Tok], start: int) -> list[tuple[int, int]]:
    """[start, end) token ranges of ALTER TABLE's comma-separated actions."""
    actions: list[tuple[int, int]] = []
    depth, begin = 0, start
    for i in range(start, len(tokens)):
        t = tokens[i]
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        elif t.text == "," and depth == 0:
            actions.append((begin, i))
            begin = i + 1
    actions.append((begin, len(tokens)))
    return actions
