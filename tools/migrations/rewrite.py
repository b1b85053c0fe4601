"""Rewrite a migration for its target: idempotent guards, Prisma's comment lines dropped, Supabase extension schema.

Every rewrite is chosen from the statement's parsed tokens and returned with its reason. A statement that needs
no change keeps the author's exact text. Each rewrite is equivalent to the original wherever the original
succeeds (the guard's condition is then true, or the `IF [NOT] EXISTS` clause changes nothing), and makes a
second run a no-op instead of an error:

- `IF NOT EXISTS` on CREATE TABLE / INDEX / SEQUENCE / SCHEMA / EXTENSION / MATERIALIZED VIEW and ADD COLUMN;
- `IF EXISTS` on DROP ... and on ALTER TABLE's DROP COLUMN / DROP CONSTRAINT;
- `CREATE TYPE` / `CREATE DOMAIN` inside a DO block that ignores `duplicate_object`;
- `ADD VALUE IF NOT EXISTS` on enums;
- ADD CONSTRAINT, CREATE TRIGGER, CREATE POLICY and renames inside a DO block that checks the catalog first;
- `OR REPLACE` on CREATE FUNCTION / PROCEDURE / VIEW;
- on a Supabase target, `CREATE EXTENSION` without a schema goes to schema `extensions` (the one rewrite that is
  meant to change the result: a target adaptation, kept with `guards=False`).

No rewrite changes what a statement does to data: an INSERT, UPDATE or DELETE runs as written (a migration meant
to fail on a duplicate row still fails). A multi-action ALTER TABLE is guarded only when the guard covers every
action (each action's own `IF [NOT] EXISTS`, or a catalog guard over a statement that only adds named
constraints); otherwise it is left as written. `tools.migrations.check` proves each rewritten script on the target
before it runs (both dry-run, same resulting schema) and runs the unguarded script when it cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from pgshift.tools.migrations.parse import (
    NameRef,
    SqlStatement,
    StatementKind,
    Tok,
    TokenKind,
    has_if,
    is_word,
    name_at,
    skip_words,
    top_level_actions,
)
from pgshift.tools.sql import quote_literal

SUPABASE_EXTENSION_SCHEMA = "extensions"

# The step comments `prisma migrate dev` writes above each statement.
PRISMA_STEP_COMMENTS = frozenset(
    """CreateEnum AlterEnum DropEnum CreateTable AlterTable DropTable CreateIndex DropIndex RenameIndex AddForeignKey
    DropForeignKey RenameForeignKey CreateExtension DropExtension CreateSchema DropSchema AddPrimaryKey
    DropPrimaryKey RenamePrimaryKey CreateSequence AlterSequence DropSequence CreateView DropView""".split()
)
_PRISMA_WARNING_OPENING = "/*\n  Warnings:"


class RewriteKind(StrEnum):
    IF_NOT_EXISTS = "if_not_exists"
    IF_EXISTS = "if_exists"
    DUPLICATE_OBJECT_GUARD = "duplicate_object_guard"
    CATALOG_GUARD = "catalog_guard"
    OR_REPLACE = "or_replace"
    EXTENSION_SCHEMA = "extension_schema"
    PRISMA_COMMENT_DROPPED = "prisma_comment_dropped"


class Rewrite(BaseModel):
    model_config = ConfigDict(frozen=True)

    line: int = Field(description="Line of the original script where the statement starts")
    kind: RewriteKind
    reason: str


class RewrittenStatement(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int = Field(description="1-based position in the script")
    line: int
    kind: StatementKind
    transactional: bool
    original: str = Field(description="The author's text")
    sql: str = Field(description="The text to run: the author's text unless a rewrite applies")
    rewrites: tuple[Rewrite, ...] = ()
    rerun_note: str | None = Field(None, description="Why a second run of this statement may still fail, if it can")

    @property
    def changed(self) -> bool:
        return self.sql != self.original


class RewriteResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    statements: tuple[RewrittenStatement, ...]
    rewrites: tuple[Rewrite, ...] = Field(description="Every rewrite, in script order, with its reason")
    script: str = Field(description="The rewritten script")


# ---------------------------------------------------------------------------------------------------------------
# DO-block guards


def _dollar_tag(body: str) -> str:
    tag, n = "$pgshift$", 0
    while tag in body:
        n += 1
        tag = f"$pgshift{n}$"
    return tag


def _guarded(body: str, condition: str) -> str:
    tag = _dollar_tag(body)
    return f"DO {tag}\nBEGIN\n  IF {condition} THEN\n    {body};\n  END IF;\nEND\n{tag}"


def _ignoring_duplicate(body: str) -> str:
    tag = _dollar_tag(body)
    return f"DO {tag}\nBEGIN\n  {body};\nEXCEPTION WHEN duplicate_object THEN NULL;\nEND\n{tag}"


def _sibling(name: NameRef, new: str) -> str:
    """The raw text naming `new` in the same schema as `name`."""
    return f"{name.schema_raw}.{new}" if name.schema_raw else new


# ---------------------------------------------------------------------------------------------------------------
# Per-kind rewriters: each returns the new text (or None) and the rewrites it made.


@dataclass
class _Edit:
    text: str
    rewrites: list[tuple[RewriteKind, str]]
    inserts: list[tuple[int, str]]
    wrap: tuple[RewriteKind, str, str] | None = None  # kind, reason, condition ('' = duplicate_object guard)
    rerun_note: str | None = None

    def insert(self, offset: int, fragment: str, kind: RewriteKind, reason: str) -> None:
        self.inserts.append((offset, fragment))
        self.rewrites.append((kind, reason))

    def result(self) -> str:
        text = self.text
        for offset, fragment in sorted(self.inserts, reverse=True):
            text = text[:offset] + fragment + text[offset:]
        if self.wrap is not None:
            kind, reason, condition = self.wrap
            text = _ignoring_duplicate(text) if not condition else _guarded(text, condition)
            self.rewrites.append((kind, reason))
        return text


def _create_object(s: SqlStatement, edit: _Edit, supabase: bool) -> None:
    toks, text = s.tokens, s.text
    i = 1
    or_replace = is_word(toks[i], "OR") if i < len(toks) else False
    if or_replace:
        i += 2
    unique = i < len(toks) and is_word(toks[i], "UNIQUE")
    i += 1 if unique else 0
    while i < len(toks) and is_word(toks[i], "TEMP", "TEMPORARY", "UNLOGGED", "GLOBAL", "LOCAL", "RECURSIVE"):
        i += 1
    materialized = i < len(toks) and is_word(toks[i], "MATERIALIZED")
    i += 1 if materialized else 0
    if i >= len(toks):
        return
    obj = toks[i].upper
    after_obj = i + 1
    if obj == "INDEX":
        after_obj = skip_words(toks, after_obj, "CONCURRENTLY")
        if has_if(toks, after_obj):
            return
        if after_obj < len(toks) and is_word(toks[after_obj], "ON"):
            edit.rerun_note = "an index without a name cannot be guarded: a second run creates a duplicate index"
            return
        edit.insert(
            toks[after_obj - 1].end,
            " IF NOT EXISTS",
            RewriteKind.IF_NOT_EXISTS,
            "CREATE INDEX IF NOT EXISTS: a second run skips the index instead of failing",
        )
        return
    if obj in ("TABLE", "SEQUENCE", "SCHEMA", "EXTENSION") or (obj == "VIEW" and materialized):
        if not has_if(toks, after_obj):
            what = "MATERIALIZED VIEW" if materialized else obj
            edit.insert(
                toks[i].end,
                " IF NOT EXISTS",
                RewriteKind.IF_NOT_EXISTS,
                f"CREATE {what} IF NOT EXISTS: a second run skips it instead of failing",
            )
        if obj == "EXTENSION" and supabase:
            _extension_schema(s, edit, i + 1 + (3 if has_if(toks, after_obj) else 0))
        return
    if obj in ("TYPE", "DOMAIN"):
        edit.wrap = (
            RewriteKind.DUPLICATE_OBJECT_GUARD,
            f"CREATE {obj} inside a DO block that ignores duplicate_object: a second run leaves the {obj.lower()} "
            "as it is",
            "",
        )
        return
    if obj in ("FUNCTION", "PROCEDURE", "VIEW") and not or_replace:
        edit.insert(
            toks[0].end,
            " OR REPLACE",
            RewriteKind.OR_REPLACE,
            f"CREATE OR REPLACE {obj}: identical where the original succeeds, and a second run replaces it with "
            "the same definition",
        )
        return
    if obj == "TRIGGER" or (obj == "CONSTRAINT" and i + 1 < len(toks) and is_word(toks[i + 1], "TRIGGER")):
        if or_replace:
            return
        name_index = i + 1 if obj == "TRIGGER" else i + 2
        name = name_at(toks, name_index, text)
        table = _after_on(toks, name_index, text)
        if name is None or table is None:
            return
        edit.wrap = (
            RewriteKind.CATALOG_GUARD,
            "CREATE TRIGGER only when pg_trigger has no trigger of that name on the table",
            "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = to_regclass("
            f"{quote_literal(table.raw)}) AND tgname = {quote_literal(name.parts[-1])} AND NOT tgisinternal)",
        )
        return
    if obj == "POLICY":
        name = name_at(toks, i + 1, text)
        table = _after_on(toks, i + 1, text)
        if name is None or table is None:
            return
        edit.wrap = (
            RewriteKind.CATALOG_GUARD,
            "CREATE POLICY only when pg_policy has no policy of that name on the table",
            "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy WHERE polrelid = to_regclass("
            f"{quote_literal(table.raw)}) AND polname = {quote_literal(name.parts[-1])})",
        )


def _after_on(toks: Sequence[Tok], start: int, text: str) -> NameRef | None:
    depth = 0
    for j in range(start, len(toks)):
        if toks[j].text == "(":
            depth += 1
        elif toks[j].text == ")":
            depth -= 1
        elif depth == 0 and is_word(toks[j], "ON"):
            return name_at(toks, j + 1, text)
    return None


def _extension_schema(s: SqlStatement, edit: _Edit, name_index: int) -> None:
    toks = s.tokens
    if any(is_word(t, "SCHEMA") for t in toks[name_index:]):
        return
    name = name_at(toks, name_index, s.text)
    if name is None:
        return
    with_follows = name.end < len(toks) and is_word(toks[name.end], "WITH")
    offset = toks[name.end].end if with_follows else toks[name.end - 1].end
    edit.insert(
        offset,
        f" SCHEMA {SUPABASE_EXTENSION_SCHEMA}" if with_follows else f" WITH SCHEMA {SUPABASE_EXTENSION_SCHEMA}",
        RewriteKind.EXTENSION_SCHEMA,
        "Supabase keeps extensions in schema `extensions` (on the default search_path), not in `public`",
    )


def _drop_object(s: SqlStatement, edit: _Edit) -> None:
    toks = s.tokens
    i = 1
    i = skip_words(toks, i, "MATERIALIZED")
    if i >= len(toks):
        return
    if is_word(toks[i], "EVENT", "FOREIGN", "ACCESS"):
        i += 1  # two-word object types (EVENT TRIGGER, FOREIGN TABLE, ACCESS METHOD)
    if is_word(toks[i], "TEXT") and i + 2 < len(toks):
        i += 2  # TEXT SEARCH CONFIGURATION / DICTIONARY / PARSER / TEMPLATE
    if is_word(toks[i], "OWNED", "CAST"):
        return
    after = skip_words(toks, i + 1, "CONCURRENTLY")
    if has_if(toks, after):
        return
    edit.insert(
        toks[after - 1].end,
        " IF EXISTS",
        RewriteKind.IF_EXISTS,
        f"DROP {toks[i].upper} IF EXISTS: a second run finds nothing to drop instead of failing",
    )


def _alter_table(s: SqlStatement, edit: _Edit) -> None:
    toks, text = s.tokens, s.text
    i = skip_words(toks, 2, "IF")
    if i != 2:
        i = skip_words(toks, i, "EXISTS")
    i = skip_words(toks, i, "ONLY")
    table = name_at(toks, i, text)
    if table is None:
        return
    j = table.end
    if j < len(toks) and toks[j].text == "*":
        j += 1
    if j < len(toks) and is_word(toks[j], "RENAME"):
        _rename_in_table(s, edit, table, j)
        return
    constraint_names: list[str] = []
    other_non_idempotent = False
    actions = [(b, e) for b, e in top_level_actions(toks, j) if b < e]
    for begin, end in actions:
        if begin >= end:
            continue
        head = toks[begin]
        if is_word(head, "ADD"):
            k = begin + 1
            if k < end and is_word(toks[k], "CONSTRAINT"):
                name = name_at(toks, k + 1, text)
                if name is not None:
                    constraint_names.append(name.parts[-1])
                continue
            if k < end and is_word(toks[k], "PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "EXCLUDE"):
                other_non_idempotent = True
                continue
            k = skip_words(toks, k, "COLUMN")
            if not has_if(toks, k):
                edit.insert(
                    toks[k - 1].end,
                    " IF NOT EXISTS",
                    RewriteKind.IF_NOT_EXISTS,
                    "ADD COLUMN IF NOT EXISTS: a second run skips the column instead of failing",
                )
        elif is_word(head, "DROP"):
            k = begin + 1
            if k < end and is_word(toks[k], "CONSTRAINT"):
                k += 1
                what = "CONSTRAINT"
            elif k < end and is_word(toks[k], "DEFAULT", "NOT", "EXPRESSION", "IDENTITY"):
                continue
            else:
                k = skip_words(toks, k, "COLUMN")
                what = "COLUMN"
            if not has_if(toks, k):
                edit.insert(
                    toks[k - 1].end,
                    " IF EXISTS",
                    RewriteKind.IF_EXISTS,
                    f"DROP {what} IF EXISTS: a second run finds nothing to drop instead of failing",
                )
    if constraint_names and len(constraint_names) < len(actions):
        edit.inserts.clear()
        edit.rewrites.clear()
        edit.rerun_note = (
            "ADD CONSTRAINT shares this ALTER TABLE with other actions, which a catalog guard would skip too: left "
            "as written, so a second run fails"
        )
    elif constraint_names and not other_non_idempotent:
        names = ", ".join(quote_literal(n) for n in constraint_names)
        edit.wrap = (
            RewriteKind.CATALOG_GUARD,
            "ADD CONSTRAINT only when pg_constraint has no constraint of that name on the table",
            "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = to_regclass("
            f"{quote_literal(table.raw)}) AND conname IN ({names}))",
        )
    elif other_non_idempotent:
        edit.rerun_note = "an unnamed constraint cannot be guarded: a second run adds it again or fails"


def _rename_in_table(s: SqlStatement, edit: _Edit, table: NameRef, j: int) -> None:
    toks, text = s.tokens, s.text
    k = j + 1
    table_lit = quote_literal(table.raw)
    if k < len(toks) and is_word(toks[k], "TO"):
        new = name_at(toks, k + 1, text)
        if new is None:
            return
        condition = (
            f"to_regclass({table_lit}) IS NOT NULL AND to_regclass({quote_literal(_sibling(table, new.raw))}) IS NULL"
        )
        reason = "RENAME TO only while the old name exists and the new one does not"
    elif k < len(toks) and is_word(toks[k], "CONSTRAINT"):
        old = name_at(toks, k + 1, text)
        if old is None:
            return
        condition = (
            "EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = to_regclass("
            f"{table_lit}) AND conname = {quote_literal(old.parts[-1])})"
        )
        reason = "RENAME CONSTRAINT only while a constraint of the old name exists"
    else:
        k = skip_words(toks, k, "COLUMN")
        old = name_at(toks, k, text)
        new = name_at(toks, old.end + 1, text) if old is not None else None
        if old is None or new is None:
            return
        condition = (
            "EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass("
            f"{table_lit}) AND attname = {quote_literal(old.parts[-1])} AND NOT attisdropped)"
        )
        reason = "RENAME COLUMN only while the column of the old name exists"
    edit.wrap = (RewriteKind.CATALOG_GUARD, reason, condition)


def _alter_type(s: SqlStatement, edit: _Edit) -> None:
    toks, text = s.tokens, s.text
    name = name_at(toks, 2, text)
    if name is None or name.end >= len(toks):
        return
    j = name.end
    if is_word(toks[j], "ADD") and j + 1 < len(toks) and is_word(toks[j + 1], "VALUE"):
        if not has_if(toks, j + 2):
            edit.insert(
                toks[j + 1].end,
                " IF NOT EXISTS",
                RewriteKind.IF_NOT_EXISTS,
                "ADD VALUE IF NOT EXISTS: a second run keeps the label instead of failing",
            )
    elif is_word(toks[j], "RENAME") and j + 2 < len(toks) and is_word(toks[j + 1], "TO"):
        new = name_at(toks, j + 2, text)
        if new is None:
            return
        edit.wrap = (
            RewriteKind.CATALOG_GUARD,
            "RENAME TO only while the old type name exists and the new one does not",
            f"to_regtype({quote_literal(name.raw)}) IS NOT NULL AND "
            f"to_regtype({quote_literal(_sibling(name, new.raw))}) IS NULL",
        )
    elif is_word(toks[j], "RENAME") and j + 2 < len(toks) and is_word(toks[j + 1], "VALUE"):
        old = toks[j + 2]
        if old.kind is not TokenKind.STRING:
            return
        edit.wrap = (
            RewriteKind.CATALOG_GUARD,
            "RENAME VALUE only while the enum still has the old label",
            "EXISTS (SELECT 1 FROM pg_catalog.pg_enum WHERE enumtypid = to_regtype("
            f"{quote_literal(name.raw)}) AND enumlabel = {old.text})",
        )


def _alter_index(s: SqlStatement, edit: _Edit) -> None:
    toks, text = s.tokens, s.text
    i = 2
    if has_if(toks, i):
        return
    name = name_at(toks, i, text)
    if name is None or name.end + 2 >= len(toks) or not is_word(toks[name.end], "RENAME"):
        return
    new = name_at(toks, name.end + 2, text)
    if new is None:
        return
    edit.wrap = (
        RewriteKind.CATALOG_GUARD,
        "RENAME TO only while the old index name exists and the new one does not",
        f"to_regclass({quote_literal(name.raw)}) IS NOT NULL AND "
        f"to_regclass({quote_literal(_sibling(name, new.raw))}) IS NULL",
    )


def _rewrite_one(
    s: SqlStatement, *, supabase: bool, guards: bool
) -> tuple[str, list[tuple[RewriteKind, str]], str | None]:
    edit = _Edit(text=s.text, rewrites=[], inserts=[])
    k = s.kind
    if not s.tokens:
        return s.text, [], None
    first = s.tokens[0].upper
    if not guards:
        if k is StatementKind.CREATE_EXTENSION and supabase:
            _extension_schema(s, edit, 2 + (3 if has_if(s.tokens, 2) else 0))
        return edit.result(), edit.rewrites, None
    if first == "CREATE":
        _create_object(s, edit, supabase)
    elif first == "DROP" and k not in (StatementKind.DROP_DATABASE,):
        _drop_object(s, edit)
    elif k is StatementKind.ALTER_TABLE:
        _alter_table(s, edit)
    elif k is StatementKind.ALTER_TYPE:
        _alter_type(s, edit)
    elif k is StatementKind.ALTER_INDEX:
        _alter_index(s, edit)
    elif k in (StatementKind.INSERT, StatementKind.UPDATE, StatementKind.DELETE, StatementKind.MERGE):
        edit.rerun_note = "rows are written as the author wrote them: a second run writes them again or fails"
    elif k is StatementKind.DO_BLOCK:
        edit.rerun_note = "the author's DO block runs again as written: it is idempotent only if it was written so"
    if not s.transactional and edit.wrap is not None:
        edit.wrap = None  # a DO block is a transaction: keep non-transactional statements as they are
    return edit.result(), edit.rewrites, edit.rerun_note


def _kept_leading(leading: str) -> tuple[str, int]:
    """The comments before a statement without Prisma's step comments; and how many were dropped."""
    lines = leading.split("\n")
    kept: list[str] = []
    dropped = 0
    for line in lines:
        word = line.strip()[3:] if line.strip().startswith("-- ") else ""
        if word in PRISMA_STEP_COMMENTS:
            dropped += 1
            continue
        kept.append(line)
    text = "\n".join(kept)
    start = text.find(_PRISMA_WARNING_OPENING)
    if start != -1:
        end = text.find("*/", start)
        if end != -1:
            text = text[:start] + text[end + 2 :].lstrip("\n")
            dropped += 1
    return text, dropped


