"""`pgshift` command line: serve MCP (stdio or HTTP), run the demo, and the CI-friendly commands.

Exit codes for the schema commands: 0 in sync / nothing to do, 2 differences / a plan, 1 error,
3 a plan that would lose data without --allow-data-loss. Data goes to stdout, messages to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from pgshift.tools.errors import PgshiftError
from pgshift.tools.options import cli_surface

EXIT_OK, EXIT_ERROR, EXIT_DIFFERENT, EXIT_DATA_LOSS = 0, 1, 2, 3
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command stopped by a closed pipe
DEBUG_ENV_VAR = "PGSHIFT_DEBUG"
# The modules that add subcommands, in order, each by its `add_*` function. A command imports only the modules up to
# the one that defines it (`pgshift compare` never loads the rollback planner or the dashboard's web stack);
# `--help` or an unknown command loads them all.
COMMAND_MODULES = (
    ("pgshift.server.commands", "add_schema_commands"),
    ("pgshift.server.undo_commands", "add_undo_commands"),
    ("pgshift.server.drift_commands", "add_drift_commands"),
    ("pgshift.server.dashboard", "add_dashboard_commands"),
)


def add_migrations_argument(parser: argparse.ArgumentParser) -> None:
    """The migrations folder, one spelling in every command: `--migrations` (`--dir`, an older spelling of
    `pgshift drift`, still works and is not shown)."""
    parser.add_argument(
        "--migrations", metavar="DIR", help="prisma/migrations or supabase/migrations (found when omitted)"
    )
    parser.add_argument("--dir", dest="migrations", help=argparse.SUPPRESS)


def add_data_loss_argument(parser: argparse.ArgumentParser, help: str, dest: str = "allow_data_loss") -> None:
    """`--allow-data-loss`, one spelling in every command (`--accept-data-loss` still works and is not shown)."""
    parser.add_argument("--allow-data-loss", dest=dest, action="store_true", help=help)
    parser.add_argument("--accept-data-loss", dest=dest, action="store_true", help=argparse.SUPPRESS)


def _serve(args: argparse.Namespace) -> int:
    from pgshift.server.app import build_app
    from pgshift.server.config import load_configuration

    config = load_configuration()
    if config.problem is not None:  # the server starts anyway: every tool call answers with the problem
        print(f"pgshift: {config.problem}", file=sys.stderr)
    app = build_app(lambda: config)
    if args.http:
        from pgshift.server.http import serve_http

        serve_http(app, host=args.host, port=args.port)
    else:
        app.run("stdio")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from pgshift.server.demo import run_demo

    return run_demo("json" if args.json else "verbose" if args.verbose else "story")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `pgshift` parser; given the `command` about to run, only as far as the module that defines it."""
    parser = argparse.ArgumentParser(prog="pgshift", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve MCP over stdio (default) or streamable HTTP")
    serve.add_argument("--http", action="store_true", help="serve streamable HTTP (bearer token required)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; anything else is warned about)"
    )
    serve.add_argument("--port", type=int, default=8765)
    serve.set_defaults(func=_serve)

    demo = sub.add_parser("demo", help="start two embedded PostgreSQL servers and drive every tool through MCP")
    shown = demo.add_mutually_exclusive_group()
    shown.add_argument("--verbose", action="store_true", help="the story with every raw tool answer under its line")
    shown.add_argument("--json", action="store_true", help="only the raw answers: one JSON object per tool call")
    demo.set_defaults(func=_demo)

    for module, add in COMMAND_MODULES:
        if command is not None and command in sub.choices:
            break
        getattr(importlib.import_module(module), add)(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Never prints a traceback: errors are one line on stderr (a traceback could quote a
    password), and a reader that stops early (`pgshift plan ... | head`) ends the command quietly."""
    given = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in given if not a.startswith("-")), None)  # the parser has no top-level options
    args = build_parser(command).parse_args(given)
    try:
        with cli_surface():  # messages from shared engines name CLI flags, not MCP arguments
            code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe surfaces here, not in the interpreter's own flush at exit
        return code
    except BrokenPipeError:
        _detach_stdout()
        return EXIT_BROKEN_PIPE
    except PgshiftError as exc:
        print(f"pgshift: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR
    except Exception as exc:  # a bug: name it, but its message or traceback might quote a secret
        print(f"pgshift: unexpected {type(exc).__name__}; set {DEBUG_ENV_VAR}=1 for the traceback", file=sys.stderr)
        if os.environ.get(DEBUG_ENV_VAR):
            traceback.print_exc()
        return EXIT_ERROR


def _detach_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again on the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


if __name__ == "__main__":
    raise SystemExit(main())
