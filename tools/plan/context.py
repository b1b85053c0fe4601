"""What every generator may consult: both schemas, the options, and lookups derived from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from pgshift.tools.diff import Equivalences, equivalences_for
from pgshift.tools.model import Column, Enum, Schema, Table

Node = tuple[str, str]  # (kind, key)


def base_type(type_name: str) -> str:
    """`public.e[]` -> `public.e` (the element type of an array type as format_type prints it)."""
    while type_name.endswith("[]"):
        type_name = type_name[:-2]
    return type_name


@dataclass
class Context:
    source: Schema  # the schema we want
    target: Schema  # the schema we have
    online: bool = False
    lock_timeout_ms: int = 3000
    equivalences: Equivalences = field(default_factory=lambda: equivalences_for(Schema(), Schema()))
    # Filled in by the planner before generation:
    gone: set[Node] = field(default_factory=set)  # target objects that disappear (removed or recreated)
    created_tables: set[str] = field(default_factory=set)  # table keys created (or recreated) by the plan

    @property
    def target_version(self) -> int:
        return self.target.server_version_num or 180000

    @cached_property
    def source_tables(self) -> dict[str, Table]:
        return {t.key: t for t in self.source.tables}

    @cached_property
    def target_tables(self) -> dict[str, Table]:
        return {t.key: t for t in self.target.tables}

    @cached_property
    def enum_keys(self) -> set[str]:
        return {e.key for e in self.source.enums} | {e.key for e in self.target.enums}

    @cached_property
    def target_enums(self) -> dict[str, Enum]:
        return {e.key: e for e in self.target.enums}

    def is_enum(self, type_name: str) -> bool:
        return base_type(type_name) in self.enum_keys

    def online_table(self, table_key: str) -> bool:
        """Online techniques apply to tables that already hold rows (not new, not partitioned)."""
        table = self.target_tables.get(table_key)
        return self.online and table is not None and table_key not in self.created_tables and not table.partitioned

    def columns_of_type(self, schema: Schema, type_key: str) -> list[tuple[Table, Column]]:
        """The columns of `schema` (its own, not inherited) whose type, or element type, is `type_key`, in table
        then column order. Looked up in an index built once per schema of the plan (this is asked per changed type,
        and per step in the ordering: a scan of every column each time made the planner quadratic)."""
        if schema is self.target:
            return list(self._target_columns_by_type.get(type_key, ()))
        if schema is self.source:
            return list(self._source_columns_by_type.get(type_key, ()))
        return list(_columns_by_type(schema).get(type_key, ()))

    @cached_property
    def _target_columns_by_type(self) -> dict[str, list[tuple[Table, Column]]]:
        return _columns_by_type(self.target)

    @cached_property
    def _source_columns_by_type(self) -> dict[str, list[tuple[Table, Column]]]:
        return _columns_by_type(self.source)

    def lock_timeout(self) -> int | None:
        return self.lock_timeout_ms if self.online else None


def _columns_by_type(schema: Schema) -> dict[str, list[tuple[Table, Column]]]:
    """Every column of its own (not inherited) of `schema`, by base type, in table then column order."""
    out: dict[str, list[tuple[Table, Column]]] = {}
    for t in schema.tables:
        for c in t.columns:
            if not c.inherited:
                out.setdefault(base_type(c.type), []).append((t, c))
    return out