_CREATED_OBJECTS = frozenset({"TABLE", "TYPE", "INDEX", "SEQUENCE", "VIEW", "DOMAIN"})


def _created_name(s: SqlStatement) -> str | None:
    """The name a CREATE TABLE / TYPE / INDEX / SEQUENCE / VIEW / DOMAIN statement creates."""
    toks = s.tokens
    if not toks or not is_word(toks[0], "CREATE"):
        return None
    i = next((n for n, t in enumerate(toks[:6]) if t.upper in _CREATED_OBJECTS), None)
    if i is None:
        return None
    i = skip_words(toks, i + 1, "CONCURRENTLY")
    if has_if(toks, i):
        i += 3
    name = name_at(toks, i, s.text)
    return name.parts[-1] if name else None


def _renamed_object(s: SqlStatement) -> str | None:
    """The object an ALTER TABLE / TYPE / INDEX ... RENAME TO renames (not columns, values or constraints)."""
    toks = s.tokens
    if s.kind not in (StatementKind.ALTER_TABLE, StatementKind.ALTER_TYPE, StatementKind.ALTER_INDEX):
        return None
    i = skip_words(toks, 2, "IF", "EXISTS")
    i = skip_words(toks, i, "ONLY")
    name = name_at(toks, i, s.text)
    if name is None or name.end + 1 >= len(toks):
        return None
    if is_word(toks[name.end], "RENAME") and is_word(toks[name.end + 1], "TO"):
        return name.parts[-1]
    return None


