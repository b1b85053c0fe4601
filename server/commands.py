"""The schema commands of the CLI: compare, plan, check, apply, status, deploy.

Each takes `--target URL_OR_ENV` (a postgresql:// URL or a configured environment name), prints data
on stdout (text, or JSON with --json) and messages on stderr, and exits 0 when there is nothing to do,
2 when there is (differences, a plan, pending migrations, a confirmation needed), 1 on error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from server.config import load_environments
from tools.compare import add_compare_arguments, resolve_environment, run_compare
from tools.databases import Databases
from tools.plan.command import add_plan_arguments

EXIT_OK, EXIT_ERROR, EXIT_PENDING = 0, 1, 2


def _target_db(value: str) -> tuple[Databases, str]:
    """Databases holding the one target environment, and its name."""
    env = resolve_environment(value, load_environments(), "target")
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
    from tools.plan.command import run_plan

    return run_plan(args, load_environments())


def _check(args: argparse.Namespace) -> int:
    from tools.migrations.check import check_migration, render_text

    db, name = _target_db(args.target)
    sql = sys.stdin.read() if args.migration == "-" else None
    migration = None if args.migration == "-" else args.migration
    result = _run(db, lambda: check_migration(db, name, sql, migration, dry_run=not args.no_dry_run))
    _emit(result, args.json, render_text)
    return EXIT_OK if result.ok else EXIT_PENDING


def _confirmed(first: Any, yes: bool, again: Callable[[str], Awaitable[Any]], db: Databases) -> Any:
    """Second call with the token when --yes was given; else the confirmation_required result."""
    if first.status != "confirmation_required" or not yes:
        return first
    return _run(db, lambda: again(first.confirmation_token))


def _apply(args: argparse.Namespace) -> int:
    from tools.apply import apply_migration

    db, name = _target_db(args.target)
    sql = sys.stdin.read() if args.migration == "-" else None
    migration = None if args.migration == "-" else args.migration

    def call(token: str | None) -> Awaitable[Any]:
        return apply_migration(db, name, args.name, sql, migration, args.version, token, args.dry_run)

    first = _run(db, lambda: call(None))
    result = _confirmed(first, args.yes, call, db)
    _emit(result, args.json, lambda r: r.message)
    if result.status == "confirmation_required":
        print(f"'{name}' is protected: re-run with --yes to apply these statements.", file=sys.stderr)
        return EXIT_PENDING
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from tools.deploy import list_migrations, render_status

    db, name = _target_db(args.target)
    result = _run(db, lambda: list_migrations(db, args.migrations, [name]))
    _emit(result, args.json, render_status)
    return EXIT_OK if all(e.in_sync for e in result.environments) else EXIT_PENDING


def _deploy(args: argparse.Namespace) -> int:
    from tools.deploy import deploy, render_deploy

    db, name = _target_db(args.target)

    def call(token: str | None) -> Awaitable[Any]:
        return deploy(db, name, args.migrations, token)

    first = _run(db, lambda: call(None))
    result = _confirmed(first, args.yes, call, db)
    _emit(result, args.json, render_deploy)
    if result.status == "confirmation_required":
        print(f"'{name}' is protected: re-run with --yes to deploy.", file=sys.stderr)
        return EXIT_PENDING
    return EXIT_ERROR if result.status == "failed" else EXIT_OK


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
    check.add_argument("migration", help="a .sql file, a Prisma migration folder, or - for standard input")
    check.add_argument("--no-dry-run", action="store_true", help="do not run it on the target")
    check.set_defaults(func=_check)

    apply = sub.add_parser("apply", help="apply one migration and record it in the history tables")
    target(apply)
    apply.add_argument("migration", help="a .sql file, a Prisma migration folder, a version, or - for stdin")
    apply.add_argument("--name", required=True, help="the migration's name in the history tables")
    apply.add_argument("--version", help="the migration's own version (default: from its file or folder)")
    apply.add_argument("--dry-run", action="store_true", help="check and dry-run only")
    apply.add_argument("--yes", action="store_true", help="confirm on a protected target")
    apply.set_defaults(func=_apply)

    status = sub.add_parser("status", help="local migrations against the target's history")
    target(status)
    status.add_argument("--migrations", help="prisma/migrations or supabase/migrations (found when omitted)")
    status.set_defaults(func=_status)

    deploy = sub.add_parser("deploy", help="apply every pending migration in order")
    target(deploy)
    deploy.add_argument("--migrations", help="prisma/migrations or supabase/migrations (found when omitted)")
    deploy.add_argument("--yes", action="store_true", help="confirm on a protected target")
    deploy.set_defaults(func=_deploy)
