"""A generic row filler, row sets to compare, and the undo round trip over a real migration chain (issue 10, Proof).

- `fill_rows`: two or three rows in every table, values made from each column's type (enum labels, length limits,
  arrays, JSON, network, time), foreign keys taken from the parent's rows in dependency order, defaults, identities
  and generated columns left to the database. A table it cannot fill (a trigger refuses, a check it cannot guess, a
  type it does not know) is skipped and counted with the reason.
- `read_rows` / `lost_rows`: every row of every table as text, and which rows of the tables and columns that existed
  before are missing afterwards (a multiset comparison: rows added since may stay).
- `walk_chain`: one database walking forward through a chain (apply k, fill, roll back k, judge, rows, histories,
  re-apply k) beside a reference database one migration behind, judged by `pg_dump --schema-only`.
"""

from __future__ import annotations

import difflib
import re
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

import asyncpg
from support_apply import new_database, remove_database, run_sql, target
from test_deploy import SUPABASE_SHAPE, psql_replay

from pgshift.tools import ledger
from pgshift.tools.apply import apply_migration
from pgshift.tools.errors import PgshiftError
from pgshift.tools.judge import dump_schema, normalise_dump
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.migrations.folder import Migration, read_migrations
from pgshift.tools.migrations.parse import split_statements
from pgshift.tools.sql import qualified, quote_ident
from pgshift.tools.undo.rollback import rollback

HISTORY_SCHEMAS = ("pgshift", "supabase_migrations")
HISTORY_TABLES = ("_prisma_migrations",)
DML = ("InsertStmt", "UpdateStmt", "DeleteStmt")
ROWS_PER_TABLE = 3
ATTEMPTS_PER_ROW = 3

# Tables (and partitioned tables) outside the system, the history tables and extensions, with their columns.
COLUMNS = """
SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS table, a.attnum::int AS num, a.attname AS column,
       format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
       a.atthasdef AS has_default, a.attidentity <> '' OR a.attgenerated <> '' AS automatic,
       b.typname::text AS base, b.typcategory::text AS category,
       CASE WHEN b.typcategory = 'A' THEN e.typname::text END AS element,
       CASE WHEN b.typcategory = 'A' THEN e.typcategory::text END AS element_category,
       (SELECT array_agg(l.enumlabel ORDER BY l.enumsortorder) FROM pg_enum l
         WHERE l.enumtypid = CASE WHEN b.typcategory = 'A' THEN e.oid ELSE b.oid END) AS labels,
       CASE WHEN b.typname IN ('varchar', 'bpchar') AND coalesce(nullif(t.typtypmod, -1), a.atttypmod) > 4
            THEN coalesce(nullif(t.typtypmod, -1), a.atttypmod) - 4 END AS max_length
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_type e ON e.oid = b.typelem
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND n.nspname <> ALL($1::text[]) AND c.relname <> ALL($2::text[])
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')
ORDER BY n.nspname, c.relname, a.attnum
"""

FOREIGN_KEYS = """
SELECT conrelid::int AS child, confrelid::int AS parent, conkey::int[] AS columns, confkey::int[] AS parent_columns
FROM pg_constraint WHERE contype = 'f' ORDER BY conname
"""


# Supabase's triggers read the signed-in user (`auth.uid()`): once auth.users has rows, the filler acts as one.
SIGNED_IN_FROM = "auth.users"
SIGN_IN = "SELECT set_config('request.jwt.claim.sub', (SELECT min(id::text) FROM auth.users), false)"

# ---------------------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Column:
    num: int
    name: str
    type: str
    not_null: bool
    has_default: bool
    automatic: bool
    base: str
    category: str
    element: str | None
    element_category: str | None
    labels: tuple[str, ...]
    max_length: int | None


@dataclass(frozen=True)
class ForeignKey:
    parent: int
    columns: tuple[int, ...]
    parent_columns: tuple[int, ...]


