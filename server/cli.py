"""`pgshift` command line: serve MCP (stdio or HTTP), run the demo, and the CI-friendly commands.

Exit codes for the schema commands: 0 in sync / nothing to do, 2 differences / a plan, 1 error,
3 a plan that would lose data without --allow-data-loss. Data goes to stdout, messages to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tools.errors import PgshiftError

EXIT_OK, EXIT_ERROR, EXIT_DIFFERENT, EXIT_DATA_LOSS = 0, 1, 2, 3


def _serve(args: argparse.Namespace) -> int:
    from server.app import build_app
    from server.config import load_environments

    environments = load_environments()  # configuration errors stop here, before any client connects
    app = build_app(lambda: environments)
    if args.http:
        from server.http import serve_http

        serve_http(app, host=args.host, port=args.port)
    else:
        app.run("stdio")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from server.demo import run_demo

    return run_demo()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgshift", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve MCP over stdio (default) or streamable HTTP")
    serve.add_argument("--http", action="store_true", help="serve streamable HTTP (bearer token required)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.set_defaults(func=_serve)

    demo = sub.add_parser("demo", help="start two embedded PostgreSQL servers and drive every tool through MCP")
    demo.set_defaults(func=_demo)

    from server import commands

    commands.add_schema_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except PgshiftError as exc:
        print(f"pgshift: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
