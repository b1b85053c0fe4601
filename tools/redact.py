"""Keep secrets out of everything we print, log or return.

URLs are split the way a person meant them, not the way `urlsplit` reads a malformed one: the user
information runs up to the *last* `@`, so a password holding an unencoded `#`, `/`, `?` or `@` is still
masked whole (never shown in part as a "port", a path or a fragment).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from pglast import keywords, parse_sql
from pglast.parser import ParseError, scan

MASK = "****"
_URL_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)(\S*)(@)")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)


def split_userinfo(url: str) -> tuple[str, str | None, str]:
    """(`scheme://`, user information or None, the rest): the user information ends at the last `@`."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return (scheme + sep, None, rest) if sep else ("", None, url)
    userinfo, _, hostpart = rest.rpartition("@")
    return scheme + sep, userinfo, hostpart


def redact_url(url: str) -> str:
    """The URL with its password (in the user information or the query string) masked."""
    prefix, userinfo, rest = split_userinfo(url)
    rest = _QUERY_PASSWORD.sub(rf"\1{MASK}", rest)
    if userinfo is None:
        return prefix + rest
    if ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":" + MASK
    return f"{prefix}{userinfo}@{rest}"


def url_password(url: str, *, decode: bool = True) -> str | None:
    """The password of a URL, wherever it is: user information or `password=` in the query.

    Decoded by default (what the server receives); `decode=False` gives it as written in the URL."""
    _, userinfo, rest = split_userinfo(url)
    found: str | None = None
    if userinfo is not None and ":" in userinfo:
        found = userinfo.split(":", 1)[1] or None
    if found is None:
        m = re.search(r"[?&]password=([^&]*)", rest, flags=re.IGNORECASE)
        found = m.group(1) if m else None
    return unquote(found) if found is not None and decode else found


def url_secrets(url: str) -> list[str]:
    """Every form of the URL's password worth scrubbing from text: as written and decoded."""
    return sorted({p for p in (url_password(url), url_password(url, decode=False)) if p})


def scrub(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Remove passwords from free text: any URL password, `password=...` pairs, and each known secret."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) >= 3:
            text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(rf"\1{MASK}\3", text)
    return _KV_PASSWORD.sub(rf"\1{MASK}", text)


# ---------------------------------------------------------------------------------------------------------------
# Other sessions' statements (pg_stat_activity.query): the rule is "every string constant", not "secret positions".
#
# A secret can sit in any literal (`PASSWORD '…'`, `ENCRYPTED PASSWORD $$…$$`, pgcrypto keys, `password=` inside a
# dblink / subscription / user-mapping connection string, or personal data in a WHERE clause), and recognising
# every secret position of every function and option is a list that is never complete. So a statement that
# PostgreSQL's grammar accepts is rebuilt from its scanner tokens with every string constant (quoted, E'',
# U&'', B'', X'' and dollar-quoted) replaced by MASKED_LITERAL and every comment left out; identifiers, keywords,
# numbers and operators stay, so the statement's shape is still readable. Text the grammar rejects (pg_stat_activity
# cuts it at track_activity_query_size, so a literal may be cut open) is never shown: only its leading keywords.

MASKED_LITERAL = f"'{MASK}'"
WITHHELD = "… [statement text withheld: it does not parse, it may be cut short]"
_STRING_TOKENS = frozenset({"SCONST", "USCONST", "BCONST", "XCONST"})
_COMMENT_TOKENS = frozenset({"SQL_COMMENT", "C_COMMENT"})
_LEADING_NOISE = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
_WORD = re.compile(r"[A-Za-z_]+")
_KIND_WORDS = 3
# Fixed text PostgreSQL itself puts in pg_stat_activity.query: not a statement, nothing to hide.
_SERVER_PLACEHOLDERS = frozenset({"<insufficient privilege>", "<command string not enabled>"})


def redact_statement(text: str | None) -> str | None:
    """Another session's statement text, safe to show: string constants masked, comments gone; or, when the text
    does not parse, only its kind (leading keywords) and a note that the text is withheld."""
    if text is None or not text.strip() or text.strip() in _SERVER_PLACEHOLDERS:
        return text
    try:
        parse_sql(text)
        tokens = scan(text)
    except ParseError:
        return f"{statement_kind(text)} {WITHHELD}"
    out: list[str] = []
    previous_end = 0
    for token in tokens:
        if token.name in _COMMENT_TOKENS:
            continue
        if out and token.start > previous_end:
            out.append(" ")
        out.append(MASKED_LITERAL if token.name in _STRING_TOKENS else text[token.start : token.end + 1])
        previous_end = token.end + 1
    return "".join(out)


def statement_kind(text: str) -> str:
    """The first few SQL keywords of `text` ("ALTER ROLE", "SELECT"), read without parsing: only words that are
    PostgreSQL keywords are kept, so no name, literal or secret of the statement can come through."""
    known = keywords.RESERVED_KEYWORDS | keywords.UNRESERVED_KEYWORDS | keywords.COL_NAME_KEYWORDS
    known |= keywords.TYPE_FUNC_NAME_KEYWORDS
    noise = _LEADING_NOISE.match(text)
    rest = text[noise.end() :] if noise else text
    words: list[str] = []
    for m in _WORD.finditer(rest):
        gap = rest[m.start() - 1] if m.start() else " "
        if (m.start() and not gap.isspace()) or m.group().lower() not in known or len(words) == _KIND_WORDS:
            break
        words.append(m.group().upper())
    return " ".join(words) if words else "(unknown statement)"
