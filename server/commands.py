"""The schema commands of the CLI: compare, plan, check, apply, status, deploy, and approve.

Each takes `--target URL_OR_ENV` (a postgresql:// URL or a configured environment name), prints data
on stdout (text, or JSON with --json) and messages on stderr, and exits 0 when there is nothing to do,
2 when there is (differences, a plan, pending migrations, a confirmation needed), 1 on error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from pgshift.server.cli import add_data_loss_argument, add_migrations_argument
from pgshift.server.config import CONFIGURE_NEXT_STEP, load_environments
from pgshift.server.progress import TerminalProgress
from pgshift.tools.compare import KINDS, CompareResult, compare_environments
from pgshift.tools.databases import Databases, Environment
from pgshift.tools.errors import ConfigError, PgshiftError
from pgshift.tools.options import ALLOW_DATA_LOSS
from pgshift.tools.plan.statement import ClientPlan, HazardKind, Plan

EXIT_OK, EXIT_ERROR, EXIT_PENDING, EXIT_DATA_LOSS = 0, 1, 2, 3
# Names the plan command's callers know it by.
EXIT_NOTHING_TO_DO, EXIT_PLAN = EXIT_OK, EXIT_PENDING


def resolve_environment(
    value: str, environments: Sequence[Environment], role: str, *, protect_urls: bool = False
) -> Environment:
    """A postgres:// URL, or the name of a configured environment. With `protect_urls` (apply, deploy), a raw URL
    is protected: nothing says it is not production, so writing to it needs --yes."""
    if "://" in value:
        return Environment(name=role, url=value, protected=protect_urls)
    for env in environments:
        if env.name == value:
            return env
    if not environments:
        raise ConfigError(
            f"--{role} '{value}' is neither a postgresql:// URL nor a configured environment (none configured). "
            f"Next step: pass a postgresql:// URL, or {CONFIGURE_NEXT_STEP.removeprefix('Next step: ')}"
        )
    known = ", ".join(e.name for e in environments)
    raise ConfigError(f"--{role} '{value}' is neither a postgresql:// URL nor a configured environment ({known})")


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="URL or environment name of the desired schema (e.g. local)")
    parser.add_argument("--target", required=True, help="URL or environment name to check (e.g. production)")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    parser.add_argument("--schema", action="append", dest="schemas", help="compare only this schema (repeatable)")
    parser.add_argument("--include-kind", action="append", dest="include_kinds", help=f"one of {', '.join(KINDS)}")
    parser.add_argument("--exclude-kind", action="append", dest="exclude_kinds", help="leave this kind out")
    parser.add_argument("--include-managed", action="store_true", help="also compare Supabase-managed schemas")
    parser.add_argument(
        "--ignore-uncompared",
        action="store_true",
        help="exit 0 even when objects pgshift does not compare (rules, statistics...) differ",
    )


def run_compare(args: argparse.Namespace, environments: Sequence[Environment] = ()) -> int:
    """Run the compare command: print the result, return 0 in sync, 2 different, 1 on error."""
    try:
        source = resolve_environment(args.source, environments, "source")
        target = resolve_environment(args.target, environments, "target")
        result = asyncio.run(
            compare_environments(
                source,
                target,
                schemas=args.schemas,
                include_kinds=args.include_kinds,
                exclude_kinds=args.exclude_kinds,
                include_managed=args.include_managed,
            )
        )
    except PgshiftError as exc:
        print(f"pgshift compare: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        print(render_compare(result))
    uncompared_drift = result.uncompared_differ and not getattr(args, "ignore_uncompared", False)
    return EXIT_OK if result.in_sync and not uncompared_drift else EXIT_PENDING


def render_compare(result: CompareResult) -> str:
    """A short human-readable report: one line per difference, fields indented below changes, then the objects
    not compared (`+`/`-` on one side only, `~` defined differently, `=` the same on both)."""
    if result.in_sync:
        lines = [f"in sync: '{result.target}' matches '{result.source}' ({', '.join(result.kinds)})"]
    else:
        s = result.summary
        lines = [
            f"'{result.target}' differs from '{result.source}': {s.added} to add, {s.removed} to remove, "
            f"{s.changed} changed"
        ]
    sign = {"added": "+", "removed": "-", "changed": "~"}
    for d in result.differences.data:
        lines.append(f"{sign[d.change]} {d.kind} {d.name}")
        for f in d.fields:
            lines.append(f"    {f.field}: {json.dumps(f.before)} -> {json.dumps(f.after)}")
    if result.uncompared is not None:
        lines.append(f"{result.uncompared_note}; pgshift neither compares nor plans them:")
        for o in result.uncompared.data:
            mark = "~" if o.differs else "=" if o.in_source and o.in_target else "+" if o.in_source else "-"
            detail = f" ({o.detail})" if o.detail else ""
            lines.append(f"{mark} not compared: {o.kind} {o.name}{detail}")
    return "\n".join(lines)


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="URL or environment name of the desired schema (e.g. local)")
    parser.add_argument("--target", required=True, help="URL or environment name to migrate (e.g. production)")
    add_data_loss_argument(parser, "print the plan even when it deletes data")
    parser.add_argument(
        "--online", action="store_true", help="CONCURRENTLY indexes, NOT VALID + VALIDATE, lock_timeout per statement"
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON instead of SQL")
    parser.add_argument("--schema", action="append", dest="schemas", help="plan only this schema (repeatable)")
    parser.add_argument("--include-managed", action="store_true", help="also plan Supabase-managed schemas")


def hazard_report(plan: Plan) -> str:
    """One line per statement that carries hazards, for stderr."""
    lines = []
    for i, statement in enumerate(plan.statements, 1):
        if statement.hazards:
            head = statement.sql.splitlines()[0]
            kinds = "; ".join(f"{h.kind.value}: {h.message}" for h in statement.hazards)
            lines.append(f"  {i}. {head}\n       {kinds}")
    return "\n".join(lines)


def blocked_plan_text(plan: Plan) -> str:
    """A plan blocked by data loss, for reading only: every line a SQL comment (psql runs nothing of it), each
    statement that deletes data marked with what it deletes."""
    lines = [
        f"-- pgshift plan: NOT RUNNABLE: {len(plan.destructive)} statement(s) would delete data (marked DELETES DATA).",
        f"-- Re-run with {ALLOW_DATA_LOSS.rendered('cli')} for the script if the loss is intended.",
    ]
    for i, statement in enumerate(plan.statements, 1):
        lines.append("--")
        if statement.destructive:
            lost = "; ".join(h.message for h in statement.hazards if h.kind is HazardKind.DELETES_DATA)
            lines.append(f"-- [{i}] DELETES DATA: {lost}")
        else:
            lines.append(f"-- [{i}]")
        lines += [f"--   {line}" for line in statement.render().splitlines()]
    return "\n".join(lines)


def run_plan(args: argparse.Namespace, environments: Sequence[Environment] = ()) -> int:
    """Run `pgshift plan`: 0 nothing to do, 2 a plan printed, 3 refused for data loss, 1 error."""
    from pgshift.tools.plan.read import plan_environments

    try:
        source = resolve_environment(args.source, environments, "source")
        target = resolve_environment(args.target, environments, "target")
        plan = asyncio.run(
            plan_environments(
                source,
                target,
                schemas=args.schemas,
                include_managed=args.include_managed,
                allow_data_loss=args.allow_data_loss,
                online=args.online,
            )
        )
    except PgshiftError as exc:
        print(f"pgshift plan: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if plan.is_empty:
        print(f"pgshift plan: nothing to do, '{target.name}' already matches '{source.name}'", file=sys.stderr)
        if args.json:
            print(plan.model_dump_json(indent=2))
        return EXIT_OK
    if plan.blocked_by_data_loss:
        print(ClientPlan.of(plan).model_dump_json(indent=2) if args.json else blocked_plan_text(plan))
        listed = "\n".join(f"  {s.sql.splitlines()[0]}" for s in plan.destructive)
        print(
            f"pgshift plan: {len(plan.destructive)} of {len(plan.statements)} statement(s) would delete data:\n"
            f"{listed}\nThe plan above is printed as comments only (nothing to run, nothing was applied). If the loss "
            f"is intended, re-run with {ALLOW_DATA_LOSS.rendered('cli')} to get the script.",
            file=sys.stderr,
        )
        return EXIT_DATA_LOSS
    print(plan.model_dump_json(indent=2) if args.json else plan.script, end="" if not args.json else "\n")
    report = hazard_report(plan)
    blockers = "".join(f"\n  blocked: {b.message}" for b in plan.blockers)
    print(
        f"pgshift plan: {len(plan.statements)} statement(s) to make '{target.name}' match '{source.name}'"
        + (f"; hazards:\n{report}" if report else "")
        + (f"\nrows on the target would make it fail:{blockers}" if blockers else ""),
        file=sys.stderr,
    )
    return EXIT_PENDING


def _target_db(value: str, *, writes: bool = False) -> tuple[Databases, str]:
    """Databases holding the one target environment, and its name (a raw URL is protected when the command
    writes)."""
    env = resolve_environment(value, load_environments(), "target", protect_urls=writes)
    return Databases([env]), env.name


def _run(db: Databases, work: Callable[[], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        try:
            return await work()
        finally:
            await db.close()

    return asyncio.run(go())


def _emit(result: BaseModel, as_json: bool, text: Callable[[Any], str]) -> None:
    print(result.model_dump_json(indent=2) if as_json else text(result))


def _compare(args: argparse.Namespace) -> int:
    return run_compare(args, load_environments())


def _plan(args: argparse.Namespace) -> int:
    return run_plan(args, load_environments())


def _check(args: argparse.Namespace) -> int:
    from pgshift.tools.migrations.check import check_migration, render_text

    db, name = _target_db(args.target)
    if args.migration != "-" and is_migrations_folder(args.migration):
        return _check_folder(args, db, name)
    sql = sys.stdin.read() if args.migration == "-" else None
    migration = None if args.migration == "-" else args.migration
    result = _run(db, lambda: check_migration(db, name, sql, migration, dry_run=not args.no_dry_run))
    if output_format(args) == "markdown":
        print(render_check_markdown(name, [(result.source, result)]), end="")
    else:
        _emit(result, args.json, render_text)
    return EXIT_OK if result.ok else EXIT_PENDING


def output_format(args: argparse.Namespace) -> str:
    """text, json or markdown: `--json` is `--format json`."""
    return "json" if getattr(args, "json", False) else str(getattr(args, "format", None) or "text")


def render_check_markdown(target: str, checked: Sequence[tuple[str, Any]]) -> str:
    """Checks of one or more migrations as Markdown (a CI job summary): verdict, the script that would run, lint
    findings and hazards, the dry run and the blockers. Every text is escaped; scripts sit in code fences longer
    than any backtick run inside them."""
    from pgshift.tools.watch.status import code_block, markdown_table, md

    blocked = sum(1 for _, r in checked if not r.ok)
    verdict = "ready" if not blocked else f"**{blocked} blocked**"
    out = [f"## pgshift check against {md(target)}: {len(checked)} migration(s), {verdict}"]
    if not checked:
        out += ["", "Every migration is already applied."]
    for source, r in checked:
        path = Path(source)
        name = path.parent.name if path.name == "migration.sql" else path.name if "/" in source else source
        out += ["", f"### {md(name)}: {'ready' if r.ok else 'BLOCKED'}", "", md(r.summary), ""]
        out += [
            "<details><summary>SQL that would run</summary>",
            "",
            *code_block(r.script, "sql"),
            "",
            "</details>",
            "",
        ]
        if r.lint:
            rows = [(f.line, f.severity, f.rule.value, f.object, f"{f.message}. Instead: {f.help}") for f in r.lint]
            out += [*markdown_table(["line", "severity", "rule", "object", "finding"], rows), ""]
        if r.dry_run is not None:
            d = r.dry_run
            state = "succeeded" if d.succeeded else "FAILED" if d.failure else "not run"
            out.append(f"- dry run ({md(d.mode)}): {state}, {d.statements_run} statement(s), {d.duration_ms} ms")
            if d.failure is not None:
                out.append(
                    f"- failed at statement {d.failure.statement} (line {d.failure.line}): {md(d.failure.message)}"
                )
        out += [f"- **blocker**: {md(b)}" for b in r.blockers]
    return "\n".join(out) + "\n"


def is_migrations_folder(path: str) -> bool:
    """A folder of migrations (prisma/migrations, supabase/migrations), not one Prisma migration folder."""
    folder = Path(path)
    return folder.is_dir() and not (folder / "migration.sql").is_file()


def _check_folder(args: argparse.Namespace, db: Databases, name: str) -> int:
    """Check every migration of a folder that the target has not applied, in order. Only the first is dry-run:
    the later ones need the earlier ones, which the target does not have yet (each dry run is rolled back)."""
    from pgshift.tools.migrations.check import check_migration, render_text

    async def each() -> tuple[list[str], list[Any]]:
        pending = await pending_migrations(db, name, args.migration)
        results = [
            await check_migration(db, name, None, path, dry_run=not args.no_dry_run and i == 0)
            for i, path in enumerate(pending)
        ]
        return pending, results

    pending, results = _run(db, each)
    if output_format(args) == "markdown":
        print(render_check_markdown(name, list(zip(pending, results, strict=True))), end="")
    elif args.json:
        rows = [{"migration": m, **r.model_dump(mode="json")} for m, r in zip(pending, results, strict=True)]
        print(json.dumps(rows, indent=2))
    elif not pending:
        print(f"every migration of {args.migration} is already applied on '{name}'")
    else:
        print("\n\n".join(f"== {m}\n{render_text(r)}" for m, r in zip(pending, results, strict=True)))
        if len(pending) > 1 and not args.no_dry_run:
            print(f"(only {pending[0]} was dry-run: the later ones build on it)", file=sys.stderr)
    return EXIT_OK if all(r.ok for r in results) else EXIT_PENDING


async def pending_migrations(db: Databases, name: str, directory: str) -> list[str]:
    """The paths of the folder's migrations that `name` has not applied (pending, failed or edited), in order."""
    from pgshift.tools import ledger
    from pgshift.tools.deploy import migration_state
    from pgshift.tools.migrations.folder import read_migrations

    folder = read_migrations(directory)
    async with db.read_only(name, snapshot=True) as conn:
        history = await ledger.read_history(conn)
    return [str(m.path) for m in folder.migrations if m.path and migration_state(history, m) != "applied"]


