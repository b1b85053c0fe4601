"""The one place SQL text is quoted. Never paste user input into SQL any other way."""

from __future__ import annotations

import re

_PLAIN_IDENT = re.compile(r"^[a-z_][a-z0-9_$]*$")

# Reserved words that must be quoted even when lower-case (PostgreSQL's fully reserved keywords).
_RESERVED = frozenset(
    """all analyse analyze and any array as asc asymmetric both case cast check collate column constraint create
    current_catalog current_date current_role current_time current_timestamp current_user default deferrable desc
    distinct do else end except false fetch for foreign from grant group having in initially intersect into lateral
    leading limit localtime localtimestamp not null offset on only or order placing primary references returning
    select session_user some symmetric system_user table then to trailing true union unique user using variadic when
    where window with authorization binary collation concurrently cross current_schema freeze full ilike inner is
    isnull join left like natural notnull outer overlaps right similar tablesample verbose""".split()
)


def quote_ident(name: str) -> str:
    """Quote an identifier the way PostgreSQL's quote_ident() does: only when needed."""
    if _PLAIN_IDENT.fullmatch(name) and name not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str | None, name: str) -> str:
    """`schema.name`, each part quoted as needed."""
    return f"{quote_ident(schema)}.{quote_ident(name)}" if schema else quote_ident(name)


def quote_literal(value: str) -> str:
    """A string literal; uses E'' form when the value holds a backslash, like PostgreSQL's quote_literal()."""
    escaped = value.replace("'", "''")
    if "\\" in value:
        return "E'" + escaped.replace("\\", "\\\\") + "'"
    return f"'{escaped}'"
