"""Split a migration script into statements, keeping the author's exact text, and classify each one.

Splitting uses sqlglot's PostgreSQL tokenizer, so dollar-quoted bodies, quoted identifiers, string literals
and comments never split a statement. Classification reads the leading keywords of each statement's tokens
(the PostgreSQL command grammar is regular at its head: `CREATE [OR REPLACE] [UNIQUE] INDEX ...`), which works
for every statement, including the many DDL forms sqlglot's parser only knows as opaque commands.

Round trip: `"".join(s.leading + s.text + s.suffix for s in statements) == script` for every script with at
least one statement.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Literal

from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import TokenError
from sqlglot.tokens import Token, TokenType

from tools.errors import ConfigError


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
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SqlStatement:
    """One statement of a script.

    `text` is the author's exact text, without the terminating semicolon and without the comments and blank
    lines before it (those are in `leading`; `suffix` runs from the end of `text` through the semicolon, and
    for the last statement to the end of the script).
    """

    text: str
    kind: StatementKind
    transactional: bool
    line: int
    leading: str = ""
    suffix: str = ""
    start: int = 0  # offset of `text` in the script
    tokens: tuple[Tok, ...] = field(default=(), repr=False, compare=False)

    @property
    def tx_control(self) -> Literal["begin", "commit", "rollback"] | None:
        """Whether this is the script's own transaction control (BEGIN / COMMIT / ROLLBACK)."""
        if self.kind is StatementKind.BEGIN:
            return "begin"
        if self.kind is StatementKind.COMMIT:
            return "commit"
        if self.kind is StatementKind.ROLLBACK:
            return "rollback"
        return None

    @property
    def words(self) -> tuple[str, ...]:
        """Upper-cased leading words, for display and tests."""
        return tuple(t.upper for t in self.tokens if t.kind is TokenKind.WORD)


# Every PostgreSQL SQL command starts with one of these words (see "SQL Commands" in the manual).
COMMAND_WORDS = frozenset(
    """ABORT ALTER ANALYZE ANALYSE BEGIN CALL CHECKPOINT CLOSE CLUSTER COMMENT COMMIT COPY CREATE DEALLOCATE DECLARE
    DELETE DISCARD DO DROP END EXECUTE EXPLAIN FETCH GRANT IMPORT INSERT LISTEN LOAD LOCK MERGE MOVE NOTIFY PREPARE
    REASSIGN REFRESH REINDEX RELEASE RESET REVOKE ROLLBACK SAVEPOINT SECURITY SELECT SET SHOW START TABLE TRUNCATE
    UNLISTEN UPDATE VACUUM VALUES WITH""".split()
)

# Words that may sit between CREATE and the object type.
_CREATE_MODIFIERS = frozenset(
    "OR REPLACE UNIQUE TEMP TEMPORARY UNLOGGED GLOBAL LOCAL MATERIALIZED RECURSIVE TRUSTED PROCEDURAL CONSTRAINT "
    "DEFAULT".split()
)

