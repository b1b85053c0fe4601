"""The schema model: frozen, normalised values read from one database (see `tools.introspect`).

Every object has a stable `key`: its schema-qualified name, quoted the way PostgreSQL prints it
(`public.orders`, `public."Order"`). Objects scoped to a table (columns, constraints, triggers, policies)
use `<table key>.<name>`; functions add their identity arguments (`public.f(integer, text)`); privileges
read `<kind> <object key> TO <grantee>`. Nothing is identified by OID, so two databases compare.

Normalisation (done by the introspection, relied on by the diff):
- every collection is a tuple sorted by `key`; columns stay in table order (attnum);
- definitions (`pg_get_*def`, defaults, expressions) are read with `search_path = pg_catalog`, so every
  user object in them is schema-qualified whatever the session's search_path;
- objects created by an extension, internal triggers, and partition clones of constraints and triggers
  are left out (they follow from their parent); PostgreSQL 18's NOT NULL constraints are folded into
  `Column.not_null` (a name other than the default, declared on the column itself, is kept in
  `Column.not_null_name`, compared only between servers that both name them);
- owners are not compared, and a privilege held by an object's owner is not listed.

The model is data only: no I/O, no SQL generation.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar

from pgshift.tools.sql import qualified, quote_ident


@lru_cache(maxsize=1 << 17)
def qname(schema: str, name: str) -> str:
    """The key of a schema-level object: `schema.name`, each part quoted as needed."""
    return qualified(schema, name)


@lru_cache(maxsize=1 << 17)
def ident(name: str) -> str:
    """`quote_ident`, memoised: catalogs repeat the same names many times."""
    return quote_ident(name)


def member_key(parent_key: str, name: str) -> str:
    """The key of an object scoped to a table or view: `schema.table.name`."""
    return f"{parent_key}.{ident(name)}"


@dataclass(frozen=True, slots=True)
class Namespace:
    """A schema (`CREATE SCHEMA`)."""

    name: str
    comment: str | None = None

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", quote_ident(self.name))


@dataclass(frozen=True, slots=True)
class Extension:
    PLATFORM: ClassVar[str] = "installed"  # see `tools.diff.comparable_objects`

    name: str
    schema: str
    version: str
    comment: str | None = None
    # Installed by the platform for itself (a Supabase default extension in a managed schema): never drift
    # when only the target has it, and not compared when both sides have it that way.
    platform: bool = field(default=False, compare=False, repr=False)

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", quote_ident(self.name))


@dataclass(frozen=True, slots=True)
class Collation:
    schema: str
    name: str
    provider: str  # 'c' (libc), 'i' (icu), 'b' (builtin), 'd' (default)
    locale: str | None  # ICU locale or builtin locale; for libc the collate value
    ctype: str | None
    deterministic: bool
    comment: str | None = None

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", qname(self.schema, self.name))


@dataclass(frozen=True, slots=True)
class Enum:
    schema: str
    name: str
    values: tuple[str, ...]  # in sort order (enumsortorder)
    comment: str | None = None

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", qname(self.schema, self.name))


@dataclass(frozen=True, slots=True)
class CheckConstraint:
    """A named CHECK of a domain; `definition` is pg_get_constraintdef (e.g. `CHECK (VALUE > 0)`)."""

    name: str
    definition: str
    validated: bool = True


@dataclass(frozen=True, slots=True)
class Domain:
    schema: str
    name: str
    base_type: str  # format_type of the base type, with modifiers
    not_null: bool
    default: str | None
    collation: str | None  # qualified collation name when not the base type's default
    constraints: tuple[CheckConstraint, ...]  # sorted by name
    comment: str | None = None

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", qname(self.schema, self.name))


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute of a composite type."""

    name: str
    type: str
    collation: str | None = None


@dataclass(frozen=True, slots=True)
class CompositeType:
    schema: str
    name: str
    attributes: tuple[Attribute, ...]  # in declaration order
    comment: str | None = None

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", qname(self.schema, self.name))