def _confirmed(first: Any, yes: bool, again: Callable[[str], Awaitable[Any]], db: Databases) -> Any:
    """With --yes (the person or CI running the command approves), approve the filed request and run it once;
    without, withdraw it and say so in CLI words (the command is re-run with --yes, never continued by id)."""
    from pgshift.tools.approval import ApprovalStore

    if first.status != "confirmation_required":
        return first
    if not yes:
        ApprovalStore().withdraw(first.approval_id)
        return first.model_copy(update={"approval_id": None, "message": needs_yes(first.environment)})
    ApprovalStore().approve(first.approval_id)
    return _run(db, lambda: again(first.approval_id))


def needs_yes(target: str) -> str:
    return f"{named(target)} is protected: nothing was run. Re-run the same command with --yes to run it."


def named(target: str) -> str:
    """How messages name a target: a raw URL (resolved as 'target') is protected because nothing says it is not
    production."""
    return "the URL given as --target (a raw URL is always protected)" if target == "target" else f"'{target}'"


def _apply(args: argparse.Namespace) -> int:
    from pgshift.tools.apply import apply_migration

    db, name = _target_db(args.target, writes=True)
    sql = sys.stdin.read() if args.migration == "-" else None
    migration = None if args.migration == "-" else args.migration

    def call(token: str | None) -> Awaitable[Any]:
        return apply_migration(db, name, args.name, sql, migration, args.version, token, args.dry_run)

    first = _run(db, lambda: call(None))
    result = _confirmed(first, args.yes, call, db)
    _emit(result, args.json, render_apply)
    if result.status == "confirmation_required":
        print(
            f"pgshift apply: {named(name)} is protected: re-run with --yes to apply these statements.", file=sys.stderr
        )
        return EXIT_PENDING
    return EXIT_OK


