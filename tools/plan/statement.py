"""What a plan is made of: statements with the hazards attached where they were generated.

A plan is data. Each statement says what it does to the database (`hazards`), whether it may run
inside a transaction, and which lock timeout it wants. Nothing here looks at SQL text to decide
whether a statement is dangerous: the generator that wrote the statement knows, and says so.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from pgshift.tools.options import ALLOW_DATA_LOSS


class HazardKind(StrEnum):
    DELETES_DATA = "deletes_data"
    TABLE_REWRITE = "table_rewrite"
    ACCESS_EXCLUSIVE_LOCK = "access_exclusive_lock"
    SHARE_LOCK = "share_lock"
    INDEX_BUILD = "index_build"
    INDEX_DROPPED = "index_dropped"
    VALIDATION_SCAN = "validation_scan"
    AUTHZ_CHANGE = "authz_change"
    UNTRACKABLE_DEPENDENCY = "untrackable_dependency"
    WRITES_ROWS = "writes_rows"
    NOT_TRANSACTIONAL = "not_transactional"  # used by the migration linter; plans mark this with `transactional`


_DEFAULT_MESSAGES: dict[HazardKind, str] = {
    HazardKind.DELETES_DATA: "deletes data that cannot be recovered by a later migration",
    HazardKind.TABLE_REWRITE: "rewrites the whole table while holding an ACCESS EXCLUSIVE lock",
    HazardKind.ACCESS_EXCLUSIVE_LOCK: "takes an ACCESS EXCLUSIVE lock: reads and writes on the table wait",
    HazardKind.SHARE_LOCK: "takes a SHARE lock: writes to the table wait until it finishes",
    HazardKind.INDEX_BUILD: "builds an index: time and I/O grow with the table",
    HazardKind.INDEX_DROPPED: "drops an index: queries that used it may become slow",
    HazardKind.VALIDATION_SCAN: "scans the whole table to validate existing rows",
    HazardKind.AUTHZ_CHANGE: "changes who may read or write data (grants or row-level security)",
    HazardKind.UNTRACKABLE_DEPENDENCY: "depends on objects PostgreSQL does not track (function bodies are not parsed)",
    HazardKind.WRITES_ROWS: "updates existing rows of the table (its UPDATE triggers fire)",
    HazardKind.NOT_TRANSACTIONAL: "cannot run inside a transaction: a failure leaves earlier statements applied",
}


class Hazard(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: HazardKind
    message: str

    @classmethod
    def of(cls, kind: HazardKind, detail: str = "") -> Hazard:
        base = _DEFAULT_MESSAGES[kind]
        return cls(kind=kind, message=f"{base}: {detail}" if detail else base)


class RowCheck(BaseModel):
    """What a statement needs of the target's existing rows, counted on the target at plan time (`tools.plan.rows`)
    so that a plan says it would fail before it runs, not halfway through.

    - `null_rows`: rows where `columns[0]` is NULL (SET NOT NULL, VALIDATE of a NOT NULL check);
    - `any_rows`: every row (ADD COLUMN ... NOT NULL without a default fills them with NULL);
    - `duplicate_rows`: rows beyond the first of each group sharing `columns` (a new PRIMARY KEY or UNIQUE).
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["null_rows", "any_rows", "duplicate_rows"]
    table: str = Field(description="The table's qualified name")
    columns: tuple[str, ...] = Field(description="Column names, unquoted")
    predicate: str | None = Field(default=None, description="A partial unique index's WHERE: only those rows count")
    object: str = Field(description="The object the statement creates or changes: kind and qualified name")
    backfill: str | None = Field(default=None, description="A statement that would clear the way, when one follows")


class Blocker(BaseModel):
    """Rows on the target that make a statement of the plan fail: resolve them before applying."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["null_rows", "any_rows", "duplicate_rows"]
    object: str = Field(description="The object the failing statement creates or changes: kind and qualified name")
    table: str
    rows: int | None = Field(description="How many rows are in the way; None when not counted (see message)")
    message: str
    backfill: str | None = Field(default=None, description="A statement that would clear the way, when one follows")


class Statement(BaseModel):
    """One SQL statement of a plan, with what it risks."""

    model_config = ConfigDict(frozen=True)

    sql: str = Field(description="One SQL statement, without the trailing semicolon")
    hazards: tuple[Hazard, ...] = ()
    transactional: bool = Field(default=True, description="False when it must run alone, outside a transaction")
    lock_timeout_ms: int | None = Field(default=None, description="Set lock_timeout to this before running it")
    object: str = Field(default="", description="The object it acts on: kind and qualified name")
    check: RowCheck | None = Field(default=None, description="What it needs of the target's existing rows")

    @property
    def destructive(self) -> bool:
        return any(h.kind is HazardKind.DELETES_DATA for h in self.hazards)

    def render(self) -> str:
        prefix = f"SET lock_timeout = '{self.lock_timeout_ms}ms';\n" if self.lock_timeout_ms is not None else ""
        return f"{prefix}{self.sql};"


class Plan(BaseModel):
    """The ordered statements that turn the target schema into the source schema."""

    model_config = ConfigDict(frozen=True)

    statements: tuple[Statement, ...] = ()
    allow_data_loss: bool = False
    online: bool = False
    blockers: tuple[Blocker, ...] = Field(
        default=(),
        description="Rows on the target that make a statement fail (NULLs under a new NOT NULL, duplicates under a "
        "new UNIQUE), counted at plan time: the plan cannot apply until they are resolved",
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def script(self) -> str:
        """The whole plan as one SQL script (psql-ready)."""
        return "\n\n".join(s.render() for s in self.statements) + ("\n" if self.statements else "")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def destructive(self) -> tuple[Statement, ...]:
        """Statements that delete data."""
        return tuple(s for s in self.statements if s.destructive)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def blocked_by_data_loss(self) -> bool:
        """True when the plan deletes data and the caller did not allow it: do not apply."""
        return bool(self.destructive) and not self.allow_data_loss

    @property
    def is_empty(self) -> bool:
        return not self.statements

    @property
    def row_checks(self) -> tuple[RowCheck, ...]:
        """What the statements need of the target's rows, each once, in plan order."""
        return tuple(dict.fromkeys(s.check for s in self.statements if s.check is not None))


class ClientPlan(Plan):
    """A plan as an MCP client receives it. Blocked by data loss, it keeps every statement with its hazards but
    no script: a client gets nothing to copy and run that the CLI would refuse to print."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def script(self) -> str:
        """The whole plan as one SQL script (psql-ready); empty while the plan is blocked by data loss."""
        return "" if self.blocked_by_data_loss else super().script

    @computed_field  # type: ignore[prop-decorator]
    @property
    def script_withheld(self) -> str | None:
        """Why `script` is empty, when it is."""
        if not self.blocked_by_data_loss:
            return None
        return (
            f"script withheld: {len(self.destructive)} statement(s) would delete data (see destructive). Plan again "
            f"with {ALLOW_DATA_LOSS} if the loss is intended."
        )

    @classmethod
    def of(cls, plan: Plan) -> ClientPlan:
        return cls(**{name: getattr(plan, name) for name in Plan.model_fields})