@dataclass(frozen=True)
class Table:
    oid: int
    schema: str
    name: str
    columns: tuple[Column, ...]
    foreign_keys: tuple[ForeignKey, ...]

    @property
    def key(self) -> str:
        return qualified(self.schema, self.name)

    def column(self, num: int) -> Column:
        return next(c for c in self.columns if c.num == num)


@dataclass(frozen=True)
class Filled:
    """What `fill_rows` did: rows written per table, and each table it skipped with the reason."""

    rows: Mapping[str, int]
    skipped: Mapping[str, str]


async def read_tables(conn: asyncpg.Connection) -> list[Table]:
    rows = await conn.fetch(COLUMNS, list(HISTORY_SCHEMAS), list(HISTORY_TABLES))
    keys: dict[int, list[ForeignKey]] = {}
    for r in await conn.fetch(FOREIGN_KEYS):
        keys.setdefault(r["child"], []).append(ForeignKey(r["parent"], tuple(r["columns"]), tuple(r["parent_columns"])))
    by_oid: dict[int, list[asyncpg.Record]] = {}
    for r in rows:
        by_oid.setdefault(r["oid"], []).append(r)
    return [
        Table(
            oid=oid,
            schema=cols[0]["schema"],
            name=cols[0]["table"],
            columns=tuple(_column(c) for c in cols),
            foreign_keys=tuple(keys.get(oid, ())),
        )
        for oid, cols in by_oid.items()
    ]


def _column(r: asyncpg.Record) -> Column:
    return Column(
        num=r["num"],
        name=r["column"],
        type=r["type"],
        not_null=r["not_null"],
        has_default=r["has_default"],
        automatic=r["automatic"],
        base=r["base"],
        category=r["category"],
        element=r["element"],
        element_category=r["element_category"],
        labels=tuple(r["labels"] or ()),
        max_length=r["max_length"],
    )


def dependency_order(tables: list[Table]) -> list[Table]:
    """Parents before children (self references and cycles broken where they close), stable by name."""
    by_oid = {t.oid: t for t in tables}
    done: list[Table] = []
    seen: set[int] = set()

    def visit(t: Table, path: frozenset[int]) -> None:
        if t.oid in seen:
            return
        for fk in t.foreign_keys:
            parent = by_oid.get(fk.parent)
            if parent is not None and parent.oid not in path and parent.oid != t.oid:
                visit(parent, path | {t.oid})
        seen.add(t.oid)
        done.append(t)

    for t in sorted(tables, key=lambda t: t.key):
        visit(t, frozenset())
    return done


# ---------------------------------------------------------------------------------------------- values (pure)


def scalar(category: str, base: str, labels: tuple[str, ...], max_length: int | None, n: int) -> str | None:
    """A text value of this type for row number `n` (distinct per n where the type allows), None if unknown."""
    if labels:
        return labels[n % len(labels)]
    if category == "B":
        return "true" if n % 2 else "false"
    if category == "N":
        return f"{n}.5" if base in ("numeric", "float4", "float8", "money") else str(n)
    if category == "S":
        text = f"v{n}"
        return text[-max_length:] if max_length else text
    if category == "D":
        day = date(2024, 1, 1) + timedelta(days=n)
        return {"date": day.isoformat(), "time": "12:00:00", "timetz": "12:00:00+00"}.get(base, f"{day} 12:00:00+00")
    if category == "T":
        return f"{n} minutes"
    if category == "I":
        return f"10.0.{n // 256 % 256}.{n % 256}/32"
    if category == "R":
        return "empty"
    if category == "V":
        return "1"
    return {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_OID, str(n))),
        "json": f'{{"n": {n}}}',
        "jsonb": f'{{"n": {n}}}',
        "bytea": f"\\x{n:04x}",
        "tsvector": f"w{n}",
        "xml": f"<v>{n}</v>",
        "point": f"({n},{n})",
        "macaddr": f"08:00:2b:01:{n // 256 % 256:02x}:{n % 256:02x}",
    }.get(base)