@dataclass(frozen=True, slots=True)
class RangeType:
    """`CREATE TYPE ... AS RANGE`; its constructor functions are PostgreSQL's (not listed as functions)."""

    schema: str
    name: str
    subtype: str  # format_type of the subtype
    subtype_opclass: str | None = None  # qualified operator class when not the subtype's default
    collation: str | None = None  # qualified collation when not the subtype's own
    subtype_diff: str | None = None  # the function as regproc prints it (`float8mi`, `public.f`)
    multirange: str | None = None  # the multirange type's qualified name (PostgreSQL 14+)
    comment: str | None = None
    functions: tuple[str, ...] = field(default=(), compare=False, repr=False)  # keys of the user functions it calls

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", qname(self.schema, self.name))


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A plain aggregate (`CREATE AGGREGATE`); ordered-set and hypothetical ones are reported as not compared."""

    schema: str
    name: str
    identity_arguments: str  # pg_get_function_identity_arguments
    options: tuple[str, ...]  # `SFUNC = int4pl`, `STYPE = integer`, ... in CREATE AGGREGATE order
    comment: str | None = None
    functions: tuple[str, ...] = field(default=(), compare=False, repr=False)  # keys of the user functions it calls

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{qname(self.schema, self.name)}({self.identity_arguments})")


@dataclass(frozen=True, slots=True)
class SequenceOptions:
    """The options of a sequence or of an identity column's sequence."""

    data_type: str  # smallint | integer | bigint
    start: int
    increment: int
    min_value: int
    max_value: int
    cache: int
    cycle: bool


@dataclass(frozen=True, slots=True)
class Sequence:
    """A standalone or serial sequence (identity sequences live in `Column.identity`)."""

    schema: str
    name: str
    options: SequenceOptions
    owned_by: str | None  # column key `schema.table.column` (OWNED BY), else None
    comment: str | None = None

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", qname(self.schema, self.name))


@dataclass(frozen=True, slots=True)
class Identity:
    generation: str  # 'ALWAYS' | 'BY DEFAULT'
    options: SequenceOptions


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # format_type(atttypid, atttypmod): `character varying(120)`, `public.status_1`, `integer[]`
    not_null: bool
    default: str | None = None  # pg_get_expr of the default (None for generated columns)
    identity: Identity | None = None
    generated: str | None = None  # expression of a generated column
    generated_kind: str | None = None  # 'STORED' | 'VIRTUAL' (PostgreSQL 18) when generated
    collation: str | None = None  # qualified collation when it differs from the type's default
    inherited: bool = False  # True when the column comes only from a parent (attislocal = false)
    comment: str | None = None
    # PostgreSQL 18 names NOT NULL constraints: kept only when not the default `<table>_<column>_not_null`
    # (a partition detached keeps its parent's names), so PostgreSQL 15 and 18 models still compare.
    not_null_name: str | None = None


@dataclass(frozen=True, slots=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]  # in attnum order
    partitioned: bool = False  # relkind 'p'
    partition_key: str | None = None  # pg_get_partkeydef: `RANGE (logdate)`
    partition_of: str | None = None  # parent table key when this is a partition
    partition_bound: str | None = None  # `FOR VALUES FROM ('2005-02-01') TO ('2005-03-01')`, `DEFAULT`
    inherits: tuple[str, ...] = ()  # parent table keys (plain inheritance), in inhseqno order
    unlogged: bool = False
    rls_enabled: bool = False
    rls_forced: bool = False
    replica_identity: str = "DEFAULT"  # DEFAULT | NOTHING | FULL | INDEX <index key>
    options: tuple[str, ...] = ()  # reloptions, sorted (`fillfactor=70`)
    comment: str | None = None

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", qname(self.schema, self.name))

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True, slots=True)
class View:
    schema: str
    name: str
    materialized: bool
    definition: str  # pg_get_viewdef(oid, true): the SELECT, objects schema-qualified
    columns: tuple[Column, ...]  # output columns in order (type, comment)
    options: tuple[str, ...] = ()  # reloptions, sorted (`security_invoker=true`, `check_option=local`)
    comment: str | None = None

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", qname(self.schema, self.name))


