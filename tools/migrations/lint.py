"""Lint a migration: what each statement risks on a live production table, as data.

The rules cover squawk's core set (names kept so people who know squawk recognise them). Each finding comes from
the statement's parsed structure (its kind and the tokens of its actions), never from a pattern over SQL text.

Tables the script creates itself are new and empty: locking and rewriting them harms nobody, so the rules that
are about existing tables skip them. `existing_tables` (qualified `schema.name`, from the target's catalog) says
which tables exist; without it every table the script does not create is assumed to exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from itertools import pairwise
from typing import Any, Literal

from pglast import ast
from pglast.enums import AlterTableType, ConstrType
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
from pgshift.tools.plan.statement import HazardKind
from pgshift.tools.plan.volatility import BUILTIN_VOLATILE

DEFAULT_SCHEMA = "public"

SERIAL_TYPES = frozenset({"serial", "serial4", "serial8", "bigserial", "smallserial", "serial2"})
_COLUMN_CONSTRAINT_WORDS = frozenset(
    {"NOT", "NULL", "CHECK", "REFERENCES", "UNIQUE", "PRIMARY", "CONSTRAINT", "GENERATED", "COLLATE", "DEFAULT"}
)


class LintRule(StrEnum):
    ADDING_REQUIRED_FIELD = "adding-required-field"
    ADDING_FIELD_WITH_VOLATILE_DEFAULT = "adding-field-with-volatile-default"
    CHANGING_COLUMN_TYPE = "changing-column-type"
    ADDING_NOT_NULLABLE_FIELD = "adding-not-nullable-field"
    BAN_DROP_COLUMN = "ban-drop-column"
    BAN_DROP_TABLE = "ban-drop-table"
    BAN_TRUNCATE = "ban-truncate"
    BAN_DROP_DATABASE = "ban-drop-database"
    REQUIRE_CONCURRENT_INDEX_CREATION = "require-concurrent-index-creation"
    REQUIRE_CONCURRENT_INDEX_DELETION = "require-concurrent-index-deletion"
    CONCURRENT_INDEX_IN_TRANSACTION = "ban-concurrent-index-creation-in-transaction"
    CONSTRAINT_MISSING_NOT_VALID = "constraint-missing-not-valid"
    ADDING_FOREIGN_KEY_CONSTRAINT = "adding-foreign-key-constraint"
    DISALLOWED_UNIQUE_CONSTRAINT = "disallowed-unique-constraint"
    RENAMING_COLUMN = "renaming-column"
    RENAMING_TABLE = "renaming-table"
    REQUIRE_LOCK_TIMEOUT = "require-timeout-settings"
    NEW_ENUM_VALUE_USED_IN_TRANSACTION = "new-enum-value-used-in-transaction"
    FOREIGN_KEY_LOCKS_REFERENCED_TABLE = "foreign-key-locks-referenced-table"


Severity = Literal["error", "warning"]


class LintFinding(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: LintRule
    severity: Severity
    statement: int = Field(description="1-based position of the statement in the script")
    line: int
    object: str = Field(description="The table (or index) the statement acts on")
    message: str = Field(description="What goes wrong on a live table")
    help: str = Field(description="The safer way")
    hazard: HazardKind | None = None


def _qualified(name: NameRef) -> str:
    parts = name.parts
    return ".".join(parts[-2:]) if len(parts) > 1 else f"{DEFAULT_SCHEMA}.{parts[0]}"


def _range_name(relation: ast.RangeVar) -> str:
    return f"{relation.schemaname or DEFAULT_SCHEMA}.{relation.relname}"


def added_foreign_keys(node: Any) -> list[ast.Constraint]:
    """The FOREIGN KEY constraints a CREATE TABLE or ALTER TABLE adds (table and column constraints), from the
    parse tree."""
    if isinstance(node, ast.CreateStmt):
        elements = list(node.tableElts or ())
    elif isinstance(node, ast.AlterTableStmt):
        adds = (AlterTableType.AT_AddConstraint, AlterTableType.AT_AddColumn)
        elements = [c.def_ for c in node.cmds or () if isinstance(c, ast.AlterTableCmd) and c.subtype in adds]
    else:
        return []
    found: list[ast.Constraint] = []
    for element in elements:
        if isinstance(element, ast.Constraint):
            found.append(element)
        elif isinstance(element, ast.ColumnDef):
            found.extend(c for c in element.constraints or () if isinstance(c, ast.Constraint))
    return [c for c in found if c.contype == ConstrType.CONSTR_FOREIGN]


def _normalised(tables: Iterable[str]) -> set[str]:
    return {t if "." in t else f"{DEFAULT_SCHEMA}.{t}" for t in tables}


class _Linter:
    def __init__(self, existing: set[str] | None) -> None:
        self.existing = existing
        self.created: set[str] = set()
        self.findings: list[LintFinding] = []
        self.lock_timeout_set = False
        self.locking: list[tuple[int, SqlStatement, str]] = []
        self.in_explicit_transaction = False
        self.index = 0
        self.statement: SqlStatement | None = None
        self.new_enum_values: dict[str, str] = {}  # label literal -> enum type, added earlier in the script

    # -- helpers --------------------------------------------------------------------------------------------------

    def is_existing(self, table: str) -> bool:
        if table in self.created:
            return False
        return True if self.existing is None else table in self.existing

    def add(
        self,
        rule: LintRule,
        severity: Severity,
        obj: str,
        message: str,
        help_: str,
        hazard: HazardKind | None,
    ) -> None:
        assert self.statement is not None
        self.findings.append(
            LintFinding(
                rule=rule,
                severity=severity,
                statement=self.index,
                line=self.statement.line,
                object=obj,
                message=message,
                help=help_,
                hazard=hazard,
            )
        )

    def locks(self, table: str) -> None:
        assert self.statement is not None
        if self.is_existing(table) and not self.lock_timeout_set:
            self.locking.append((self.index, self.statement, table))

    # -- per kind -------------------------------------------------------------------------------------------------

    def run(self, statements: Sequence[SqlStatement]) -> list[LintFinding]:
        for self.index, self.statement in enumerate(statements, start=1):
            s = self.statement
            handler = {
                StatementKind.CREATE_TABLE: self.create_table,
                StatementKind.ALTER_TABLE: self.alter_table,
                StatementKind.DROP_TABLE: self.drop_table,
                StatementKind.CREATE_INDEX: self.create_index,
                StatementKind.DROP_INDEX: self.drop_index,
                StatementKind.TRUNCATE: self.truncate,
                StatementKind.DROP_DATABASE: self.drop_database,
                StatementKind.SET: self.set_,
                StatementKind.CREATE_TRIGGER: self.create_trigger,
                StatementKind.ALTER_TYPE: self.alter_type,
            }.get(s.kind)
            if s.kind is StatementKind.BEGIN:
                self.in_explicit_transaction = True
            elif s.kind in (StatementKind.COMMIT, StatementKind.ROLLBACK):
                self.in_explicit_transaction = False
            self.uses_new_enum_value(s)
            if handler is not None:
                handler(s)
            if s.kind in (StatementKind.CREATE_TABLE, StatementKind.ALTER_TABLE):
                self.foreign_keys(s)
        if self.locking:
            index, first, table = self.locking[0]
            self.statement, self.index = first, index
            self.add(
                LintRule.REQUIRE_LOCK_TIMEOUT,
                "warning",
                table,
                f"{len(self.locking)} statement(s) lock existing tables and the script sets no lock_timeout: a "
                "statement waiting behind a long transaction blocks every query queued after it",
                "start the script with SET lock_timeout = '5s' (pgshift apply sets one itself; prisma migrate "
                "deploy and psql do not)",
                HazardKind.ACCESS_EXCLUSIVE_LOCK,
            )
        return sorted(self.findings, key=lambda f: (f.statement, f.rule))

    def foreign_keys(self, s: SqlStatement) -> None:
        """A foreign key locks the table it references (SHARE ROW EXCLUSIVE: writes to it wait) until commit."""
        node = s.node
        relation = getattr(node, "relation", None)
        table = _range_name(relation) if isinstance(relation, ast.RangeVar) else "?"
        new_table = isinstance(node, ast.CreateStmt) or not self.is_existing(table)
        for constraint in added_foreign_keys(node):
            referenced = _range_name(constraint.pktable) if constraint.pktable is not None else table
            if referenced == table or not self.is_existing(referenced):
                continue
            timeout_set = self.lock_timeout_set
            self.locks(referenced)
            if new_table and not timeout_set:
                self.add(
                    LintRule.FOREIGN_KEY_LOCKS_REFERENCED_TABLE,
                    "warning",
                    referenced,
                    f"a foreign key from the new table {table} takes a SHARE ROW EXCLUSIVE lock on the existing table "
                    f"{referenced}, and the script sets no lock_timeout: waiting behind a long transaction on "
                    f"{referenced}, it blocks every write queued after it",
                    "start the script with SET lock_timeout = '5s' (pgshift apply sets one itself), and retry on "
                    "timeout",
                    HazardKind.SHARE_LOCK,
                )
            elif not new_table and not constraint.skip_validation:
                self.add(
                    LintRule.FOREIGN_KEY_LOCKS_REFERENCED_TABLE,
                    "warning",
                    referenced,
                    f"adds a foreign key from {table} that validates every existing row while holding a SHARE ROW "
                    f"EXCLUSIVE lock on the referenced table {referenced}: writes to {referenced} wait for the scan",
                    "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT in a later "
                    "statement (it does not block writes)",
                    HazardKind.SHARE_LOCK,
                )

    def alter_type(self, s: SqlStatement) -> None:
        toks = s.tokens
        name = name_at(toks, 2, s.text)
        if name is None or name.end + 1 >= len(toks):
            return
        if is_word(toks[name.end], "ADD") and is_word(toks[name.end + 1], "VALUE"):
            label = next((t for t in toks[name.end + 2 :] if t.kind is TokenKind.STRING), None)
            if label is not None:
                self.new_enum_values[label.text] = ".".join(name.parts)

    def uses_new_enum_value(self, s: SqlStatement) -> None:
        """A label added by ALTER TYPE ... ADD VALUE cannot be used before that transaction commits (55P04)."""
        if not self.new_enum_values or s.kind is StatementKind.ALTER_TYPE:
            return
        used = next((t.text for t in s.tokens if t.kind is TokenKind.STRING and t.text in self.new_enum_values), None)
        if used is None or s.kind in (StatementKind.CREATE_FUNCTION, StatementKind.DO_BLOCK):
            return
        self.add(
            LintRule.NEW_ENUM_VALUE_USED_IN_TRANSACTION,
            "error",
            self.new_enum_values[used],
            f"uses the enum label {used} that this script adds: PostgreSQL refuses a new label before the "
            "transaction that added it commits (unsafe use of new value), and pgshift applies a script in one "
            "transaction",
            "move the statements that use the new label into the next migration",
            None,
        )

    def set_(self, s: SqlStatement) -> None:
        toks = s.tokens
        i = skip_words(toks, 1, "LOCAL")
        i = skip_words(toks, i, "SESSION")
        if i < len(toks) and toks[i].name == "lock_timeout":
            self.lock_timeout_set = True

    def create_table(self, s: SqlStatement) -> None:
        toks = s.tokens
        i = 1
        while i < len(toks) and not is_word(toks[i], "TABLE"):
            i += 1
        i += 1
        if has_if(toks, i):
            i += 3
        name = name_at(toks, i, s.text)
        if name is not None:
            self.created.add(_qualified(name))

    def drop_table(self, s: SqlStatement) -> None:
        toks = s.tokens
        i = 2 + (2 if has_if(s.tokens, 2) else 0)
        while i < len(toks):
            name = name_at(toks, i, s.text)
            if name is None:
                break
            table = _qualified(name)
            if self.is_existing(table):
                self.add(
                    LintRule.BAN_DROP_TABLE,
                    "error",
                    table,
                    "drops the table and every row in it; running code that still reads it fails",
                    "stop using the table in code first, deploy, then drop it in a later migration (keep a backup)",
                    HazardKind.DELETES_DATA,
                )
                self.locks(table)
            if name.end < len(toks) and toks[name.end].text == ",":
                i = name.end + 1
            else:
                break

    def truncate(self, s: SqlStatement) -> None:
        toks = s.tokens
        i = skip_words(toks, 1, "TABLE")
        i = skip_words(toks, i, "ONLY")
        name = name_at(toks, i, s.text)
        table = _qualified(name) if name else "?"
        self.add(
            LintRule.BAN_TRUNCATE,
            "error",
            table,
            "deletes every row of the table under an ACCESS EXCLUSIVE lock",
            "delete in batches, or make sure this is really meant for production",
            HazardKind.DELETES_DATA,
        )

    def drop_database(self, s: SqlStatement) -> None:
        self.add(
            LintRule.BAN_DROP_DATABASE,
            "error",
            "database",
            "drops a whole database",
            "never do this from a migration",
            HazardKind.DELETES_DATA,
        )

    def create_index(self, s: SqlStatement) -> None:
        toks = s.tokens
        concurrently = any(is_word(t, "CONCURRENTLY") for t in toks[:4])
        on = next((i for i, t in enumerate(toks) if is_word(t, "ON")), None)
        if on is None:
            return
        name = name_at(toks, skip_words(toks, on + 1, "ONLY"), s.text)
        if name is None:
            return
        table = _qualified(name)
        if concurrently and self.in_explicit_transaction:
            self.add(
                LintRule.CONCURRENT_INDEX_IN_TRANSACTION,
                "error",
                table,
                "CREATE INDEX CONCURRENTLY inside the script's BEGIN..COMMIT: PostgreSQL refuses it",
                "move it outside the transaction block",
                HazardKind.NOT_TRANSACTIONAL,
            )
        if not concurrently and self.is_existing(table):
            self.add(
                LintRule.REQUIRE_CONCURRENT_INDEX_CREATION,
                "warning",
                table,
                "builds the index under a SHARE lock: writes to the table wait until the build ends",
                "CREATE INDEX CONCURRENTLY (outside a transaction; pgshift apply runs it on its own)",
                HazardKind.SHARE_LOCK,
            )
            self.locks(table)

    def drop_index(self, s: SqlStatement) -> None:
        toks = s.tokens
        if any(is_word(t, "CONCURRENTLY") for t in toks[:3]):
            return
        i = 2 + (2 if has_if(toks, 2) else 0)
        name = name_at(toks, i, s.text)
        index = _qualified(name) if name else "?"
        self.add(
            LintRule.REQUIRE_CONCURRENT_INDEX_DELETION,
            "warning",
            index,
            "drops the index under an ACCESS EXCLUSIVE lock on its table",
            "DROP INDEX CONCURRENTLY",
            HazardKind.ACCESS_EXCLUSIVE_LOCK,
        )
        if not self.lock_timeout_set:
            assert self.statement is not None
            self.locking.append((self.index, self.statement, index))

    def create_trigger(self, s: SqlStatement) -> None:
        toks = s.tokens
        on = next((i for i, t in enumerate(toks) if is_word(t, "ON")), None)
        name = name_at(toks, on + 1, s.text) if on is not None else None
        if name is not None:
            self.locks(_qualified(name))

    def alter_table(self, s: SqlStatement) -> None:
        toks = s.tokens
        i = 2
        if has_if(toks, i):
            i += 2
        i = skip_words(toks, i, "ONLY")
        name = name_at(toks, i, s.text)
        if name is None:
            return
        table = _qualified(name)
        j = name.end + (1 if name.end < len(toks) and toks[name.end].text == "*" else 0)
        existing = self.is_existing(table)
        if existing:
            self.locks(table)
        if j < len(toks) and is_word(toks[j], "RENAME"):
            self.rename(s, table, j)
            return
        for begin, end in top_level_actions(toks, j):
            if begin < end:
                self.action(toks[begin:end], table, existing)

    def rename(self, s: SqlStatement, table: str, j: int) -> None:
        toks = s.tokens
        if j + 1 < len(toks) and is_word(toks[j + 1], "TO"):
            self.add(
                LintRule.RENAMING_TABLE,
                "warning",
                table,
                "renames the table: running code that uses the old name fails until it is deployed with the new one",
                "add the new table (or a view) alongside, move code over, then drop the old name later",
                HazardKind.ACCESS_EXCLUSIVE_LOCK,
            )
        elif j + 1 < len(toks) and is_word(toks[j + 1], "CONSTRAINT"):
            return
        else:
            self.add(
                LintRule.RENAMING_COLUMN,
                "warning",
                table,
                "renames a column: running code that uses the old name fails until it is deployed with the new one",
                "add the new column, write both, backfill, move reads over, then drop the old column",
                HazardKind.ACCESS_EXCLUSIVE_LOCK,
            )

    def action(self, toks: Sequence[Tok], table: str, existing: bool) -> None:
        head = toks[0]
        if is_word(head, "ADD"):
            k = 1
            if k < len(toks) and is_word(toks[k], "CONSTRAINT"):
                k += 2  # CONSTRAINT name
            if k < len(toks) and is_word(toks[k], "PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "EXCLUDE"):
                if existing:
                    self.add_constraint(toks, k, table)
                return
            self.add_column(
                toks, skip_words(toks, skip_words(toks, 1, "COLUMN"), "IF", "NOT", "EXISTS"), table, existing
            )
        elif is_word(head, "DROP"):
            k = 1
            if k < len(toks) and is_word(toks[k], "CONSTRAINT"):
                return
            k = skip_words(toks, k, "COLUMN")
            k = skip_words(toks, k, "IF", "EXISTS")
            column = toks[k].name if k < len(toks) else "?"
            if existing:
                self.add(
                    LintRule.BAN_DROP_COLUMN,
                    "error",
                    f"{table}.{column}",
                    "drops the column and its data; running code that still selects it fails",
                    "stop using the column in code first, deploy, then drop it in a later migration",
                    HazardKind.DELETES_DATA,
                )
        elif is_word(head, "ALTER") and existing:
            k = skip_words(toks, 1, "COLUMN")
            column = toks[k].name if k < len(toks) else "?"
            rest = toks[k + 1 :]
            if rest and (
                is_word(rest[0], "TYPE") or (len(rest) > 2 and is_word(rest[0], "SET") and is_word(rest[2], "TYPE"))
            ):
                self.add(
                    LintRule.CHANGING_COLUMN_TYPE,
                    "warning",
                    f"{table}.{column}",
                    "changes the column's type: PostgreSQL rewrites the table and its indexes under an ACCESS "
                    "EXCLUSIVE lock (unless the types are binary-compatible)",
                    "add a column of the new type, backfill it in batches, switch code over, then drop the old one",
                    HazardKind.TABLE_REWRITE,
                )
            elif len(rest) >= 3 and is_word(rest[0], "SET") and is_word(rest[1], "NOT") and is_word(rest[2], "NULL"):
                self.add(
                    LintRule.ADDING_NOT_NULLABLE_FIELD,
                    "warning",
                    f"{table}.{column}",
                    "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock",
                    "first ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, then VALIDATE CONSTRAINT, then SET "
                    "NOT NULL (PostgreSQL 12+ then skips the scan)",
                    HazardKind.VALIDATION_SCAN,
                )

    def add_constraint(self, toks: Sequence[Tok], k: int, table: str) -> None:
        kind = toks[k].upper
        not_valid = any(is_word(a, "NOT") and is_word(b, "VALID") for a, b in pairwise(toks))
        if kind in ("FOREIGN", "CHECK") and not not_valid:
            self.add(
                LintRule.CONSTRAINT_MISSING_NOT_VALID,
                "warning",
                table,
                f"adds a {'foreign key' if kind == 'FOREIGN' else 'check'} constraint that validates every existing "
                "row while holding a lock that blocks writes",
                "ADD CONSTRAINT ... NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT in a later statement",
                HazardKind.VALIDATION_SCAN,
            )
        elif kind in ("UNIQUE", "PRIMARY") and not any(is_word(t, "USING") for t in toks[k:]):
            self.add(
                LintRule.DISALLOWED_UNIQUE_CONSTRAINT,
                "warning",
                table,
                "builds a unique index under an ACCESS EXCLUSIVE lock: reads and writes wait",
                "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... USING INDEX",
                HazardKind.ACCESS_EXCLUSIVE_LOCK,
            )

    def add_column(self, toks: Sequence[Tok], k: int, table: str, existing: bool) -> None:
        if k >= len(toks):
            return
        column = toks[k].name
        type_tok = toks[k + 1] if k + 1 < len(toks) else None
        words = [t.upper for t in toks]
        has_default = "DEFAULT" in words
        generated = "GENERATED" in words
        serial = type_tok is not None and type_tok.kind is TokenKind.WORD and type_tok.name in SERIAL_TYPES
        not_null = any(a == "NOT" and b == "NULL" for a, b in pairwise(words)) or ("PRIMARY" in words)
        if not existing:
            return
        target = f"{table}.{column}"
        if not_null and not has_default and not generated and not serial:
            self.add(
                LintRule.ADDING_REQUIRED_FIELD,
                "error",
                target,
                "adds a NOT NULL column without a default: fails as soon as the table has a row",
                "add it nullable (or with a constant DEFAULT), backfill, then SET NOT NULL",
                None,
            )
        volatile = self._volatile_default(toks) if has_default else None
        if serial or volatile or (generated and "STORED" in words):
            why = (
                f"a {type_tok.text if type_tok else 'serial'} column (DEFAULT nextval)"
                if serial
                else f"DEFAULT {volatile}()"
                if volatile
                else "a stored generated column"
            )
            self.add(
                LintRule.ADDING_FIELD_WITH_VOLATILE_DEFAULT,
                "warning",
                target,
                f"adds {why}: PostgreSQL computes it for every row, rewriting the table under an ACCESS EXCLUSIVE lock",
                "add the column without the default, set the default, backfill existing rows in batches",
                HazardKind.TABLE_REWRITE,
            )
        if "REFERENCES" in words:
            self.add(
                LintRule.ADDING_FOREIGN_KEY_CONSTRAINT,
                "warning",
                target,
                "adds a column with a foreign key: the constraint locks both tables for writes while it is added",
                "add the column first, then ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID and VALIDATE it later",
                HazardKind.SHARE_LOCK,
            )

    @staticmethod
    def _volatile_default(toks: Sequence[Tok]) -> str | None:
        start = next(i for i, t in enumerate(toks) if is_word(t, "DEFAULT")) + 1
        depth = 0
        for i in range(start, len(toks)):
            t = toks[i]
            if t.text == "(":
                depth += 1
            elif t.text == ")":
                depth -= 1
            elif depth == 0 and t.upper in _COLUMN_CONSTRAINT_WORDS:
                break
            if t.kind is TokenKind.WORD and i + 1 < len(toks) and toks[i + 1].text == "(":
                if t.name in BUILTIN_VOLATILE:
                    return t.name
        return None


def lint(statements: Sequence[SqlStatement], *, existing_tables: set[str] | None = None) -> list[LintFinding]:
    """Findings for every statement, in script order. `existing_tables` holds qualified `schema.table` names."""
    existing = _normalised(existing_tables) if existing_tables is not None else None
    return _Linter(existing).run(statements)
