"""Tool registration: thin typed wrappers over the engine in `tools/`, with honest annotations.

Every wrapper goes through `guarded`, which turns our errors (and any PostgreSQL error that escaped)
into a tool error the assistant can read, scrubbed of secrets. Protocol misuse stays a protocol error.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Generic, ParamSpec, TypeVar

import asyncpg
from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp.server.mcpserver.tools.base import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema
from pydantic_core import ErrorDetails

from pgshift.server.app import AppState
from pgshift.server.config import CONFIGURE_NEXT_STEP
from pgshift.server.progress import mcp_progress
from pgshift.tools import apply, catalog, compare, execute
from pgshift.tools import deploy as deploying
from pgshift.tools.approval import ApprovalRequest, Drafts, describe
from pgshift.tools.errors import ConfigError, NotAllowed, PgshiftError
from pgshift.tools.migrations import check
from pgshift.tools.migrations.folder import checked_path, contained
from pgshift.tools.model import KINDS
from pgshift.tools.undo.rollback import RollbackResult
from pgshift.tools.untrusted import INLINE_NOTICE, answer_boundary, fence, fence_text, is_fenced

log = logging.getLogger("pgshift")

P = ParamSpec("P")
R = TypeVar("R")

READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
# Runs statements on the target but always rolls back: not read-only (it takes locks), changes nothing.
DRY_RUN = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)

Env = Annotated[str, Field(description="Name of a configured environment (see list_environments), e.g. 'local'")]


def _known_kind(value: str) -> str:
    if value not in KINDS:
        raise ValueError(f"'{value}' is not an object kind; use one of {', '.join(KINDS)}")
    return value


Kind = Annotated[str, AfterValidator(_known_kind), WithJsonSchema({"type": "string", "enum": list(KINDS)})]
"""An object kind: enumerated in the tool's schema, and refused by name when unknown."""

APPROVAL_ID = "The approval_id a previous call returned, once a person approved it (you cannot approve it yourself)"


def project_path(path: str | None) -> str | None:
    """A file or folder named by the client must resolve (symbolic links followed) inside the server's working
    directory, the project; a NUL byte or an unresolvable path is a ConfigError. Returned unchanged."""
    if path is None:
        return None
    root = Path.cwd().resolve()
    named = root / checked_path(path)  # a NUL byte is a ConfigError of its own
    try:
        contained(named, root)
    except ConfigError:
        raise ConfigError(
            f"path {path!r} is outside the project directory {root} (symbolic links followed) or cannot be "
            "resolved: refused, nothing was read"
        ) from None
    return path


class Approval(BaseModel):
    approve: bool = Field(description="Run it now")


def can_elicit(ctx: Context) -> bool:
    """The client declared form elicitation (a bare `elicitation: {}` counts)."""
    caps = ctx.client_capabilities
    el = caps.elicitation if caps is not None else None
    return el is not None and (el.form is not None or el.url is None)


def person_approved(answer: ElicitationResult[Approval] | None) -> bool:
    """Only an accepted answer with approve=true approves; decline, cancel or approve=false do not."""
    return isinstance(answer, AcceptedElicitation) and answer.data is not None and answer.data.approve


Answer = TypeVar("Answer", execute.ExecuteResult, apply.ApplyResult, deploying.DeployResult, RollbackResult)


@dataclass(frozen=True)
class Draft(Generic[Answer]):
    """A protected write's first answer and the approval request it would file: drafted, not filed, to ask."""

    result: Answer
    request: ApprovalRequest


def drafted(first: Answer, drafts: Drafts) -> Draft[Answer] | None:
    if first.status != "confirmation_required" or drafts.drafted is None:
        return None
    return Draft(first, drafts.drafted)


def ask_person(draft: Draft[Any] | None) -> Elicit[Approval] | None:
    """The question about exactly the drafted request (no id, no clock: the same text on every round)."""
    return None if draft is None else Elicit(f"Approve this write?\n\n{describe(draft.request)}", Approval)


DECLINED = (
    "The person declined (or cancelled) when asked: nothing was run and nothing was filed that could be approved "
    "later. Do not retry unless the person asks for it."
)