@dataclass(frozen=True, slots=True)
class Constraint:
    """A table constraint: primary key, foreign key, unique, check or exclusion (constraint triggers are Triggers)."""

    schema: str
    table: str  # table key
    name: str
    type: str  # PRIMARY KEY | FOREIGN KEY | UNIQUE | CHECK | EXCLUDE
    definition: str  # pg_get_constraintdef: `FOREIGN KEY (z) REFERENCES public.orders(order_id) ON DELETE CASCADE`
    columns: tuple[str, ...] = ()  # constrained columns in key order
    validated: bool = True  # False for NOT VALID
    deferrable: bool = False
    initially_deferred: bool = False
    references: str | None = None  # FK: referenced table key (kept when it is in a managed schema, e.g. auth.users)
    referenced_columns: tuple[str, ...] = ()
    on_update: str | None = None  # FK: NO ACTION | RESTRICT | CASCADE | SET NULL | SET DEFAULT
    on_delete: str | None = None
    match: str | None = None  # FK: SIMPLE | FULL | PARTIAL
    index: str | None = None  # key of the index backing a PK / UNIQUE / EXCLUDE constraint
    comment: str | None = None

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", member_key(self.table, self.name))


@dataclass(frozen=True, slots=True)
class Index:
    schema: str
    name: str
    table: str  # key of the table or materialized view
    definition: str  # pg_get_indexdef: `CREATE UNIQUE INDEX x ON public.t USING btree (a) INCLUDE (b) WHERE ...`
    method: str  # btree | hash | gin | gist | brin | spgist | hnsw ...
    unique: bool
    primary: bool
    # Column names (unquoted); for an index with expressions, each entry as pg_get_indexdef(oid, n) prints it.
    # Opclass, order and collation are only in `definition`.
    key_columns: tuple[str, ...]
    include: tuple[str, ...] = ()  # INCLUDE columns
    predicate: str | None = None  # partial index WHERE clause
    constraint: str | None = None  # key of the constraint this index backs (then it is created by the constraint)
    parent_index: str | None = None  # key of the partitioned-table index it is attached to
    valid: bool = True
    comment: str | None = None

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", qname(self.schema, self.name))


@dataclass(frozen=True, slots=True)
class Function:
    """A function or procedure; overloads differ by `identity_arguments`."""

    schema: str
    name: str
    kind: str  # FUNCTION | PROCEDURE | WINDOW
    identity_arguments: str  # pg_get_function_identity_arguments: `i integer, t text[]`
    arguments: str  # pg_get_function_arguments (with defaults)
    result: str | None  # pg_get_function_result (`TABLE(a text, c integer)`, `trigger`); None for procedures
    language: str
    volatility: str  # IMMUTABLE | STABLE | VOLATILE
    strict: bool
    security_definer: bool
    leakproof: bool
    parallel: str  # SAFE | RESTRICTED | UNSAFE
    config: tuple[str, ...]  # proconfig (`search_path=public`), sorted
    body: str  # prosrc (or the SQL-standard body as printed)
    definition: str  # pg_get_functiondef: a complete CREATE OR REPLACE statement
    comment: str | None = None
    standard_body: bool = False  # a SQL-standard body (BEGIN ATOMIC / RETURN): parsed, its dependencies tracked

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{qname(self.schema, self.name)}({self.identity_arguments})")


@dataclass(frozen=True, slots=True)
class Trigger:
    schema: str
    table: str  # table or view key
    name: str
    definition: str  # pg_get_triggerdef
    timing: str  # BEFORE | AFTER | INSTEAD OF
    events: tuple[str, ...]  # INSERT | UPDATE | DELETE | TRUNCATE (UPDATE OF cols shows in definition)
    level: str  # ROW | STATEMENT
    function: str  # function key `schema.name()` without arguments' types: `public.touch_updated_at`
    when: str | None = None
    enabled: str = "O"  # tgenabled: O (origin), D (disabled), R (replica), A (always)
    comment: str | None = None

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", member_key(self.table, self.name))


