"""Read two databases and plan the migration between them: for `compare_schemas` and `pgshift plan`.

`pgshift plan --source URL_OR_ENV --target URL_OR_ENV [--allow-data-loss] [--online] [--json]` writes the
SQL (or the plan as JSON) to stdout and nothing else, so it can be piped into psql; every message goes
to stderr. Exit 0: nothing to do; 2: a plan was printed; 3: the plan would delete data and
--allow-data-loss was not given (nothing printed on stdout, the destructive statements on stderr); 1: error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import asyncpg

from tools.compare import resolve_environment
from tools.databases import Databases, Environment, connect
from tools.errors import PgshiftError
from tools.introspect import introspect
from tools.model import Schema
from tools.plan.planner import plan_migration
from tools.plan.statement import Plan

EXIT_NOTHING_TO_DO, EXIT_ERROR, EXIT_PLAN, EXIT_DATA_LOSS = 0, 1, 2, 3


async def _read(conn: asyncpg.Connection, schemas: list[str] | None, include_managed: bool) -> Schema:
    return await introspect(conn, schemas=schemas, include_managed=include_managed, with_dependencies=True)


async def plan_databases(
    db: Databases,
    source: str = "local",
    target: str = "production",
    *,
    schemas: list[str] | None = None,
    include_managed: bool = False,
    allow_data_loss: bool = False,
    online: bool = False,
) -> Plan:
    """The plan that makes environment `target` equal `source` (read-only on both)."""

    async def read(name: str) -> Schema:
        async with db.read_only(name, snapshot=True) as conn:
            return await _read(conn, schemas, include_managed)

    src, tgt = await asyncio.gather(read(source), read(target))
    return plan_migration(src, tgt, allow_data_loss=allow_data_loss, online=online)


async def plan_environments(
    source: Environment,
    target: Environment,
    *,
    schemas: list[str] | None = None,
    include_managed: bool = False,
    allow_data_loss: bool = False,
    online: bool = False,
) -> Plan:
    """The same over single connections (for the CLI)."""

    async def read(env: Environment) -> Schema:
        conn = await connect(env)
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return await _read(conn, schemas, include_managed)
        finally:
            await conn.close()

    src, tgt = await asyncio.gather(read(source), read(target))
    return plan_migration(src, tgt, allow_data_loss=allow_data_loss, online=online)


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="URL or environment name of the desired schema (e.g. local)")
    parser.add_argument("--target", required=True, help="URL or environment name to migrate (e.g. production)")
    parser.add_argument("--allow-data-loss", action="store_true", help="print the plan even when it deletes data")
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


def run_plan(args: argparse.Namespace, environments: Sequence[Environment] = ()) -> int:
    """Run `pgshift plan`; see the module docstring for the exit codes."""
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
        return EXIT_NOTHING_TO_DO
    if plan.blocked_by_data_loss:
        listed = "\n".join(f"  {s.sql.splitlines()[0]}" for s in plan.destructive)
        print(
            f"pgshift plan: refused, {len(plan.destructive)} statement(s) would delete data:\n{listed}\n"
            "Nothing was printed or applied. Re-run with --allow-data-loss if the loss is intended.",
            file=sys.stderr,
        )
        return EXIT_DATA_LOSS
    print(plan.model_dump_json(indent=2) if args.json else plan.script, end="" if not args.json else "\n")
    report = hazard_report(plan)
    print(
        f"pgshift plan: {len(plan.statements)} statement(s) to make '{target.name}' match '{source.name}'"
        + (f"; hazards:\n{report}" if report else ""),
        file=sys.stderr,
    )
    return EXIT_PLAN