def value(c: Column, n: int) -> str | None:
    if c.category == "A":
        inner = scalar(c.element_category or "", c.element or "", c.labels, None, n)
        return None if inner is None else '{"' + inner.replace("\\", "\\\\").replace('"', '\\"') + '"}'
    return scalar(c.category, c.base, c.labels, c.max_length, n)


def insert_sql(t: Table, columns: list[Column]) -> str:
    if not columns:
        return f"INSERT INTO {t.key} DEFAULT VALUES"
    names = ", ".join(quote_ident(c.name) for c in columns)
    params = ", ".join(f"${i}::text::{c.type}" for i, c in enumerate(columns, 1))
    return f"INSERT INTO {t.key} ({names}) VALUES ({params})"


# ---------------------------------------------------------------------------------------------- filling (I/O)


async def _parent_rows(
    conn: asyncpg.Connection, by_oid: Mapping[int, Table], child: Table, fk: ForeignKey
) -> list[tuple[str, ...]]:
    """The parent's key values, those no child row references yet first (a one-to-one key stays unique)."""
    parent = by_oid.get(fk.parent)
    if parent is None:
        return []
    mine = ", ".join(f"p.{quote_ident(parent.column(n).name)}" for n in fk.parent_columns)
    theirs = ", ".join(f"c.{quote_ident(child.column(n).name)}" for n in fk.columns)
    as_text = ", ".join(f"p.{quote_ident(parent.column(n).name)}::text" for n in fk.parent_columns)
    query = f"""SELECT {as_text} FROM {parent.key} p
        ORDER BY EXISTS (SELECT FROM {child.key} c WHERE ROW({theirs}) = ROW({mine})), 1 LIMIT 50"""
    return [tuple(r) for r in await conn.fetch(query)]


async def _fill_table(conn: asyncpg.Connection, t: Table, by_oid: Mapping[int, Table], seed: int) -> tuple[int, str]:
    """Rows written into `t` and, when none could be, why."""
    fixed: dict[int, list[tuple[str, ...]]] = {}
    for fk in t.foreign_keys:
        if all(n in fixed for n in fk.columns):
            continue
        parents = await _parent_rows(conn, by_oid, t, fk) if fk.parent != t.oid else []
        if not parents and any(t.column(n).not_null for n in fk.columns):
            return 0, f"parent {by_oid[fk.parent].key if fk.parent in by_oid else fk.parent} has no rows"
        for i, n in enumerate(fk.columns):
            if n not in fixed:
                fixed[n] = [p[i : i + 1] for p in parents]
    written, reason = 0, ""
    for row in range(ROWS_PER_TABLE):
        for attempt in range(ATTEMPTS_PER_ROW):
            n = seed * 100 + row * 7 + attempt * 31
            made = _row(t, fixed, n, row + attempt)
            if isinstance(made, str):
                return written, made
            try:
                async with conn.transaction():
                    await conn.execute(insert_sql(t, [c for c, _ in made]), *(v for _, v in made))
                written += 1
                break
            except asyncpg.PostgresError as exc:
                reason = f"{type(exc).__name__} ({exc.sqlstate})"
    return written, reason


def _row(t: Table, fixed: Mapping[int, list[tuple[str, ...]]], n: int, pick: int) -> list[tuple[Column, str]] | str:
    """The columns to set and their values for row `n` (foreign keys from the `pick`-th parent row), or why the
    table cannot be filled."""
    row: list[tuple[Column, str]] = []
    for c in t.columns:
        if c.automatic:
            continue
        if c.num in fixed:
            choices = fixed[c.num]
            if choices:
                row.append((c, choices[pick % len(choices)][0]))
            continue
        if c.has_default:
            continue
        v = value(c, n)
        if v is not None:
            row.append((c, v))
        elif c.not_null:
            return f"NOT NULL column {c.name} of type {c.type} the filler does not know"
    return row