def render_apply(result: Any) -> str:
    """The message; when a confirmation is needed, the statements it would run first."""
    if result.status != "confirmation_required":
        return str(result.message)
    listed = "\n".join(f"  {i}. {s.sql}" for i, s in enumerate(result.statements, 1))
    return f"{listed}\n{result.message}"


def _status(args: argparse.Namespace) -> int:
    """`pgshift status`: every configured environment (or `--target` alone) side by side. 0 every environment
    clean, 2 something pending, failed, edited, missing locally, drifted, unreachable, or drift that could not be
    determined (unknown is never clean: the reason and the next step are printed), 1 error."""
    from pgshift.tools.watch.status import default_providers, gather_status, render_markdown
    from pgshift.tools.watch.status import render_text as render_status_text

    if args.target is not None:
        db, name = _target_db(args.target)
        names: list[str] | None = [name]
    else:
        environments = load_environments()
        if not environments:
            raise ConfigError(f"no environment is configured and no --target given. {CONFIGURE_NEXT_STEP}")
        db, names = Databases(environments), None
    result = _run(
        db,
        lambda: gather_status(
            db, args.migrations, environments=names, providers=default_providers(), allow_pending=args.allow_pending
        ),
    )
    renderers = {"json": lambda r: r.model_dump_json(indent=2), "markdown": render_markdown, "text": render_status_text}
    print(renderers[output_format(args)](result), end="\n" if output_format(args) != "markdown" else "")
    return EXIT_OK if result.clean else EXIT_PENDING