async def settle(
    ctx: Context,
    draft: Draft[Answer],
    answer: ElicitationResult[Approval] | None,
    run: Callable[[str | None], Awaitable[Answer]],
) -> Answer:
    """Act on the person's answer: approved, the request is filed, approved (if it is still what the person was
    shown) and run once; declined, nothing is filed."""
    if not person_approved(answer):
        return draft.result.model_copy(update={"approval_id": None, "message": DECLINED})
    filed = await run(None)
    if filed.approval_id is None:
        return filed  # nothing needs approval any more (already applied, up to date)
    approvals = state(ctx).approvals
    try:
        approvals.approve(filed.approval_id, shown=draft.request)
    except NotAllowed:
        approvals.withdraw(filed.approval_id)
        raise NotAllowed(
            "the statements or the target changed while the person was being asked: nothing was run. Call again "
            "to ask them about the new statements."
        ) from None
    return await run(filed.approval_id)


def state(ctx: Context) -> AppState:
    st = ctx.request_context.lifespan_context
    assert isinstance(st, AppState)
    return st


def tool_error(message: str) -> ToolError:
    """A tool error; when it quotes database text (fenced), it says how to read the fence."""
    return ToolError(f"{message} ({INLINE_NOTICE})" if is_fenced(message) else message)


def guarded(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Report failures as tool errors with a clear, secret-free message; one fence boundary per answer."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = next((a for a in [*args, *kwargs.values()] if isinstance(a, Context)), None)
        scrub: Callable[[str], str] = state(ctx).db.scrub if ctx is not None else (lambda s: s)
        if ctx is not None and state(ctx).config_problem is not None:
            raise ToolError(str(state(ctx).config_problem))
        with answer_boundary():
            try:
                return await fn(*args, **kwargs)
            except ConfigError as exc:
                nothing = ctx is not None and not state(ctx).db.names()
                raise tool_error(scrub(f"{exc}. {CONFIGURE_NEXT_STEP}" if nothing else str(exc))) from None
            except PgshiftError as exc:
                raise tool_error(scrub(str(exc))) from None
            except asyncpg.PostgresError as exc:
                sqlstate = getattr(exc, "sqlstate", "?")
                raise tool_error(scrub(f"PostgreSQL error {sqlstate}: {fence_text(exc)}")) from None
            except (asyncpg.InterfaceError, OSError) as exc:
                raise tool_error(scrub(f"database connection problem ({type(exc).__name__}): {exc}")) from None

    return wrapper


# Resolvers: with a client that supports elicitation, a protected write drafts its approval request before the tool
# body runs (`draft_*`, nothing is filed or run), the person is asked about exactly that (`ask_*`), and the body
# settles their answer.
_DRAFTING_ERRORS = (PgshiftError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


async def draft_execute(
    ctx: Context, environment: str, sql: str, write: bool, approval_id: str | None
) -> Draft[execute.ExecuteResult] | None:
    if approval_id is not None or not write or not can_elicit(ctx):
        return None
    st, drafts = state(ctx), Drafts()
    try:
        if not st.db.environment(environment).protected:
            return None  # never run anything here: only a protected write answers without running
        return drafted(await execute.execute_sql(st.db, drafts, environment, sql, write=True), drafts)
    except _DRAFTING_ERRORS:
        return None  # the tool body raises the same error, as a clear tool error


def ask_execute(
    first: Annotated[Draft[execute.ExecuteResult] | None, Resolve(draft_execute)],
) -> Elicit[Approval] | None:
    return ask_person(first)


async def draft_apply(
    ctx: Context,
    environment: str,
    name: str,
    sql: str | None,
    migration: str | None,
    version: str | None,
    approval_id: str | None,
    dry_run: bool,
) -> Draft[apply.ApplyResult] | None:
    if approval_id is not None or dry_run or not can_elicit(ctx):
        return None
    st, drafts = state(ctx), Drafts()
    try:
        if not st.db.environment(environment).protected:
            return None
        path = project_path(migration)
        return drafted(
            await apply.apply_migration(st.db, environment, name, sql, path, version, approvals=drafts), drafts
        )
    except _DRAFTING_ERRORS:
        return None


def ask_apply(first: Annotated[Draft[apply.ApplyResult] | None, Resolve(draft_apply)]) -> Elicit[Approval] | None:
    return ask_person(first)


async def draft_deploy(
    ctx: Context, environment: str, directory: str | None, approval_id: str | None
) -> Draft[deploying.DeployResult] | None:
    if approval_id is not None or not can_elicit(ctx):
        return None
    st, drafts = state(ctx), Drafts()
    try:
        if not st.db.environment(environment).protected:
            return None
        return drafted(await deploying.deploy(st.db, environment, project_path(directory), approvals=drafts), drafts)
    except _DRAFTING_ERRORS:
        return None


def ask_deploy(
    first: Annotated[Draft[deploying.DeployResult] | None, Resolve(draft_deploy)],
) -> Elicit[Approval] | None:
    return ask_person(first)


MIGRATIONS_PAGE = 200
"""Migrations per list_migrations page: about 10,000 tokens."""


class MigrationPage(deploying.MigrationStatus):
    """list_migrations as an MCP client receives it: every environment's counts, one page of the migrations."""

    total: int = Field(description="Migrations in all, local and recorded only in a database")
    next_offset: int | None = Field(default=None, description="Pass as offset for the next page")


def migration_page(status: deploying.MigrationStatus, limit: int, offset: int) -> MigrationPage:
    """One page of the migrations (the whole status stays with the engine's other callers)."""
    rows = status.migrations.data
    end = offset + limit
    return MigrationPage(
        **{**dict(status), "migrations": fence(rows[offset:end])},
        total=len(rows),
        next_offset=end if end < len(rows) else None,
    )


APPLY_STATEMENTS_BYTES = 48_000
"""apply_migration's statements per answer: about 12,000 tokens (the rest of the answer is small)."""


class ApplyAnswer(apply.ApplyResult):
    """apply_migration as an MCP client receives it: the statements cut, in order, at a byte budget."""

    statements_total: int = Field(description="Statements in the migration; `statements` holds the first of them")
    statements_note: str | None = Field(None, description="Why `statements` is not all of them, and where they are")


def apply_answer(result: apply.ApplyResult) -> ApplyAnswer:
    """The engine's result with at most APPLY_STATEMENTS_BYTES of statements (at least one); nothing else changes."""
    total = len(result.statements)
    shown = compare._end(compare._sizes(result.statements), 0, total, APPLY_STATEMENTS_BYTES)
    note = (
        f"only the first {shown} of {total} statements are listed (answer size): the migration's file holds them "
        "all; check_migration shows each rewrite and hazard; `pgshift apply ... --json` at a terminal prints them all"
        if shown < total
        else None
    )
    return ApplyAnswer(
        **{**dict(result), "statements": result.statements[:shown]}, statements_total=total, statements_note=note
    )


def register_tools(app: MCPServer[AppState]) -> None:
    def tool(annotations: ToolAnnotations, title: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            app.add_tool(
                guarded(fn),
                name=fn.__name__,
                title=title,
                description=inspect.cleandoc(fn.__doc__ or ""),
                annotations=annotations.model_copy(update={"title": title}),
                structured_output=True,
            )
            return fn

        return deco

    @tool(READ, "List environments")
    async def list_environments(ctx: Context) -> catalog.EnvironmentList:
        """List the configured database environments: name, URL (password masked), server version, whether it is
        reachable, protected (writes need a person's approval) and read_only. With none configured, an error that
        says how to configure them."""
        if not state(ctx).db.names():
            raise ConfigError("no database environment is configured")
        return await catalog.list_environments(state(ctx).db)

    @tool(READ, "List tables")
    async def list_tables(
        environment: Env,
        ctx: Context,
        schemas: Annotated[list[str], Field(description="Schemas to list")] = ["public"],  # noqa: B006
        verbose: Annotated[bool, Field(description="Add columns, primary key and foreign keys")] = False,
        limit: Annotated[
            int | None, Field(description="Tables per page (default 200, or 25 with verbose)", ge=1, le=1000)
        ] = None,
        offset: Annotated[int, Field(description="First table of the page: the next_offset of the last", ge=0)] = 0,
    ) -> catalog.TableList:
        """List the tables of an environment with row estimate, total size and whether RLS is enabled, one page at
        a time (total and next_offset say what is left)."""
        page = limit or (25 if verbose else 200)
        return await catalog.list_tables(state(ctx).db, environment, schemas, verbose, page, offset)

    @tool(READ, "Describe table")
    async def describe_table(
        environment: Env,
        table: Annotated[str, Field(description="'table' (schema public) or 'schema.table'; quote parts with \"")],
        ctx: Context,
    ) -> catalog.TableDetail:
        """One table in detail: columns, constraints, indexes, triggers, RLS policies, and its DDL."""
        return await catalog.describe_table(state(ctx).db, environment, table)

    @tool(READ, "List extensions")
    async def list_extensions(environment: Env, ctx: Context) -> catalog.ExtensionList:
        """Extensions installed in an environment (schema, version) and the ones its server could install."""
        return await catalog.list_extensions(state(ctx).db, environment)

    @tool(WRITE, "Execute SQL")
    async def execute_sql(
        environment: Env,
        sql: Annotated[str, Field(description="One SQL statement")],
        ctx: Context,
        limit: Annotated[int, Field(description="Maximum rows returned", ge=1, le=execute.MAX_LIMIT)] = 100,
        write: Annotated[
            bool, Field(description="Run in a read-write transaction (refused on read_only environments)")
        ] = False,
        approval_id: Annotated[str | None, Field(description=APPROVAL_ID)] = None,
        first: Annotated[Draft[execute.ExecuteResult] | None, Resolve(draft_execute)] = None,
        answer: Annotated[ElicitationResult[Approval], Resolve(ask_execute)] = None,  # type: ignore[assignment]
    ) -> execute.ExecuteResult:
        """Run one SQL statement. By default it runs in a READ ONLY transaction enforced by PostgreSQL, with a
        statement timeout, so it cannot change anything. With write=true (environment not read_only) it commits;
        on a protected environment it runs only after a person approved this exact SQL (the client asks them, or
        `pgshift approve <approval_id>` at a terminal)."""
        st = state(ctx)
        if first is not None:
            return await settle(
                ctx, first, answer, lambda a: execute.execute_sql(st.db, st.approvals, environment, sql, limit, True, a)
            )
        return await execute.execute_sql(st.db, st.approvals, environment, sql, limit, write, approval_id)

    @tool(READ, "Compare schemas")
    async def compare_schemas(
        ctx: Context,
        source: Annotated[str, Field(description="Environment holding the desired schema")] = "local",
        target: Annotated[str, Field(description="Environment to check against it")] = "production",
        schemas: Annotated[
            list[str] | None, Field(description="Schemas to compare (default: every non-system, non-Supabase one)")
        ] = None,
        include_kinds: Annotated[list[Kind] | None, Field(description="Only these object kinds")] = None,
        exclude_kinds: Annotated[list[Kind] | None, Field(description="Leave these object kinds out")] = None,
        include_managed: Annotated[
            bool, Field(description="Also compare Supabase-managed schemas (auth, storage, ...)")
        ] = False,
        plan: Annotated[bool, Field(description="Also plan the migration")] = False,
        allow_data_loss: Annotated[
            bool, Field(description="With plan: allow statements that delete data (else the plan is blocked)")
        ] = False,
        online: Annotated[
            bool, Field(description="With plan: CONCURRENTLY, NOT VALID then VALIDATE, lock_timeout")
        ] = False,
        detail: Annotated[
            bool, Field(description="Field-level before/after and definitions even when the differences are many")
        ] = False,
        limit: Annotated[
            int, Field(description="Most differences (and statements) per page", ge=1, le=1000)
        ] = compare.DEFAULT_LIMIT,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous page")] = None,
    ) -> compare.CompareAnswer:
        """Compare two live databases object by object: the summary first (in_sync, counts per kind; with
        plan=true the plan in figures: statements, blocked_by_data_loss, destructive statements), then one page
        of the differences (added, removed, changed) and of the plan's ordered statements (each with its hazards
        and whether it can run in a transaction). next_cursor fetches the next page. Read-only; nothing is
        applied."""
        options = compare.PlanOptions(allow_data_loss=allow_data_loss, online=online) if plan else None
        result = await compare.compare_schemas(
            state(ctx).db,
            source,
            target,
            schemas,
            include_kinds,
            exclude_kinds,
            include_managed,
            options,
            progress=mcp_progress(ctx),
        )
        return compare.answer_page(result, compare.PageRequest(limit=limit, cursor=cursor, detail=detail))

    @tool(DRY_RUN, "Check migration")
    async def check_migration(
        environment: Env,
        ctx: Context,
        sql: Annotated[str | None, Field(description="The migration script (or pass migration)")] = None,
        migration: Annotated[
            str | None, Field(description="Path (inside the project) of a .sql file or a folder with migration.sql")
        ] = None,
        dry_run: Annotated[
            bool, Field(description="Run it on the target inside a transaction that is always rolled back")
        ] = True,
    ) -> check.CheckResult:
        """Prepare a migration for a target: split it into statements, rewrite it to be safe and idempotent there
        (each rewrite with its reason; extensions into `extensions` on Supabase), lint it for hazards (locks,
        rewrites, data loss), report extensions and roles the target lacks and statements that cannot run in a
        transaction, and dry-run it on the target in a transaction that is always rolled back (or on a shadow
        database), reporting the schema change it would make. Nothing is committed."""
        return await check.check_migration(state(ctx).db, environment, sql, project_path(migration), dry_run=dry_run)

    @tool(WRITE, "Apply migration")
    async def apply_migration(
        environment: Env,
        name: Annotated[str, Field(description="Migration name, recorded in the history tables")],
        ctx: Context,
        sql: Annotated[str | None, Field(description="The migration script (or pass migration)")] = None,
        migration: Annotated[
            str | None,
            Field(description="A Prisma migration folder, a Supabase migration file (inside the project) or a version"),
        ] = None,
        version: Annotated[
            str | None, Field(description="The migration's own version; by default taken from its file or folder")
        ] = None,
        approval_id: Annotated[str | None, Field(description=APPROVAL_ID)] = None,
        dry_run: Annotated[bool, Field(description="Only check and dry-run it (nothing is committed)")] = False,
        first: Annotated[Draft[apply.ApplyResult] | None, Resolve(draft_apply)] = None,
        answer: Annotated[ElicitationResult[Approval], Resolve(ask_apply)] = None,  # type: ignore[assignment]
    ) -> ApplyAnswer:
        """Apply one migration: prepared as check_migration does, under an advisory lock with timeouts, statements
        and history rows in one transaction (the file's own transactions honoured), a snapshot taken first for
        rollback, recorded under its own version in every history table. A protected environment runs it only after
        a person approved these exact statements (the client asks them, or `pgshift approve <approval_id>`)."""
        st = state(ctx)
        project_path(migration)

        async def run(request_id: str | None) -> apply.ApplyResult:
            return await apply.apply_migration(
                st.db, environment, name, sql, migration, version, request_id, dry_run, approvals=st.approvals
            )

        return apply_answer(await (settle(ctx, first, answer, run) if first is not None else run(approval_id)))

    @tool(READ, "List migrations")
    async def list_migrations(
        ctx: Context,
        directory: Annotated[
            str | None, Field(description="prisma/migrations or supabase/migrations; found automatically when omitted")
        ] = None,
        environments: Annotated[
            list[str] | None, Field(description="Environments to compare (default: all configured)")
        ] = None,
        limit: Annotated[int, Field(description="Migrations per page", ge=1, le=1000)] = MIGRATIONS_PAGE,
        offset: Annotated[int, Field(description="First migration of the page: the next_offset of the last", ge=0)] = 0,
    ) -> MigrationPage:
        """The migrations folder against each environment's history, side by side: applied, pending, failed,
        edited after apply, missing locally. Counts first, then one page of migrations, oldest first."""
        status = await deploying.list_migrations(state(ctx).db, project_path(directory), environments)
        return migration_page(status, limit, offset)

    @tool(WRITE, "Deploy migrations")
    async def deploy(
        environment: Env,
        ctx: Context,
        directory: Annotated[
            str | None, Field(description="prisma/migrations or supabase/migrations; found automatically when omitted")
        ] = None,
        approval_id: Annotated[str | None, Field(description=APPROVAL_ID)] = None,
        detail: Annotated[
            bool, Field(description="Also the applied migrations in full (statements, kept data), within a budget")
        ] = False,
        first: Annotated[Draft[deploying.DeployResult] | None, Resolve(draft_deploy)] = None,
        answer: Annotated[ElicitationResult[Approval], Resolve(ask_deploy)] = None,  # type: ignore[assignment]
    ) -> deploying.DeployAnswer:
        """Apply every pending migration of the folder to an environment, in order. Stops at the first failure with
        that migration undone and the earlier ones recorded. On a protected environment it runs only after a person
        approved exactly these migrations (elicitation, or `pgshift approve <approval_id>` at a terminal). Summary
        first, then one compact row per migration."""
        st = state(ctx)
        project_path(directory)

        async def run(request_id: str | None) -> deploying.DeployResult:
            return await deploying.deploy(
                st.db, environment, directory, request_id, approvals=st.approvals, progress=mcp_progress(ctx)
            )

        result = await (settle(ctx, first, answer, run) if first is not None else run(approval_id))
        return deploying.deploy_answer(result, deploying.failed_migration_statements(result), detail)


class StrictTool(Tool):
    """A tool that refuses arguments it does not take and explains every invalid argument in one sentence."""

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        try:
            self.fn_metadata.validate_arguments(arguments)
        except ValidationError as exc:
            sentences = " ".join(argument_error(e, self.parameters) for e in exc.errors())
            raise ToolError(f"{self.name}: invalid arguments, nothing was run. {sentences}") from None
        result = await super().run(arguments, context, convert_result=False)
        if not convert_result:
            return result
        try:
            return compact(result, self.fn_metadata.convert_result(result))
        except Exception as exc:  # the SDK's own conversion failing is a crash, reported without detail
            raise UnexpectedToolError(f"Error executing tool {self.name}") from exc


def compact(returned: Any, converted: Any) -> Any:
    """A typed answer's text content as compact JSON without null fields (the SDK pretty-prints it, nulls and all:
    1.6-1.9 times the size). Nulls inside data (a row's NULL column) stay; `structuredContent` is unchanged."""
    if not isinstance(returned, BaseModel) or not isinstance(converted, CallToolResult) or converted.is_error:
        return converted
    text = returned.model_dump_json(by_alias=True, exclude_none=True)
    return converted.model_copy(update={"content": [TextContent(type="text", text=text)]})


def argument_error(error: ErrorDetails, schema: dict[str, Any]) -> str:
    """One sentence for one pydantic error, naming the argument and what it takes."""
    where = ".".join(str(part) for part in error["loc"]) or "arguments"
    if error["type"] == "extra_forbidden":
        takes = ", ".join(sorted(schema.get("properties", {})))
        return f"'{where}' is not an argument of this tool (it takes: {takes})."
    if error["type"] == "missing":
        return f"'{where}' is required."
    shown = repr(error.get("input"))
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"'{where}': {error['msg'].removeprefix('Value error, ')} (got {shown})."


def strict(tool: Tool) -> StrictTool:
    """The same tool, with an argument model that forbids unknown arguments (the SDK's `ArgModelBase` allows them
    silently), a plain-text description, an input schema without generated titles and an outlined output schema."""
    base = tool.fn_metadata.arg_model
    model: type[ArgModelBase] = type(
        base.__name__, (base,), {"model_config": ConfigDict(extra="forbid"), "__module__": base.__module__}
    )
    output = tool.fn_metadata.output_schema
    metadata = tool.fn_metadata.model_copy(
        update={"arg_model": model, "output_schema": outline(output) if output is not None else None}
    )
    fields = {name: getattr(tool, name) for name in Tool.model_fields}
    fields.update(
        fn_metadata=metadata,
        parameters=untitled(model.model_json_schema(by_alias=True)),
        description=plain_text(tool.description),
    )
    return StrictTool(**fields)


def plain_text(doc: str) -> str:
    """A docstring as plain text: indentation removed and each paragraph on one line (the hard wraps of the source
    are not the reader's)."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def untitled(schema: Any) -> Any:
    """A JSON schema without pydantic's generated `title`s ("Allow Data Loss" for allow_data_loss): they repeat the
    names."""
    if isinstance(schema, dict):
        return {k: untitled(v) for k, v in schema.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(schema, list):
        return [untitled(v) for v in schema]
    return schema


def outline(schema: dict[str, Any]) -> dict[str, Any]:
    """An output schema's top level: each field with its JSON type(s) and description, nested values by type only.

    The SDK's full schemas (every nested model, with the fence envelope repeated per list) made up three quarters
    of `tools/list`, which a client loads before any call; the answers themselves are unchanged and still
    validate, and each field's description is kept."""
    defs = schema.get("$defs", {})

    def types(node: dict[str, Any]) -> list[str]:
        if "$ref" in node:
            return types(defs.get(node["$ref"].rsplit("/", 1)[-1], {}))
        if "anyOf" in node:
            return sorted({t for member in node["anyOf"] for t in types(member)})
        kind = node.get("type")
        if isinstance(kind, list):
            return sorted(kind)
        return [kind] if isinstance(kind, str) else []

    def field(node: dict[str, Any]) -> dict[str, Any]:
        found = types(node)
        out: dict[str, Any] = {"type": found[0] if len(found) == 1 else found} if found else {}
        if "enum" in node:
            out["enum"] = node["enum"]
        if "description" in node:
            out["description"] = node["description"]
        return out

    properties = {name: field(node) for name, node in schema.get("properties", {}).items()}
    return {"type": "object", "properties": properties, "required": schema.get("required", [])}


def strict_tools(app: MCPServer[AppState]) -> None:
    """Make every registered tool strict. The SDK adds tools from functions only, so the registered `Tool` objects
    are replaced in its tool manager."""
    manager = app._tool_manager
    for tool in manager.list_tools():
        manager._tools[tool.name] = strict(tool)
