"""Whether an expression calls a volatile function (then a new column's default is computed per row)."""

from __future__ import annotations

from pgshift.tools.model import Schema

# Built-in functions whose value changes per call (pg_proc.provolatile = 'v') that defaults commonly use.
BUILTIN_VOLATILE = frozenset(
    {
        "nextval",
        "random",
        "gen_random_uuid",
        "uuid_generate_v1",
        "uuid_generate_v1mc",
        "uuid_generate_v4",
        "uuidv4",
        "uuidv7",
        "clock_timestamp",
        "timeofday",
        "txid_current",
        "setseed",
        "gen_random_bytes",
    }
)


def _called_functions(expression: str) -> set[str] | None:
    import sqlglot  # on first use: sqlglot takes 40-60 ms to import, and most commands never call this
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(expression, read="postgres")
    except sqlglot.errors.SqlglotError:
        return None
    names = set()
    for func in tree.find_all(exp.Func):
        if isinstance(func, exp.Anonymous):
            names.add(str(func.this).lower())
        else:
            names.add(func.sql_name().lower())
            names.update(n.lower() for n in getattr(func, "_sql_names", []))
    return names


def is_volatile(expression: str, schema: Schema) -> bool:
    """True when the expression calls a volatile function (unknown expressions count as volatile)."""
    names = _called_functions(expression)
    if names is None:
        return True
    user_volatile = {f.name.lower() for f in schema.functions if f.volatility == "VOLATILE"}
    return bool(names & (BUILTIN_VOLATILE | user_volatile))


def is_constant(expression: str, schema: Schema) -> bool:
    """True when the expression is a constant: literals, casts, arrays and arithmetic over them, or calls of the
    schema's IMMUTABLE functions only (then it has one value whenever it is computed). Anything else, including
    stable calls such as now() or current_user and unparsable text, is not."""
    import sqlglot  # on first use, as above
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(expression, read="postgres")
    except sqlglot.errors.SqlglotError:
        return False
    immutable = {f.name.lower() for f in schema.functions if f.volatility == "IMMUTABLE"}
    for node in tree.walk():
        if isinstance(node, (exp.Column, exp.Query, exp.Subquery, exp.Placeholder, exp.Parameter)):
            return False
        if isinstance(node, exp.Anonymous):
            if str(node.this).lower() not in immutable:
                return False
        elif isinstance(node, exp.Func) and not isinstance(node, (exp.Cast, exp.TryCast, exp.Array)):
            return False
    return True