_OBJECT_KINDS: dict[tuple[str, str], StatementKind] = {
    ("CREATE", "TABLE"): StatementKind.CREATE_TABLE,
    ("ALTER", "TABLE"): StatementKind.ALTER_TABLE,
    ("DROP", "TABLE"): StatementKind.DROP_TABLE,
    ("CREATE", "INDEX"): StatementKind.CREATE_INDEX,
    ("ALTER", "INDEX"): StatementKind.ALTER_INDEX,
    ("DROP", "INDEX"): StatementKind.DROP_INDEX,
    ("CREATE", "TYPE"): StatementKind.CREATE_TYPE,
    ("ALTER", "TYPE"): StatementKind.ALTER_TYPE,
    ("DROP", "TYPE"): StatementKind.DROP_TYPE,
    ("CREATE", "DOMAIN"): StatementKind.CREATE_DOMAIN,
    ("CREATE", "EXTENSION"): StatementKind.CREATE_EXTENSION,
    ("ALTER", "EXTENSION"): StatementKind.ALTER_EXTENSION,
    ("DROP", "EXTENSION"): StatementKind.DROP_EXTENSION,
    ("CREATE", "SCHEMA"): StatementKind.CREATE_SCHEMA,
    ("DROP", "SCHEMA"): StatementKind.DROP_SCHEMA,
    ("CREATE", "SEQUENCE"): StatementKind.CREATE_SEQUENCE,
    ("ALTER", "SEQUENCE"): StatementKind.ALTER_SEQUENCE,
    ("DROP", "SEQUENCE"): StatementKind.DROP_SEQUENCE,
    ("CREATE", "FUNCTION"): StatementKind.CREATE_FUNCTION,
    ("CREATE", "PROCEDURE"): StatementKind.CREATE_FUNCTION,
    ("DROP", "FUNCTION"): StatementKind.DROP_FUNCTION,
    ("DROP", "PROCEDURE"): StatementKind.DROP_FUNCTION,
    ("CREATE", "TRIGGER"): StatementKind.CREATE_TRIGGER,
    ("DROP", "TRIGGER"): StatementKind.DROP_TRIGGER,
    ("CREATE", "POLICY"): StatementKind.CREATE_POLICY,
    ("ALTER", "POLICY"): StatementKind.ALTER_POLICY,
    ("DROP", "POLICY"): StatementKind.DROP_POLICY,
    ("CREATE", "VIEW"): StatementKind.CREATE_VIEW,
    ("DROP", "VIEW"): StatementKind.DROP_VIEW,
    ("CREATE", "ROLE"): StatementKind.CREATE_ROLE,
    ("CREATE", "USER"): StatementKind.CREATE_ROLE,
    ("CREATE", "DATABASE"): StatementKind.CREATE_DATABASE,
    ("DROP", "DATABASE"): StatementKind.DROP_DATABASE,
}

_VERB_KINDS: dict[str, StatementKind] = {
    "COMMENT": StatementKind.COMMENT,
    "GRANT": StatementKind.GRANT,
    "REVOKE": StatementKind.REVOKE,
    "DO": StatementKind.DO_BLOCK,
    "INSERT": StatementKind.INSERT,
    "UPDATE": StatementKind.UPDATE,
    "DELETE": StatementKind.DELETE,
    "MERGE": StatementKind.MERGE,
    "TRUNCATE": StatementKind.TRUNCATE,
    "SELECT": StatementKind.SELECT,
    "VALUES": StatementKind.SELECT,
    "TABLE": StatementKind.SELECT,
    "SET": StatementKind.SET,
    "RESET": StatementKind.SET,
    "BEGIN": StatementKind.BEGIN,
    "START": StatementKind.BEGIN,
    "COMMIT": StatementKind.COMMIT,
    "END": StatementKind.COMMIT,
    "ROLLBACK": StatementKind.ROLLBACK,
    "ABORT": StatementKind.ROLLBACK,
    "SAVEPOINT": StatementKind.SAVEPOINT,
    "RELEASE": StatementKind.SAVEPOINT,
    "VACUUM": StatementKind.VACUUM,
    "REINDEX": StatementKind.REINDEX,
    "REFRESH": StatementKind.REFRESH,
}

_DML_VERBS = {"INSERT": StatementKind.INSERT, "UPDATE": StatementKind.UPDATE, "DELETE": StatementKind.DELETE}

_STRING_TYPES = frozenset(
    {
        TokenType.STRING,
        TokenType.HEREDOC_STRING,
        TokenType.BYTE_STRING,
        TokenType.NATIONAL_STRING,
        TokenType.RAW_STRING,
        TokenType.BIT_STRING,
        TokenType.HEX_STRING,
        TokenType.UNICODE_STRING,
    }
)
_PUNCT_TYPES = frozenset(
    {
        TokenType.L_PAREN,
        TokenType.R_PAREN,
        TokenType.L_BRACKET,
        TokenType.R_BRACKET,
        TokenType.COMMA,
        TokenType.DOT,
        TokenType.SEMICOLON,
        TokenType.STAR,
        TokenType.EQ,
        TokenType.COLON,
        TokenType.DCOLON,
        TokenType.PLUS,
        TokenType.DASH,
        TokenType.SLASH,
        TokenType.LT,
        TokenType.GT,
        TokenType.LTE,
        TokenType.GTE,
        TokenType.NEQ,
        TokenType.PARAMETER,
        TokenType.PLACEHOLDER,
    }
)