@dataclass(frozen=True, slots=True)
class Policy:
    schema: str
    table: str  # table key
    name: str
    command: str  # ALL | SELECT | INSERT | UPDATE | DELETE
    permissive: bool
    roles: tuple[str, ...]  # sorted; ('public',) when for every role
    using: str | None = None
    with_check: str | None = None
    comment: str | None = None

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", member_key(self.table, self.name))


@dataclass(frozen=True, slots=True)
class Privilege:
    """Privileges one grantee holds on one object (owners' own privileges are not listed)."""

    PLATFORM: ClassVar[str] = "granted"  # see `tools.diff.comparable_objects`

    object_kind: str  # SCHEMA | TABLE | VIEW | MATERIALIZED VIEW | SEQUENCE | FUNCTION | PROCEDURE | COLUMN | TYPE
    object: str  # key of the object; for COLUMN the column key `schema.table.column`
    grantee: str  # role name, or PUBLIC
    privileges: tuple[str, ...]  # sorted: SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER, USAGE...
    grantable: tuple[str, ...] = ()  # the subset held WITH GRANT OPTION
    # Held by a role of the platform (Supabase's anon, authenticated...): never drift, but granted again when
    # the plan recreates its object (see `tools.plan.planner`).
    platform: bool = field(default=False, compare=False, repr=False)

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.object_kind} {self.object} TO {self.grantee}")


@dataclass(frozen=True, slots=True)
class DefaultPrivilege:
    """`ALTER DEFAULT PRIVILEGES FOR ROLE role [IN SCHEMA s] GRANT ... ON <object_type> TO grantee` (pg_default_acl).

    `privileges` is what `grantee` gets on every new object of that type `role` creates, compared with what
    PostgreSQL gives without any default privilege (EXECUTE on functions and USAGE on types to PUBLIC, for entries
    without a schema); only grantees whose set differs from that are listed, so an empty `privileges` is a revoked
    default (`REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC`). The role's own privileges are not listed.
    """

    PLATFORM: ClassVar[str] = "granted"  # grants to platform roles are never drift

    role: str
    schema: str | None  # None: every schema (the role's global default)
    object_type: str  # TABLES | SEQUENCES | FUNCTIONS | TYPES | SCHEMAS | LARGE OBJECTS
    grantee: str  # role name, or PUBLIC
    privileges: tuple[str, ...]  # sorted
    grantable: tuple[str, ...] = ()
    platform: bool = field(default=False, compare=False, repr=False)

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        where = f" IN SCHEMA {ident(self.schema)}" if self.schema is not None else ""
        grantee = "PUBLIC" if self.grantee == "PUBLIC" else ident(self.grantee)
        object.__setattr__(self, "key", f"FOR ROLE {ident(self.role)}{where} ON {self.object_type} TO {grantee}")


def builtin_default_privileges(object_type: str, grantee: str, schema: str | None) -> tuple[str, ...]:
    """What `grantee` gets on a new object without any default privilege (the creating role's own aside): EXECUTE
    on functions and USAGE on types to PUBLIC. An entry for one schema only adds to that, so it starts from nothing."""
    if schema is not None or grantee != "PUBLIC":
        return ()
    return {"FUNCTIONS": ("EXECUTE",), "TYPES": ("USAGE",)}.get(object_type, ())


@dataclass(frozen=True, slots=True)
class Publication:
    """A publication (`CREATE PUBLICATION`); its tables and schemas are `PublicationMember`s."""

    PLATFORM: ClassVar[str] = "installed"  # the platform's own (supabase_realtime) only counts when the source has it

    name: str
    all_tables: bool
    publish: tuple[str, ...]  # insert, update, delete, truncate (in that order)
    via_root: bool = False
    comment: str | None = None
    # Created by the platform for itself (Supabase's `supabase_realtime`): like a platform extension.
    platform: bool = field(default=False, compare=False, repr=False)

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", ident(self.name))