async def fill_rows(url: str, seed: int) -> Filled:
    """Two or three rows in every table of the database at `url` (see the module docstring); `seed` keeps the values
    of successive calls apart."""
    conn = await asyncpg.connect(url)
    try:
        tables = await read_tables(conn)
        by_oid = {t.oid: t for t in tables}
        rows: dict[str, int] = {}
        skipped: dict[str, str] = {}
        for t in dependency_order(tables):
            written, reason = await _fill_table(conn, t, by_oid, seed)
            if t.key == SIGNED_IN_FROM and written:
                await conn.execute(SIGN_IN)
            rows[t.key] = written
            if not written:
                skipped[t.key] = reason
        return Filled(rows, skipped)
    finally:
        await conn.close()


# ---------------------------------------------------------------------------------------------- rows before / after


RowSets = Mapping[str, tuple[tuple[str, ...], Counter[tuple[str | None, ...]]]]


async def read_rows(url: str) -> RowSets:
    """Every row of every table (history tables aside), values as text, by table: (column names, row multiset)."""
    conn = await asyncpg.connect(url)
    try:
        found: dict[str, tuple[tuple[str, ...], Counter[tuple[str | None, ...]]]] = {}
        for t in await read_tables(conn):
            names = tuple(c.name for c in t.columns)
            cols = ", ".join(f"{quote_ident(c)}::text" for c in names)
            fetched = await conn.fetch(f"SELECT {cols} FROM {t.key}")
            found[t.key] = (names, Counter(tuple(r) for r in fetched))
        return found
    finally:
        await conn.close()


def updated_tables(m: Migration) -> set[str]:
    """Tables the migration's own INSERT / UPDATE / DELETE statements write (as written, quoted): a schema rollback
    does not undo a data migration, so their rows may stay changed."""
    found = set()
    for statement in split_statements(m.sql):
        relation = getattr(statement.node, "relation", None) if statement.node_type in DML else None
        if relation is not None and relation.relname:
            found.add(qualified(relation.schemaname or "public", str(relation.relname)))
    return found


def lost_rows(before: RowSets, after: RowSets, updated: AbstractSet[str] = frozenset()) -> list[str]:
    """What of `before` is missing from `after`: tables, columns, and rows (projected on `before`'s columns). Rows of
    `updated` tables may differ (the migration changed them), but none may go missing."""
    problems = []
    for key, (names, rows) in sorted(before.items()):
        if key in updated and key in after and sum(after[key][1].values()) >= sum(rows.values()):
            continue
        if key not in after:
            problems.append(f"table {key} is gone")
            continue
        now_names, now_rows = after[key]
        missing = [c for c in names if c not in now_names]
        if missing:
            problems.append(f"{key}: columns {', '.join(missing)} are gone")
            continue
        index = [now_names.index(c) for c in names]
        projected = Counter({tuple(r[i] for i in index): k for r, k in now_rows.items()})
        lost = rows - projected
        if lost:
            example = next(iter(lost))
            problems.append(f"{key}: {sum(lost.values())} row(s) lost or changed, e.g. {example}")
    return problems


# ---------------------------------------------------------------------------------------------- the judge, histories


_ENTRY = re.compile(r"^(?=--\n-- (?:Data for )?Name: )", re.MULTILINE)
_HEADER = re.compile(r"^--\n-- (?:Data for )?Name: (?P<name>[^;]*); Type: (?P<type>[^;]*); Schema: (?P<schema>[^;]*);")


def _history_entry(entry: str) -> bool:
    m = _HEADER.match(entry)
    if m is None:
        return False
    name, kind, schema = m["name"], m["type"], m["schema"]
    return (
        schema in HISTORY_SCHEMAS
        or (kind == "SCHEMA" and name in HISTORY_SCHEMAS)
        or any(t in name.split() for t in HISTORY_TABLES)
    )