def _token_kind(token: Token, raw: str) -> TokenKind:
    if token.token_type in _STRING_TYPES:
        return TokenKind.STRING
    if token.token_type is TokenType.IDENTIFIER:
        return TokenKind.IDENT
    if token.token_type is TokenType.NUMBER:
        return TokenKind.NUMBER
    if raw[:1].isalpha() or raw[:1] == "_":
        return TokenKind.WORD
    return TokenKind.PUNCT


def _toks(tokens: Sequence[Token], sql: str, base: int) -> tuple[Tok, ...]:
    """Our tokens, offsets relative to `base`. sqlglot's multi-word keywords (`FOREIGN KEY`, `ORDER BY`) become
    one token per word, so every rule reads words the way PostgreSQL's grammar does."""
    out: list[Tok] = []
    for t in tokens:
        raw = sql[t.start : t.end + 1]
        kind = _token_kind(t, raw)
        if kind is TokenKind.WORD and not raw.isidentifier() and any(c.isspace() for c in raw):
            for m in re.finditer(r"\S+", raw):
                out.append(Tok(TokenKind.WORD, m.group(), t.start + m.start() - base, t.start + m.end() - base))
        else:
            out.append(Tok(kind, raw, t.start - base, t.end + 1 - base))
    return tuple(out)


def _line_of(sql: str, offset: int) -> int:
    return sql.count("\n", 0, max(offset, 0)) + 1


class _Tokenizer(Postgres.Tokenizer):
    """PostgreSQL's tokenizer without "command" words (DO, REINDEX, VACUUM, ...), whose arguments sqlglot would
    otherwise fold into one string token: we want every token, with its exact position."""

    COMMANDS: ClassVar[set[TokenType]] = set()


def _tokenize(sql: str) -> list[Token]:
    tokenizer = _Tokenizer()
    try:
        return list(tokenizer.tokenize(sql))
    except TokenError:
        # The tokenizer's core remembers where the token it could not finish began.
        core = getattr(tokenizer, "_core", None)
        start = getattr(core, "_start", None)
        line = _line_of(sql, start) if isinstance(start, int) else None
        excerpt = sql[start : start + 40].split("\n")[0] if isinstance(start, int) else ""
        where = f"line {line}" if line else "somewhere in the script"
        raise ConfigError(
            f"malformed SQL at {where}: an unterminated string, quoted identifier, dollar-quoted body or comment "
            f"starts here ({excerpt!r}). Nothing was run; fix the script and try again."
        ) from None


def classify(tokens: tuple[Tok, ...]) -> tuple[StatementKind, bool]:
    """Kind and transactional flag from a statement's leading tokens."""
    words = [t.upper for t in tokens]
    if not words:
        return StatementKind.UNKNOWN, True
    verb = words[0]
    if verb == "WITH":
        # WITH ... INSERT/UPDATE/DELETE/SELECT: the verb is the first DML word at parenthesis depth 0.
        depth = 0
        for t in tokens[1:]:
            if t.text == "(":
                depth += 1
            elif t.text == ")":
                depth -= 1
            elif depth == 0 and t.upper in _DML_VERBS:
                return _DML_VERBS[t.upper], True
        return StatementKind.SELECT, True
    if verb in ("CREATE", "ALTER", "DROP"):
        i = 1
        while i < len(words) and words[i] in _CREATE_MODIFIERS:
            i += 1
        obj = words[i] if i < len(words) else ""
        if obj == "EVENT" or obj == "FOREIGN" or obj == "TEXT":
            obj = f"{obj}_{words[i + 1] if i + 1 < len(words) else ''}"
        kind = _OBJECT_KINDS.get((verb, obj))
        if kind is None:
            kind = {
                "CREATE": StatementKind.CREATE_OTHER,
                "ALTER": StatementKind.ALTER_OTHER,
                "DROP": StatementKind.DROP_OTHER,
            }[verb]
        concurrently = "CONCURRENTLY" in words[: i + 3]
        if kind in (StatementKind.CREATE_INDEX, StatementKind.DROP_INDEX) and concurrently:
            return kind, False
        if kind in (StatementKind.CREATE_DATABASE, StatementKind.DROP_DATABASE) or obj == "TABLESPACE":
            return kind, False
        if obj in ("SUBSCRIPTION",) and verb != "ALTER":
            return kind, False
        if verb == "ALTER" and obj == "SYSTEM":
            return kind, False
        if verb == "ALTER" and obj == "TABLE" and "DETACH" in words and "CONCURRENTLY" in words:
            return kind, False
        return kind, True
    kind = _VERB_KINDS.get(verb, StatementKind.UNKNOWN)
    if kind in (StatementKind.BEGIN, StatementKind.COMMIT, StatementKind.ROLLBACK, StatementKind.VACUUM):
        return kind, False
    if kind is StatementKind.REINDEX and "CONCURRENTLY" in words[:3]:
        return kind, False
    if verb == "CLUSTER" and len(words) == 1:
        return kind, False
    return kind, True