@dataclass(frozen=True, slots=True)
class PublicationMember:
    """A table of a publication (`ALTER PUBLICATION p ADD TABLE t (cols) WHERE (...)`), or a whole schema
    (`ADD TABLES IN SCHEMA s`, PostgreSQL 15+) when `table` is None. Keyed `p: schema.table`."""

    publication: str
    schema: str
    table: str | None  # table key; None for a whole schema
    columns: tuple[str, ...] = ()  # the column list, in column order; () for every column
    row_filter: str | None = None  # pg_get_expr of the WHERE clause

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        member = self.table if self.table is not None else f"TABLES IN SCHEMA {ident(self.schema)}"
        object.__setattr__(self, "key", f"{ident(self.publication)}: {member}")


@dataclass(frozen=True, slots=True)
class Dependency:
    """`kind key` depends on `on_kind on_key` (from pg_depend; e.g. a view on a table, a default on a sequence).

    Kinds use the names of `KINDS` (plus "column" for a single column). Only user objects in the model appear.
    """

    kind: str
    key: str
    on_kind: str
    on_key: str


@dataclass(frozen=True, slots=True)
class UncomparedObject:
    """An object of a kind pgshift reads but neither compares nor plans (a rule, a publication, ...).

    Listed so that a compare says what it did not look at. `detail` is the setting that defines it where the
    name alone does not (a column's storage, a publication's FOR ALL TABLES); it is part of the identity.
    """

    kind: str  # rule | event_trigger | statistics | foreign_table | publication | column_storage | ...
    name: str  # schema-qualified like the compared kinds' keys (`public.t.c`, `pub: public.t`)
    detail: str | None = None
    definition: str | None = None  # the rest of what defines it (a rule's text...): compared, not in the key

    key: str = field(init=False, compare=False, repr=False)  # cached at construction

    def __post_init__(self) -> None:
        detail = f" {self.detail}" if self.detail is not None else ""
        object.__setattr__(self, "key", f"{self.kind} {self.name}{detail}")


