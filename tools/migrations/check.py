"""check_migration: prepare a migration for one environment, before anything runs there.

Split the script (author's text kept), rewrite it for the target with a reason per rewrite, lint it against the
target's tables, list what the target lacks (extensions, roles) and which statements cannot run in a transaction,
then dry-run it where nothing can last (see `tools.migrations.dryrun`). Only the dry run writes, and it never
commits.

Every rewrite is proven on the target before it runs (`prove_rewrite`, used here and by apply_migration): the
script with guards and the script without them are both dry-run in a rolled-back transaction, and the guarded one
is chosen only when both succeed and leave the same schema (equal fingerprints). Otherwise the script runs without
guards (the author's text, adapted to the target: Prisma's comments dropped, Supabase's extension schema), and
the check says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from pgshift.tools.databases import Databases
from pgshift.tools.errors import ConfigError, DatabaseError
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.migrations.dryrun import (
    DRY_RUN_LOCK_TIMEOUT_MS,
    DryRunResult,
    Runnable,
    dry_run_in_transaction,
    dry_run_on_shadow,
    shadow_instead,
)
from pgshift.tools.migrations.folder import script_file
from pgshift.tools.migrations.lint import LintFinding, lint
from pgshift.tools.migrations.parse import SqlStatement, StatementKind, TokenKind, is_word, name_at, split_statements
from pgshift.tools.migrations.rewrite import Rewrite, RewriteResult, RewrittenStatement, rewrite_for_target
from pgshift.tools.migrations.steps import Prepared, prepare
from pgshift.tools.untrusted import fence_text

# One catalog query per fact, each run once per check.
EXTENSIONS_SQL = """
SELECT name, installed_version FROM pg_catalog.pg_available_extensions
UNION
SELECT extname, extversion FROM pg_catalog.pg_extension
"""
ROLES_SQL = "SELECT rolname FROM pg_catalog.pg_roles"
TABLES_SQL = """
SELECT n.nspname AS schema, c.relname AS name
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
"""
SUPABASE_SCHEMAS_SQL = """
SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname IN ('auth', 'storage', 'extensions')
"""
_SEQUENCE_ADVANCING = frozenset({StatementKind.INSERT, StatementKind.MERGE, StatementKind.DO_BLOCK})
_ROLE_PSEUDO_NAMES = frozenset({"public", "current_user", "current_role", "session_user"})


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class CheckedStatement(Frozen):
    index: int = Field(description="1-based position in the script")
    line: int = Field(description="Line of the script where the statement starts")
    kind: StatementKind
    transactional: bool = Field(description="False when PostgreSQL refuses it inside a transaction")
    original: str = Field(description="The author's text")
    sql: str = Field(description="What would run: the author's text unless rewritten")
    rewrites: tuple[Rewrite, ...] = ()
    rerun_note: str | None = None


class RewriteProof(Frozen):
    status: Literal["proven", "refused", "not_needed", "not_run"] = Field(
        description="proven: the guarded script runs; refused: the script runs without guards; not_needed: no "
        "guard to prove; not_run: not dry-run here (apply_migration proves it before it runs)"
    )
    reason: str

    @property
    def guarded(self) -> bool:
        """Whether the guarded script is the one that runs."""
        return self.status in ("proven", "not_needed", "not_run")


@dataclass(frozen=True)
class Proven:
    """The script chosen to run, why, and the dry run of it made while proving (None: none was made)."""

    rewritten: RewriteResult
    proof: RewriteProof
    dry_run: DryRunResult | None = None


class Missing(Frozen):
    name: str
    statement: int
    line: int


class CheckResult(Frozen):
    environment: str
    source: str = Field(description="The migration file, or 'inline SQL'")
    supabase_target: bool = Field(description="Whether the target was treated as a Supabase database")
    statements: tuple[CheckedStatement, ...]
    rewrites: tuple[Rewrite, ...] = Field(description="Every rewrite with its reason, in script order")
    script: str = Field(description="The rewritten script: what apply_migration runs")
    rewrite_proof: RewriteProof = Field(description="Whether the guards were proven equivalent on the target")
    lint: tuple[LintFinding, ...]
    missing_extensions: tuple[Missing, ...] = Field(description="Extensions the target can neither find nor create")
    missing_roles: tuple[Missing, ...] = Field(description="Roles the script grants to or names that do not exist")
    non_transactional: tuple[int, ...] = Field(description="Statements that cannot run inside a transaction")
    dry_run: DryRunResult | None = None
    blockers: tuple[str, ...] = Field((), description="Why applying this now would fail (empty: ready)")
    summary: str = ""

    @property
    def ok(self) -> bool:
        return not self.blockers


def read_migration_source(sql: str | None, migration: str | None) -> tuple[str, str]:
    """(script, source label) from exactly one of inline SQL or a migration file / folder holding migration.sql."""
    if (sql is None) == (migration is None):
        raise ConfigError("pass exactly one of `sql` (the script) or `migration` (a file or migration folder)")
    if sql is not None:
        return sql, "inline SQL"
    assert migration is not None
    path = script_file(migration)  # a folder's migration.sql must resolve inside that folder
    if not path.is_file():
        raise ConfigError(f"migration not found: {path} (pass a .sql file or a folder holding migration.sql)")
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read migration {path}: {exc}") from None


def _extension_of(s: SqlStatement) -> str | None:
    if s.kind is not StatementKind.CREATE_EXTENSION:
        return None
    i = 2 + (3 if len(s.tokens) > 2 and is_word(s.tokens[2], "IF") else 0)
    name = name_at(s.tokens, i, s.text)
    return name.parts[-1] if name else None


def _names_after(s: SqlStatement, start: int, stop: Sequence[str]) -> list[str]:
    """Comma-separated role names from token `start`, up to a word of `stop`."""
    names: list[str] = []
    for t in s.tokens[start:]:
        if t.kind is TokenKind.WORD and t.upper in stop:
            break
        if t.kind in (TokenKind.WORD, TokenKind.IDENT) and not (t.kind is TokenKind.WORD and t.upper == "GROUP"):
            names.append(t.name)
    return names


def referenced_roles(s: SqlStatement) -> list[str]:
    """Roles a statement names: grantees, policy roles, new owners, schema authorization."""
    toks = s.tokens
    found: list[str] = []
    if s.kind in (StatementKind.GRANT, StatementKind.REVOKE):
        keyword = "TO" if s.kind is StatementKind.GRANT else "FROM"
        at = next((i for i, t in enumerate(toks) if is_word(t, keyword) and i > 1), None)
        if at is not None:
            found = _names_after(s, at + 1, ("WITH", "GRANTED", "CASCADE", "RESTRICT"))
    elif s.kind in (StatementKind.CREATE_POLICY, StatementKind.ALTER_POLICY):
        at = next((i for i, t in enumerate(toks) if is_word(t, "TO")), None)
        if at is not None:
            found = _names_after(s, at + 1, ("USING", "WITH"))
    elif s.kind is StatementKind.CREATE_SCHEMA:
        at = next((i for i, t in enumerate(toks) if is_word(t, "AUTHORIZATION")), None)
        if at is not None and at + 1 < len(toks):
            found = [toks[at + 1].name]
    elif toks and is_word(toks[0], "ALTER"):
        at = next((i for i, t in enumerate(toks) if is_word(t, "OWNER")), None)
        if at is not None and at + 2 < len(toks) and is_word(toks[at + 1], "TO"):
            found = [toks[at + 2].name]
    return [r for r in found if r not in _ROLE_PSEUDO_NAMES]


def _created_role(s: SqlStatement) -> str | None:
    if s.kind is not StatementKind.CREATE_ROLE:
        return None
    name = name_at(s.tokens, 2, s.text)
    return name.parts[-1] if name else None


def find_missing(
    statements: Sequence[SqlStatement], extensions: set[str], roles: set[str]
) -> tuple[list[Missing], list[Missing]]:
    """Extensions and roles the script needs that the target lacks (counting those the script creates)."""
    missing_ext: list[Missing] = []
    missing_roles: list[Missing] = []
    roles = set(roles)
    for index, s in enumerate(statements, start=1):
        ext = _extension_of(s)
        if ext is not None and ext not in extensions:
            missing_ext.append(Missing(name=ext, statement=index, line=s.line))
        created = _created_role(s)
        if created:
            roles.add(created)
        for role in referenced_roles(s):
            if role not in roles:
                missing_roles.append(Missing(name=role, statement=index, line=s.line))
                roles.add(role)  # report each role once
    return missing_ext, missing_roles


def _runnables(statements: Sequence[SqlStatement], rewritten: RewriteResult) -> list[Runnable]:
    return [
        Runnable(
            index=r.index, line=r.line, sql=r.sql, transactional=s.transactional, tx_control=s.tx_control is not None
        )
        for s, r in zip(statements, rewritten.statements, strict=True)
    ]


def _where(d: DryRunResult) -> str:
    fail = d.failure
    if fail is None:
        return ""
    at = f"at statement {fail.statement} (line {fail.line})" if fail.statement else "before any statement"
    return f"{at}: {fail.message}"


def _judge(plain: DryRunResult, guarded: DryRunResult) -> RewriteProof:
    """Whether the guarded script did on the target exactly what the script without guards did."""
    if not plain.succeeded:
        return RewriteProof(
            status="refused",
            reason=f"the script as written fails on the target {_where(plain)}; guards that made it succeed would "
            "change what it does, so it runs as written",
        )
    if not guarded.succeeded:
        return RewriteProof(
            status="refused",
            reason=f"the guarded script fails on the target {_where(guarded)} where the script as written does not, "
            "so it runs as written",
        )
    if plain.schema_fingerprint is None or plain.schema_fingerprint != guarded.schema_fingerprint:
        return RewriteProof(
            status="refused",
            reason="the guarded script leaves another schema on the target than the script as written (a guard "
            "skipped something the author's text does), so it runs as written",
        )
    return RewriteProof(
        status="proven",
        reason="proven on the target: the guarded script and the script as written both succeed and leave the same "
        "schema (both dry-run in rolled-back transactions)",
    )


async def _unprovable(
    db: Databases, environment: str, statements: Sequence[SqlStatement], guarded: RewriteResult
) -> str | None:
    """Why the guarded script cannot be proven in a transaction on the target (None: it can)."""
    non_tx = [str(i) for i, s in enumerate(statements, start=1) if not s.transactional and s.tx_control is None]
    if non_tx:
        return f"statement(s) {', '.join(non_tx)} cannot run inside a transaction, so the guards cannot be proven"
    if db.environment(environment).read_only:
        return f"'{environment}' is read_only: nothing runs there, even rolled back, so the guards cannot be proven"
    return await shadow_instead(db, environment, _runnables(statements, guarded))


async def prove_rewrite(
    db: Databases,
    environment: str,
    statements: Sequence[SqlStatement],
    *,
    supabase: bool,
    conn: asyncpg.Connection | None = None,
    lock_timeout_ms: int = DRY_RUN_LOCK_TIMEOUT_MS,
) -> Proven:
    """The script to run on `environment`: the guarded one when proven to do what the script without guards does.

    Both are dry-run on `conn` (a new connection when None), each in a transaction that is rolled back, and must
    succeed and leave the same schema. When they cannot be dry-run there, or differ, the script without guards
    is chosen, with the reason.
    """
    guarded = rewrite_for_target(statements, supabase=supabase)
    plain = rewrite_for_target(statements, supabase=supabase, guards=False)
    if all(g.sql == p.sql for g, p in zip(guarded.statements, plain.statements, strict=True)):
        return Proven(guarded, RewriteProof(status="not_needed", reason="no guard was added: nothing to prove"))
    why = await _unprovable(db, environment, statements, guarded)
    if why is not None:
        return Proven(plain, RewriteProof(status="refused", reason=f"{why}; the script runs without guards"))
    if conn is None:
        async with db.connection(environment) as own:
            return await _prove_on(own, db, statements, guarded, plain, lock_timeout_ms)
    return await _prove_on(conn, db, statements, guarded, plain, lock_timeout_ms)


async def _prove_on(
    conn: asyncpg.Connection,
    db: Databases,
    statements: Sequence[SqlStatement],
    guarded: RewriteResult,
    plain: RewriteResult,
    lock_timeout_ms: int,
) -> Proven:
    secrets_ = db.secrets()
    plain_dry = await dry_run_in_transaction(
        conn, _runnables(statements, plain), lock_timeout_ms=lock_timeout_ms, secrets_=secrets_
    )
    guarded_dry = await dry_run_in_transaction(
        conn, _runnables(statements, guarded), lock_timeout_ms=lock_timeout_ms, secrets_=secrets_
    )
    proof = _judge(plain_dry, guarded_dry)
    return Proven(guarded, proof, guarded_dry) if proof.guarded else Proven(plain, proof, plain_dry)


async def prepare_proven(
    db: Databases,
    environment: str,
    conn: asyncpg.Connection | None,
    statements: Sequence[SqlStatement],
    *,
    rewrite: bool,
) -> tuple[Prepared, RewriteProof | None]:
    """What apply_migration runs: the statements as `prove_rewrite` chooses them (as written when not `rewrite`).

    `conn` is a writable connection to the target (None: one is opened for the proof).
    """
    if conn is None:
        async with db.connection(environment) as own:
            return await prepare_proven(db, environment, own, statements, rewrite=rewrite)
    supabase = await conn.fetchval(SUPABASE_SCHEMAS_SQL) == 3
    if not rewrite:
        return prepare(statements, supabase=supabase, rewrite=False), None
    proven = await prove_rewrite(db, environment, statements, supabase=supabase, conn=conn)
    return prepared_from(statements, proven.rewritten.statements, supabase), proven.proof


def prepared_from(
    statements: Sequence[SqlStatement], chosen: Sequence[RewrittenStatement | CheckedStatement], supabase: bool
) -> Prepared:
    """The statements with the text chosen to run (`tools.migrations.steps.Prepared`)."""
    return Prepared(
        statements=tuple(replace(s, text=r.sql) for s, r in zip(statements, chosen, strict=True)),
        originals=tuple(s.text for s in statements),
        reasons=tuple(tuple(w.reason for w in r.rewrites) if r.sql != r.original else () for r in chosen),
        supabase=supabase,
    )


def _summary(result_blockers: list[str], lint_findings: Sequence[LintFinding], rewrites: int, n: int) -> str:
    errors = sum(1 for f in lint_findings if f.severity == "error")
    warnings = len(lint_findings) - errors
    if result_blockers:
        head = "NOT ready: " + "; ".join(result_blockers)
    elif errors:
        head = "no blocker, but read the lint error(s) before applying: they name what the migration would break"
    else:
        head = "ready to apply"
    return f"{n} statement(s), {rewrites} rewrite(s), lint: {errors} error(s) and {warnings} warning(s); {head}"


async def check_migration(
    db: Databases,
    environment: str,
    sql: str | None = None,
    migration: str | None = None,
    *,
    dry_run: bool = True,
    supabase: bool | None = None,
    shadow: LocalPostgres | None = None,
    lock_timeout_ms: int = DRY_RUN_LOCK_TIMEOUT_MS,
) -> CheckResult:
    """Prepare a migration for `environment`: statements, rewrites, lint, what the target lacks, and a dry run.

    `supabase` forces (or forbids) the Supabase rewrites; by default the target is a Supabase database when it
    has the auth, storage and extensions schemas. `shadow` is a running local server for scripts that cannot be
    dry-run in a transaction (one is started when needed otherwise). `lock_timeout_ms` bounds how long the dry
    run waits for a lock on the target.
    """
    script, source = read_migration_source(sql, migration)
    statements = split_statements(script)
    if not statements:
        raise ConfigError(f"{source} holds no SQL statement (only comments or whitespace)")
    db.environment(environment)  # an unknown environment is a ConfigError before anything runs
    try:
        async with db.read_only(environment, snapshot=True) as conn:
            ext_rows = await conn.fetch(EXTENSIONS_SQL)
            role_rows = await conn.fetch(ROLES_SQL)
            table_rows = await conn.fetch(TABLES_SQL)
            supabase_schemas = await conn.fetchval(SUPABASE_SCHEMAS_SQL)
    except asyncpg.PostgresError as exc:
        raise DatabaseError(
            db.scrub(f"reading the catalog of '{environment}' failed: {fence_text(exc)}; nothing was changed"),
            getattr(exc, "sqlstate", None),
        ) from None
    extensions = {r["name"] for r in ext_rows}
    roles = {r["rolname"] for r in role_rows}
    tables = {f"{r['schema']}.{r['name']}" for r in table_rows}
    is_supabase = supabase if supabase is not None else supabase_schemas == 3

    findings = lint(statements, existing_tables=tables)
    missing_ext, missing_roles = find_missing(statements, extensions, roles)
    non_tx = tuple(i for i, s in enumerate(statements, start=1) if not s.transactional and s.tx_control is None)

    blockers: list[str] = []
    for m in missing_ext:
        blockers.append(
            f"extension '{m.name}' is not available on '{environment}' (statement {m.statement}, line {m.line})"
        )
    for m in missing_roles:
        blockers.append(f"role '{m.name}' does not exist on '{environment}' (statement {m.statement}, line {m.line})")
    for f in findings:
        if f.rule.value == "ban-concurrent-index-creation-in-transaction":
            blockers.append(f"line {f.line}: {f.message}")

    if not dry_run or missing_ext or missing_roles:
        proven = Proven(
            rewrite_for_target(statements, supabase=is_supabase),
            RewriteProof(status="not_run", reason="not dry-run here: apply_migration proves the guards before it runs"),
        )
    else:
        proven = await prove_rewrite(db, environment, statements, supabase=is_supabase, lock_timeout_ms=lock_timeout_ms)
    rewritten = proven.rewritten
    result_dry: DryRunResult | None = None
    if dry_run:
        result_dry = proven.dry_run or await _dry_run(
            db, environment, statements, rewritten, bool(missing_ext or missing_roles), shadow, lock_timeout_ms
        )
        if result_dry.mode == "transaction" and (
            writes := [s.line for s in statements if s.kind in _SEQUENCE_ADVANCING]
        ):
            note = (
                f"the statement(s) at line(s) {', '.join(map(str, writes))} may draw sequence values: PostgreSQL "
                "does not roll back nextval(), so those sequences stay advanced (gaps only, no data)"
            )
            result_dry = result_dry.model_copy(update={"notes": (*result_dry.notes, note)})
        if result_dry.failure is not None:
            blockers.append(f"dry run failed {_where(result_dry)}")

    return CheckResult(
        environment=environment,
        source=source,
        supabase_target=is_supabase,
        statements=tuple(
            CheckedStatement(
                index=r.index,
                line=r.line,
                kind=r.kind,
                transactional=r.transactional,
                original=r.original,
                sql=r.sql,
                rewrites=r.rewrites,
                rerun_note=r.rerun_note,
            )
            for r in rewritten.statements
        ),
        rewrites=rewritten.rewrites,
        script=rewritten.script,
        rewrite_proof=proven.proof,
        lint=tuple(findings),
        missing_extensions=tuple(missing_ext),
        missing_roles=tuple(missing_roles),
        non_transactional=non_tx,
        dry_run=result_dry,
        blockers=tuple(blockers),
        summary=_summary(blockers, findings, len(rewritten.rewrites), len(statements)),
    )


async def _dry_run(
    db: Databases,
    environment: str,
    statements: Sequence[SqlStatement],
    rewritten: RewriteResult,
    lacking: bool,
    shadow: LocalPostgres | None,
    lock_timeout_ms: int,
) -> DryRunResult:
    """The dry run of the chosen script: on the target in a rolled-back transaction, or on a shadow copy."""
    env = db.environment(environment)
    runnables = _runnables(statements, rewritten)
    non_tx = [str(i) for i, s in enumerate(statements, start=1) if not s.transactional and s.tx_control is None]
    if lacking:
        return DryRunResult(
            mode="not_run",
            succeeded=False,
            statements_run=0,
            notes=("not run: the target lacks what the script needs (see missing_extensions / missing_roles)",),
        )
    if non_tx or env.read_only or (unchecked := await shadow_instead(db, environment, runnables)):
        why = (
            f"statement(s) {', '.join(non_tx)} cannot run inside a transaction"
            if non_tx
            else f"'{environment}' is read_only: no statement runs there, even rolled back"
            if env.read_only
            else str(unchecked)
        )
        async with db.read_only(environment) as conn:
            shadow_result = await dry_run_on_shadow(
                conn, env.libpq_url, runnables, shadow=shadow, shadow_url=env.shadow_url, secrets_=db.secrets()
            )
        return shadow_result.model_copy(update={"notes": (f"shadow dry run: {why}", *shadow_result.notes)})
    async with db.connection(environment) as conn:
        return await dry_run_in_transaction(conn, runnables, lock_timeout_ms=lock_timeout_ms, secrets_=db.secrets())


def render_text(result: CheckResult) -> str:
    """The check as plain text, for the CLI (`pgshift check`)."""
    out = [f"check of {result.source} against '{result.environment}': {result.summary}"]
    out.append(f"rewrite proof ({result.rewrite_proof.status}): {result.rewrite_proof.reason}")
    for st in result.statements:
        flag = "" if st.transactional else "  [cannot run in a transaction]"
        out.append(f"  {st.index:>3}. line {st.line:<5} {st.kind.value}{flag}")
        out.extend(f"         rewrite ({r.kind.value}): {r.reason}" for r in st.rewrites)
        if st.rerun_note:
            out.append(f"         note: {st.rerun_note}")
    if result.lint:
        out.append("lint:")
        out.extend(
            f"  line {f.line:<5} {f.severity:<7} {f.rule.value} on {f.object}: {f.message}. Instead: {f.help}"
            for f in result.lint
        )
    for m in result.missing_extensions:
        out.append(f"missing extension: {m.name} (line {m.line})")
    for m in result.missing_roles:
        out.append(f"missing role: {m.name} (line {m.line})")
    if result.dry_run is not None:
        d = result.dry_run
        state = "succeeded" if d.succeeded else "FAILED" if d.failure else "not run"
        out.append(f"dry run ({d.mode}): {state}, {d.statements_run} statement(s) ran, {d.duration_ms} ms")
        if d.failure is not None:
            out.append(f"  failed at statement {d.failure.statement} (line {d.failure.line}): {d.failure.message}")
        for c in d.changes.data:
            fields = f" ({', '.join(c.fields)})" if c.fields else ""
            out.append(f"  {c.change:<8} {c.kind} {c.key}{fields}")
        out.extend(f"  note: {n}" for n in d.notes)
    out.extend(f"BLOCKER: {b}" for b in result.blockers)
    return "\n".join(out)