def _check_parentheses(sql: str, piece: list[Token], start: int) -> None:
    depth = 0
    for token in piece:
        if token.token_type is TokenType.L_PAREN:
            depth += 1
        elif token.token_type is TokenType.R_PAREN:
            depth -= 1
            if depth < 0:
                raise ConfigError(
                    f"malformed SQL at line {_line_of(sql, token.start)}: a ')' closes nothing (statement starting "
                    f"at line {_line_of(sql, start)}). Nothing was run; fix the script and try again."
                )
    if depth > 0:
        raise ConfigError(
            f"malformed SQL: the statement starting at line {_line_of(sql, start)} leaves {depth} '(' unclosed. "
            "Nothing was run; fix the script and try again."
        )


def _in_begin_atomic(piece: list[Token]) -> bool:
    """True while a `CREATE FUNCTION ... BEGIN ATOMIC` body is open (its inner semicolons do not end it)."""
    texts = [t.text.upper() for t in piece]
    if "CREATE" not in texts[:1]:
        return False
    depth = 0
    for i, text in enumerate(texts):
        if text == "BEGIN" and i + 1 < len(texts) and texts[i + 1] == "ATOMIC":
            depth += 1
        elif depth and text == "CASE":
            depth += 1
        elif depth and text == "END":
            depth -= 1
    return depth > 0


def split_statements(sql: str) -> list[SqlStatement]:
    """The statements of a script, in order, each with its exact text, kind, transactional flag and line.

    Raises ConfigError (with the line) for an unterminated literal/comment, unbalanced parentheses, or a
    statement that does not start with an SQL command word.
    """
    tokens = _tokenize(sql)
    pieces: list[list[Token]] = []
    semicolons: list[int | None] = []
    current: list[Token] = []
    for token in tokens:
        if token.token_type is TokenType.SEMICOLON and not _in_begin_atomic(current):
            if current:
                pieces.append(current)
                semicolons.append(token.end + 1)
            current = []
            continue
        current.append(token)
    if current:
        pieces.append(current)
        semicolons.append(None)

    statements: list[SqlStatement] = []
    cursor = 0  # end of the previous statement's suffix
    for index, (piece, after) in enumerate(zip(pieces, semicolons, strict=True)):
        start, end = piece[0].start, piece[-1].end + 1
        _check_parentheses(sql, piece, start)
        text = sql[start:end]
        first = sql[piece[0].start : piece[0].end + 1]
        if first.upper() not in COMMAND_WORDS and first != "(":
            raise ConfigError(
                f"malformed SQL at line {_line_of(sql, start)}: {first!r} does not start any SQL command "
                f"(statement {text[:60]!r}). Nothing was run; fix the script and try again."
            )
        last = index == len(pieces) - 1
        suffix_end = len(sql) if last or after is None else after
        toks = _toks(piece, sql, start)
        kind, transactional = classify(toks)
        statements.append(
            SqlStatement(
                text=text,
                kind=kind,
                transactional=transactional,
                line=_line_of(sql, start),
                leading=sql[cursor:start],
                suffix=sql[end:suffix_end],
                start=start,
                tokens=toks,
            )
        )
        cursor = suffix_end
    return statements


def tokens_of(text: str) -> tuple[Tok, ...]:
    """Tokens of one statement's text (offsets relative to `text`)."""
    return _toks(_tokenize(text), text, 0)


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