@dataclass(frozen=True, slots=True)
class Schema:
    """Everything read from one database. Each tuple is sorted by key (see `normalised`)."""

    namespaces: tuple[Namespace, ...] = ()
    extensions: tuple[Extension, ...] = ()
    collations: tuple[Collation, ...] = ()
    enums: tuple[Enum, ...] = ()
    domains: tuple[Domain, ...] = ()
    composite_types: tuple[CompositeType, ...] = ()
    sequences: tuple[Sequence, ...] = ()
    tables: tuple[Table, ...] = ()
    views: tuple[View, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    indexes: tuple[Index, ...] = ()
    functions: tuple[Function, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    policies: tuple[Policy, ...] = ()
    privileges: tuple[Privilege, ...] = ()
    default_privileges: tuple[DefaultPrivilege, ...] = ()
    range_types: tuple[RangeType, ...] = ()
    aggregates: tuple[Aggregate, ...] = ()
    publications: tuple[Publication, ...] = ()
    publication_members: tuple[PublicationMember, ...] = ()
    dependencies: tuple[Dependency, ...] = ()  # sorted; derived data, not diffed
    # Objects of kinds not compared (sorted by key): reported, never diffed; in the fingerprint only when any.
    uncompared: tuple[UncomparedObject, ...] = field(default=(), compare=False)
    # Not part of the model's identity (excluded from fingerprint and diff):
    server_version_num: int = field(default=0, compare=False)
    included_schemas: tuple[str, ...] = field(default=(), compare=False)
    supabase: bool = field(default=False, compare=False)  # has the auth, storage and extensions schemas
    # (name, version) of every extension version the server could install (pg_available_extension_versions);
    # empty when unknown.
    available_extensions: frozenset[tuple[str, str]] = field(default=frozenset(), compare=False)
    # (name, default version) of every extension the server could install (pg_available_extensions).
    default_extensions: frozenset[tuple[str, str]] = field(default=frozenset(), compare=False)

    def can_install(self, name: str, version: str) -> bool:
        """Whether this server can install (or update to) `version` of extension `name` (True when unknown)."""
        return not self.available_extensions or (name, version) in self.available_extensions

    def normalised(self) -> Schema:
        """The same schema with every collection sorted by key (introspection already returns this)."""
        updates: dict[str, Any] = {}
        for attr, _kind in COLLECTIONS:
            items = getattr(self, attr)
            updates[attr] = tuple(sorted(items, key=lambda o: o.key))
        updates["dependencies"] = tuple(sorted(set(self.dependencies), key=_dependency_sort_key))
        updates["uncompared"] = tuple(sorted(set(self.uncompared), key=lambda o: o.key))
        return dataclasses.replace(self, **updates)

    def objects(self, kind: str) -> tuple[Any, ...]:
        """The collection of one kind (see `KINDS`); columns are read from tables and views."""
        return getattr(self, _ATTR_OF_KIND[kind])  # type: ignore[no-any-return]

    def by_key(self, kind: str) -> dict[str, Any]:
        return {o.key: o for o in self.objects(kind)}

    def table(self, key: str) -> Table | None:
        return next((t for t in self.tables if t.key == key), None)

    def fingerprint(self) -> str:
        """A stable sha256 (hex) of the normalised model: equal schemas give equal fingerprints.

        Hashes the repr of every sorted collection (dataclass reprs list each compared field by name, in
        order; keys and the metadata fields are left out), which is deterministic for these value types.
        """
        digest = hashlib.sha256()
        norm = self.normalised()
        for attr, _kind in (*COLLECTIONS, ("dependencies", "dependency")):
            value = getattr(norm, attr)
            if value or attr not in _HASHED_ONLY_WHEN_ANY:
                digest.update(f"{attr}={value!r}\n".encode())
        if norm.uncompared:  # schemas without any keep the fingerprint they always had
            digest.update(f"uncompared={norm.uncompared!r}\n".encode())
        return digest.hexdigest()

    def __iter__(self) -> Iterator[Any]:
        for attr, _kind in COLLECTIONS:
            yield from getattr(self, attr)


def _dependency_sort_key(d: Dependency) -> tuple[str, str, str, str]:
    return (d.kind, d.key, d.on_kind, d.on_key)


# (attribute of Schema, kind name) for every diffable top-level collection, in creation order.
COLLECTIONS: tuple[tuple[str, str], ...] = (
    ("namespaces", "schema"),
    ("extensions", "extension"),
    ("collations", "collation"),
    ("enums", "enum"),
    ("domains", "domain"),
    ("composite_types", "composite_type"),
    ("range_types", "range_type"),
    ("sequences", "sequence"),
    ("tables", "table"),
    ("views", "view"),
    ("constraints", "constraint"),
    ("indexes", "index"),
    ("functions", "function"),
    ("aggregates", "aggregate"),
    ("triggers", "trigger"),
    ("policies", "policy"),
    ("privileges", "privilege"),
    ("publications", "publication"),
    ("publication_members", "publication_member"),
    ("default_privileges", "default_privilege"),
)
_ATTR_OF_KIND = {kind: attr for attr, kind in COLLECTIONS}
# Collections added after fingerprints were first handed out: a schema without any keeps its fingerprint.
_HASHED_ONLY_WHEN_ANY = frozenset(
    {"publications", "publication_members", "default_privileges", "range_types", "aggregates"}
)

# Every kind the diff knows: the collections in creation order, with "column" after "table". "column" is
# diffed on its own (keyed `schema.table.column`) and is not part of the "table" comparison; "view" covers views
# and materialized views.
KINDS: tuple[str, ...] = tuple(
    k for _attr, kind in COLLECTIONS for k in ((kind, "column") if kind == "table" else (kind,))
)


def to_plain(value: Any) -> Any:
    """A JSON-compatible copy of a model value (dataclasses to dicts, tuples to lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.compare}
    if isinstance(value, tuple | list):
        return [to_plain(v) for v in value]
    return value