def _deploy(args: argparse.Namespace) -> int:
    from pgshift.tools.deploy import deploy, render_deploy

    db, name = _target_db(args.target, writes=True)
    line = TerminalProgress("deploy")

    def call(token: str | None) -> Awaitable[Any]:
        return deploy(db, name, args.migrations, token, progress=line)

    try:
        first = _run(db, lambda: call(None))
        result = _confirmed(first, args.yes, call, db)
    finally:
        line.close()
    _emit(result, args.json, render_deploy)
    if result.status == "confirmation_required":
        print(f"pgshift deploy: {named(name)} is protected: re-run with --yes to deploy.", file=sys.stderr)
        return EXIT_PENDING
    return EXIT_ERROR if result.status == "failed" else EXIT_OK


def _approve(args: argparse.Namespace) -> int:
    """`pgshift approve [ID]`: a person at a terminal approves one pending write (0 approved, 2 not, 1 error)."""
    from pgshift.tools.approval import ApprovalStore, render_request, request_line

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print(
            "pgshift approve: refused: approving needs a person at a terminal (stdin and stdout must be a TTY). "
            "Nothing was approved.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    store = ApprovalStore()
    if args.id is None:
        pending = store.pending()
        for r in pending:
            print(request_line(r))
        print(f"{len(pending)} pending approval request(s); approve one with: pgshift approve ID", file=sys.stderr)
        return EXIT_OK
    request = store.load(args.id)
    print(render_request(request), end="\n\n", flush=True)
    kept = kept_on(request.environment, request.url)
    if kept is not None:
        print(kept, end="\n\n", flush=True)
    try:
        typed = input(f"Type the environment's name ({request.environment}) to approve, anything else declines: ")
    except EOFError:
        typed = ""
    if typed.strip() != request.environment:
        store.withdraw(request.id)
        print("pgshift approve: declined: nothing was approved, and the request is withdrawn.", file=sys.stderr)
        return EXIT_PENDING
    store.approve(request.id, shown=request)
    print(
        f"approved: the assistant's next call with approval_id={request.id} runs exactly this, once, before it expires."
    )
    return EXIT_OK


def kept_on(environment: str, url: str) -> str | None:
    """What undo keeps on the request's environment now (what is kept, its size, until when), when this terminal's
    configuration has that environment at that URL; None when it cannot be told (the prompt stands without it)."""
    from pgshift.tools.undo.retention import human_bytes
    from pgshift.tools.undo.snapshots import kept_data_summary

    try:
        env = next((e for e in load_environments() if e.name == environment and e.redacted_url == url), None)
    except PgshiftError:
        return None
    if env is None:
        return None
    db = Databases([env])
    try:
        summary = _run(db, lambda: kept_data_summary(db, environment))
    except PgshiftError:
        return None
    if not summary.tables:
        return f"Kept for rollback on '{environment}' now: nothing."
    lines = [f"Kept for rollback on '{environment}' now ({summary.text}):"]
    lines += [
        f"  - {e.object}: {e.rows} row(s), {human_bytes(e.bytes)}"
        + (f", until {e.keep_until:%Y-%m-%d}" if e.keep_until is not None else "")
        for e in summary.entries
    ]
    return "\n".join(lines)


def add_schema_commands(sub: Any) -> None:
    """Register the schema subcommands on the `pgshift` parser."""
    compare = sub.add_parser("compare", help="compare two databases (exit 0 in sync, 2 different, 1 error)")
    add_compare_arguments(compare)
    compare.set_defaults(func=_compare)

    plan = sub.add_parser(
        "plan", help="print the SQL that makes the target equal the source (0 nothing, 2 plan, 3 data loss, 1 error)"
    )
    add_plan_arguments(plan)
    plan.set_defaults(func=_plan)

    def target(p: argparse.ArgumentParser) -> None:
        p.add_argument("--target", required=True, help="postgresql:// URL or configured environment name")
        p.add_argument("--json", action="store_true", help="print the full result as JSON")

    check = sub.add_parser("check", help="rewrite, lint and dry-run a migration against a target")
    target(check)
    check.add_argument(
        "migration",
        help="a .sql file, a Prisma migration folder, a migrations folder (each migration the target lacks), or -",
    )
    check.add_argument("--no-dry-run", action="store_true", help="do not run it on the target")
    check.add_argument("--format", choices=("text", "json", "markdown"), default="text", help="output format")
    check.set_defaults(func=_check)

    apply = sub.add_parser("apply", help="apply one migration and record it in the history tables")
    target(apply)
    apply.add_argument("migration", help="a .sql file, a Prisma migration folder, a version, or - for stdin")
    apply.add_argument("--name", required=True, help="the migration's name in the history tables")
    apply.add_argument("--version", help="the migration's own version (default: from its file or folder)")
    apply.add_argument("--dry-run", action="store_true", help="check and dry-run only")
    apply.add_argument("--yes", action="store_true", help="confirm on a protected target")
    apply.set_defaults(func=_apply)

    status = sub.add_parser(
        "status",
        help="every environment side by side: migrations, drift, last apply, approvals (0 clean; 2 not clean, "
        "drift unknown included; 1 error)",
    )
    status.add_argument("--target", help="only this URL or environment (default: every configured environment)")
    status.add_argument("--json", action="store_true", help="print the full result as JSON (same as --format json)")
    status.add_argument("--format", choices=("text", "json", "markdown"), default="text", help="output format")
    add_migrations_argument(status)
    status.add_argument(
        "--allow-pending", action="store_true", help="pending migrations do not count (a pull request adds them)"
    )
    status.set_defaults(func=_status)

    deploy = sub.add_parser("deploy", help="apply every pending migration in order")
    target(deploy)
    add_migrations_argument(deploy)
    deploy.add_argument("--yes", action="store_true", help="confirm on a protected target")
    deploy.set_defaults(func=_deploy)

    approve = sub.add_parser(
        "approve", help="at a terminal: approve a protected write an assistant asked for (0 approved, 2 declined)"
    )
    approve.add_argument("id", nargs="?", help="the approval request id (omit to list pending requests)")
    approve.set_defaults(func=_approve)