def _prisma_comments_note(statements: Sequence[SqlStatement]) -> tuple[int, Rewrite | None]:
    """One rewrite for every comment `prisma migrate dev` wrote in the script, said once, on the first statement
    that had one (its 1-based index is returned with it), instead of once per statement."""
    found = [(i, s.line, n) for i, s in enumerate(statements, start=1) if (n := _kept_leading(s.leading)[1])]
    if not found:
        return 0, None
    total = sum(n for _, _, n in found)
    lines = ", ".join(str(line) for _, line, _ in found)
    where = f"above the statement on line {lines}" if len(found) == 1 else f"above the statements on lines {lines}"
    first_index, first_line, _ = found[0]
    return first_index, Rewrite(
        line=first_line,
        kind=RewriteKind.PRISMA_COMMENT_DROPPED,
        reason=f"{total} comment(s) generated by Prisma dropped ({where})",
    )


def rewrite_for_target(statements: Sequence[SqlStatement], *, supabase: bool, guards: bool = True) -> RewriteResult:
    """Rewrite every statement that needs it for a safe, re-runnable apply on the target.

    `guards=False` keeps only what adapts the script to the target (Prisma's comments dropped, Supabase's
    extension schema): the script to run when the guarded one is not proven equivalent on the target.
    """
    out: list[RewrittenStatement] = []
    all_rewrites: list[Rewrite] = []
    pieces: list[str] = []
    created: set[str] = set()
    note_at, prisma_note = _prisma_comments_note(statements)
    for index, s in enumerate(statements, start=1):
        sql, made, note = _rewrite_one(s, supabase=supabase, guards=guards)
        renamed = _renamed_object(s)
        if guards and renamed is not None and renamed in created:
            note = (
                f"this script creates {renamed!r} and then renames it: a second run of the whole script creates "
                f"{renamed!r} again (each guard sees only its own statement)"
            )
        made_name = _created_name(s)
        if made_name is not None:
            created.add(made_name)
        leading, _ = _kept_leading(s.leading)
        rewrites: list[Rewrite] = []
        if prisma_note is not None and index == note_at:
            rewrites.append(prisma_note)
        rewrites.extend(Rewrite(line=s.line, kind=kind, reason=reason) for kind, reason in made)
        all_rewrites.extend(rewrites)
        out.append(
            RewrittenStatement(
                index=index,
                line=s.line,
                kind=s.kind,
                transactional=s.transactional,
                original=s.text,
                sql=sql,
                rewrites=tuple(rewrites),
                rerun_note=note,
            )
        )
        suffix = s.suffix if ";" in s.suffix else ";" + s.suffix
        if index == len(statements) and not suffix.endswith("\n"):
            suffix += "\n"
        pieces.append(leading + sql + suffix)
    return RewriteResult(statements=tuple(out), rewrites=tuple(all_rewrites), script="".join(pieces).lstrip("\n"))