def without_histories(dump: str) -> str:
    """A `pg_dump` text without the entries of the history tables and our ledger schema (checked apart: they hold
    the rollback's own records and kept copies)."""
    return "".join(e for e in _ENTRY.split(dump) if not _history_entry(e))


async def judge_apart_from_histories(url_a: str, url_b: str, bin_dir: Path) -> str:
    """'' when the two schemas are equal by the normalised dump (histories aside), else the first differing lines."""
    a = normalise_dump(without_histories(await dump_schema(url_a, bin_dir)))
    b = normalise_dump(without_histories(await dump_schema(url_b, bin_dir)))
    if a == b:
        return ""
    diff = [
        ln.rstrip()
        for ln in difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm="", n=0)
        if ln[:1] in "+-" and not ln.startswith(("+++", "---"))
    ]
    return " | ".join(diff[:3])


async def history(url: str) -> ledger.History:
    conn = await asyncpg.connect(url)
    try:
        return await ledger.read_history(conn)
    finally:
        await conn.close()


def ledger_applied(h: ledger.History) -> set[str]:
    """Versions whose last outcome in our ledger is `applied`."""
    last = {r.version: r.outcome for r in h.ledger}
    return {v for v, outcome in last.items() if outcome == "applied"}


def history_disagreements(after: ledger.History, before: ledger.History, migration: Migration) -> list[str]:
    """After rolling `migration` back, every history must say what it said before it was applied, and our ledger
    must record the rollback."""
    found = []
    if after.is_applied(migration) or after.is_failed(migration):
        found.append("still applied or failed in its ecosystem's history")
    if after.supabase_versions() != before.supabase_versions():
        found.append("supabase_migrations versions differ from before the apply")
    if after.applied_prisma_names() != before.applied_prisma_names():
        found.append("_prisma_migrations applied rows differ from before the apply")
    last = [r.outcome for r in after.ledger if r.version == migration.version][-1:]
    if last != ["rolled_back"]:
        found.append(f"ledger's last outcome for {migration.version} is {last}, not rolled_back")
    if ledger_applied(after) != ledger_applied(before):
        found.append("ledger's applied versions differ from before the apply")
    return found


# ---------------------------------------------------------------------------------------------- the walk


@dataclass(frozen=True)
class Trip:
    version: str
    seconds: float
    failure: str = ""  # one line; empty when the round trip held
    note: str = ""  # e.g. the tables had to be emptied for the chain's own migration to apply
    skipped_tables: int = 0


@dataclass(frozen=True)
class ChainReport:
    chain: str
    migrations: int
    trips: tuple[Trip, ...] = ()
    stopped: str = ""  # why the walk ended before the last migration
    seconds: float = 0.0
    filled_rows: int = 0
    skipped_tables: Mapping[str, str] = field(default_factory=dict)  # table -> why the filler left it empty
    final_difference: str = ""  # the walked database against the replay where the walk ended ('' when equal)

    @property
    def failures(self) -> list[Trip]:
        return [t for t in self.trips if t.failure]


@dataclass
class _Walk:
    walked: str
    reference: str
    server: LocalPostgres
    shadow: LocalPostgres
    trips: list[Trip] = field(default_factory=list)
    filled: int = 0
    skipped: dict[str, str] = field(default_factory=dict)


async def _apply(url: str, m: Migration) -> str:
    """'' when `m` applied to the database at `url` with pgshift, else the reason in one line."""
    db = target(url)
    try:
        result = await apply_migration(db, "target", m.name, migration=m.path)
    except PgshiftError as exc:
        return _line(str(exc))
    finally:
        await db.close()
    return "" if result.status == "applied" else _line(f"{result.status}: {result.message}")


def _line(text: str, limit: int = 200) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


