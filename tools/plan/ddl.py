"""SQL text for the pieces every generator shares: column definitions, sequence options, comments.

All quoting goes through `tools.sql`. Definitions read from the catalog (`pg_get_*def`, defaults,
expressions) are PostgreSQL's own text and are used as they are.
"""

from __future__ import annotations

from pgshift.tools.model import Column, SequenceOptions
from pgshift.tools.sql import quote_ident, quote_literal


def sequence_options(opts: SequenceOptions, *, with_type: bool = True) -> str:
    type_part = f"AS {opts.data_type} " if with_type else ""
    cycle = "CYCLE" if opts.cycle else "NO CYCLE"
    return (
        f"{type_part}START WITH {opts.start} INCREMENT BY {opts.increment} MINVALUE {opts.min_value} "
        f"MAXVALUE {opts.max_value} CACHE {opts.cache} {cycle}"
    )


def identity_clause(column: Column) -> str:
    assert column.identity is not None
    ident = column.identity
    # The identity sequence's type follows the column's: `AS type` is refused here.
    return f"GENERATED {ident.generation} AS IDENTITY ({sequence_options(ident.options, with_type=False)})"


def generated_clause(column: Column) -> str:
    kind = f" {column.generated_kind}" if column.generated_kind else " STORED"
    return f"GENERATED ALWAYS AS ({column.generated}){kind}"


def column_definition(column: Column) -> str:
    """`name type [COLLATE c] [GENERATED ...] [NOT NULL] [DEFAULT x]` as in CREATE TABLE / ADD COLUMN."""
    collate = f" COLLATE {column.collation}" if column.collation else ""
    generated = f" {generated_clause(column)}" if column.generated else ""
    identity = f" {identity_clause(column)}" if column.identity else ""
    not_null = " NOT NULL" if column.not_null else ""
    if column.not_null and column.not_null_name:
        not_null = f" CONSTRAINT {quote_ident(column.not_null_name)} NOT NULL"
    default = f" DEFAULT {column.default}" if column.default is not None and not column.generated else ""
    return f"{quote_ident(column.name)} {column.type}{collate}{generated}{identity}{not_null}{default}"


def not_null_name(table_name: str, column: Column) -> str:
    """The NOT NULL constraint's name on PostgreSQL 18 (the default unless the model says otherwise)."""
    return column.not_null_name or f"{table_name}_{column.name}_not_null"


def comment_on(target: str, comment: str | None) -> str:
    """`COMMENT ON <target> IS '...'` (or IS NULL); `target` is e.g. `TABLE public.t`."""
    value = quote_literal(comment) if comment is not None else "NULL"
    return f"COMMENT ON {target} IS {value}"


def strip_semicolon(definition: str) -> str:
    return definition.strip().rstrip(";").rstrip()