async def _empty_tables(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        names = ", ".join(t.key for t in await read_tables(conn))
        if names:
            await conn.execute(f"TRUNCATE {names} CASCADE")
    finally:
        await conn.close()


async def _round_trip(w: _Walk, k: int, m: Migration) -> Trip:
    t0 = time.perf_counter()
    note = ""
    before, before_history = await read_rows(w.walked), await history(w.walked)
    failed = await _apply(w.walked, m)
    if failed:
        # The chain's own migration may not apply over rows (a NOT NULL column without default): empty, retry.
        await _empty_tables(w.walked)
        before = await read_rows(w.walked)
        if await _apply(w.walked, m):
            raise _Stop(f"{m.version} does not apply: {failed}")
        note = _line(f"applies only to empty tables: {failed}", 120)
    if updated_tables(m):
        note = _line(f"{note} writes rows itself: a schema rollback leaves what it wrote".strip(), 120)
    filled = await fill_rows(w.walked, seed=k)
    w.filled += sum(filled.rows.values())
    w.skipped.update(filled.skipped)
    problems = await _undo_and_check(w, m, before, before_history)
    trip = Trip(m.version, 0.0, "; ".join(problems), note, len(filled.skipped))
    if not (await history(w.walked)).is_applied(m):
        again = await _apply(w.walked, m)
        if again:
            w.trips.append(replace(trip, seconds=time.perf_counter() - t0, failure=f"re-apply failed: {again}"))
            raise _Stop(f"re-applying {m.version} failed")
    try:
        await psql_replay(w.server.bin_dir, w.reference, [m.path or ""])
    except AssertionError as exc:
        raise _Stop(f"the psql reference could not apply {m.version}: {_line(str(exc), 120)}") from None
    return replace(trip, seconds=time.perf_counter() - t0)


async def _undo_and_check(w: _Walk, m: Migration, before: RowSets, before_history: ledger.History) -> list[str]:
    db = target(w.walked)
    try:
        result = await rollback(db, "target", migration=m.version, shadow=w.shadow, accept_data_loss=True)
    except PgshiftError as exc:
        return [_line(f"rollback failed: {exc}")]
    finally:
        await db.close()
    if result.status != "rolled_back":
        blockers = result.plan.data.blockers
        return [_line(f"rollback {result.status}: {blockers[0] if blockers else result.message}")]
    problems = []
    differs = await judge_apart_from_histories(w.walked, w.reference, w.shadow.bin_dir)
    if differs:
        problems.append(_line(f"schema differs from k-1: {differs}"))
    lost = lost_rows(before, await read_rows(w.walked), updated=updated_tables(m))
    problems += [_line(p) for p in lost][:2]
    problems += history_disagreements(await history(w.walked), before_history, m)
    return problems


class _Stop(Exception):
    """The walk cannot go on (the chain's migration does not apply, even to empty tables)."""


async def walk_chain(
    chain: str, directory: Path, server: LocalPostgres, shadow: LocalPostgres, *, supabase: bool, limit: int = 0
) -> ChainReport:
    """Round trips over every migration of the chain at `directory` on `server` (the first `limit` when given),
    snapshots loaded on `shadow`; the reference is a raw psql replay of the same files, one migration behind."""
    t0 = time.perf_counter()
    migrations = read_migrations(directory).migrations
    if limit:
        migrations = migrations[:limit]
    walked, reference = await new_database(server, "walk"), await new_database(server, "ref")
    w = _Walk(walked, reference, server, shadow)
    stopped = final = ""
    try:
        if supabase:
            for url in (walked, reference):
                await run_sql(url, SUPABASE_SHAPE.read_text())
        for k, m in enumerate(migrations, 1):
            try:
                w.trips.append(await _round_trip(w, k, m))
            except _Stop as stop:
                stopped = _line(f"stops at migration {k} of {len(migrations)}: {stop}")
                break
        # After the last re-apply both are at the end of the chain: the walk left nothing behind.
        final = await judge_apart_from_histories(walked, reference, shadow.bin_dir)
    finally:
        await remove_database(server, walked)
        await remove_database(server, reference)
    return ChainReport(
        chain, len(migrations), tuple(w.trips), stopped, time.perf_counter() - t0, w.filled, dict(w.skipped), final
    )
