"""`pgshift dashboard` (a read-only status page on 127.0.0.1 that updates itself) and `pgshift watch` (one JSON
line per change of the status, optionally POSTed to a webhook).

The page is static (`dashboard.html`): its script fetches `/status.json` every few seconds and builds the view
with `textContent` only, so nothing read from a database is ever parsed as HTML. Every response carries a Content
Security Policy that allows the page's own script and style (by a per-response nonce) and fetches to this origin,
nothing else. The status is read at most once per interval however many tabs ask (`StatusCache`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import traceback
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any, TextIO
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pgshift.server.cli import DEBUG_ENV_VAR, add_migrations_argument
from pgshift.server.http import is_loopback
from pgshift.tools.approval import ApprovalStore
from pgshift.tools.databases import Databases, Environment
from pgshift.tools.errors import ConfigError, PgshiftError
from pgshift.tools.untrusted import answer_boundary
from pgshift.tools.watch.status import Providers, Status, StatusCache, default_providers, digest, gather_status

DEFAULT_PORT = 8766
DEFAULT_INTERVAL_S = 5.0
WEBHOOK_TIMEOUT_S = 5.0
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "[::1]", "::1"]
_NONCE = "__PGSHIFT_NONCE__"
# The page is package data of this module's own package, found by the package's real name (never a folder of the
# checkout): `pgshift.server` installed from the wheel, from an editable install or from the demo alike.
PACKAGE = __package__ or "pgshift.server"
_INTERVAL = "__PGSHIFT_INTERVAL_MS__"


def security_headers(nonce: str) -> dict[str, str]:
    csp = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
        "img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
    }


def page(interval_s: float, nonce: str) -> str:
    """The page with this response's nonce and the refresh interval (no data: the script fetches it)."""
    template = files(PACKAGE).joinpath("dashboard.html").read_text(encoding="utf-8")
    return template.replace(_NONCE, nonce).replace(_INTERVAL, str(int(interval_s * 1000)))


Handler = Callable[[Request], Awaitable[Response]]


def guarded(handler: Handler) -> Handler:
    """A handler that never lets an exception reach the server's log: a bug answers 500 with one line on stderr
    naming it; the traceback (which could quote a secret) only with PGSHIFT_DEBUG=1."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            print(
                f"pgshift dashboard: unexpected {type(exc).__name__} answering {request.url.path}; "
                f"set {DEBUG_ENV_VAR}=1 for the traceback",
                file=sys.stderr,
                flush=True,
            )
            if os.environ.get(DEBUG_ENV_VAR):
                traceback.print_exc()
            body = {"error": f"internal error ({type(exc).__name__}): the terminal running pgshift dashboard says more"}
            return JSONResponse(body, status_code=500, headers=security_headers(secrets.token_urlsafe(16)))

    return run


def dashboard_app(
    environments: list[Environment],
    directory: str | None = None,
    *,
    interval_s: float = DEFAULT_INTERVAL_S,
    providers: Providers | None = None,
    approvals: ApprovalStore | None = None,
    allowed_hosts: list[str] | None = None,
) -> Starlette:
    """The dashboard as an ASGI app: `/` the page, `/status.json` the status. Its lifespan owns the pools."""
    db = Databases(environments)
    cache = StatusCache(
        lambda: gather_status(db, directory, providers=providers or default_providers(), approvals=approvals),
        max_age_s=interval_s,
    )

    async def index(_: Request) -> Response:
        nonce = secrets.token_urlsafe(16)
        return Response(page(interval_s, nonce), media_type="text/html; charset=utf-8", headers=security_headers(nonce))

    async def status_json(_: Request) -> Response:
        headers = security_headers(secrets.token_urlsafe(16))
        with answer_boundary():
            try:
                current: Status = await cache.get()
            except PgshiftError as exc:
                return JSONResponse({"error": db.scrub(str(exc))}, status_code=503, headers=headers)
            return Response(current.model_dump_json(), media_type="application/json", headers=headers)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await db.close()

    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)] if allowed_hosts else []
    routes = [
        Route("/", guarded(index), methods=["GET"]),
        Route("/status.json", guarded(status_json), methods=["GET"]),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def exposure_warning(host: str) -> str | None:
    if is_loopback(host):
        return None
    return (
        f"pgshift dashboard: WARNING: --host {host} is not a loopback address: other machines can read this page, "
        "which shows every environment's migrations, history and pending approvals, without any password. Use "
        "127.0.0.1 (the default) unless a proxy with authentication stands in front."
    )


def serve(app: Starlette, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning")


def _dashboard(args: argparse.Namespace) -> int:
    from pgshift.server.config import load_environments

    if args.interval <= 0:
        raise ConfigError("--interval must be a positive number of seconds")
    warning = exposure_warning(args.host)
    if warning:
        print(warning, file=sys.stderr)
    allowed = [*LOOPBACK_NAMES] if is_loopback(args.host) else None  # a rebinding DNS name never gets an answer
    app = dashboard_app(load_environments(), args.migrations, interval_s=args.interval, allowed_hosts=allowed)
    print(f"pgshift dashboard: http://{args.host}:{args.port}/ (read-only, Ctrl-C stops it)", file=sys.stderr)
    serve(app, args.host, args.port)
    return 0


# --- watch -----------------------------------------------------------------------------------------------------


def webhook_target(url: str) -> str:
    """The webhook URL checked (http or https only); ConfigError otherwise. Only its origin is ever printed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("--webhook must be an http:// or https:// URL")
    return url


def webhook_origin(url: str) -> str:
    """What messages call the webhook: scheme and host, never its path or query (they often hold a secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def post_json(url: str, line: str, timeout_s: float = WEBHOOK_TIMEOUT_S) -> str | None:
    """POST one line as JSON; None when the receiver took it (2xx), else why not."""
    request = urllib.request.Request(
        url, data=line.encode(), method="POST", headers={"Content-Type": "application/json", "User-Agent": "pgshift"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        return str(exc.reason)
    except (OSError, TimeoutError) as exc:
        return type(exc).__name__
    return None


async def watch(
    read: Callable[[], Awaitable[Status]],
    *,
    interval_s: float,
    count: int | None = None,
    webhook: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    scrub: Callable[[str], str] = lambda s: s,
) -> int:
    """Check `count` times (forever when None), `interval_s` apart; print one JSON line when the status changed
    (the first check always prints), and POST it to `webhook`. A failed check is a state of its own (`error`);
    a failed webhook is reported on `err` and watching goes on. Returns how many lines were printed."""
    out, err = out or sys.stdout, err or sys.stderr
    last: dict[str, Any] | None = None
    printed = checks = 0
    while count is None or checks < count:
        if checks:
            await asyncio.sleep(interval_s)
        checks += 1
        try:
            status: Status = await read()
            state: dict[str, Any] = digest(status)
            checked_at = status.checked_at.isoformat()
        except PgshiftError as exc:
            state = {"error": scrub(str(exc))}
            checked_at = None
        if state == last:
            continue
        last = state
        line = json.dumps({"checked_at": checked_at, **state}, separators=(",", ":"))
        print(line, file=out, flush=True)
        printed += 1
        if webhook is not None:
            failure = await asyncio.to_thread(post_json, webhook, line)
            if failure is not None:
                print(
                    f"pgshift watch: webhook {webhook_origin(webhook)} failed ({failure}); watching continues",
                    file=err,
                    flush=True,
                )
    return printed


def _watch(args: argparse.Namespace) -> int:
    from pgshift.server.config import load_environments

    if args.interval <= 0 or (args.count is not None and args.count < 1):
        raise ConfigError("--interval must be positive and --count at least 1")
    webhook = webhook_target(args.webhook) if args.webhook else None
    environments = load_environments()
    if not environments:
        raise ConfigError("no environment is configured: set DATABASE_URL / SUPABASE_DB_URL or write pgshift.toml")
    db = Databases(environments)

    async def run() -> int:
        try:
            return await watch(
                lambda: gather_status(db, args.migrations, providers=default_providers()),
                interval_s=args.interval,
                count=args.count,
                webhook=webhook,
                scrub=db.scrub,
            )
        finally:
            await db.close()

    asyncio.run(run())
    return 0


def add_dashboard_commands(sub: Any) -> None:
    """Register `pgshift dashboard` and `pgshift watch`."""
    dashboard = sub.add_parser("dashboard", help="serve a read-only status page that updates itself (127.0.0.1)")
    dashboard.add_argument("--host", default="127.0.0.1", help="address to listen on (anything else is warned about)")
    dashboard.add_argument("--port", type=int, default=DEFAULT_PORT)
    dashboard.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_S, help="seconds between refreshes")
    add_migrations_argument(dashboard)
    dashboard.set_defaults(func=_dashboard)

    watching = sub.add_parser("watch", help="re-check the status; one JSON line per change, optionally to a webhook")
    watching.add_argument("--interval", type=float, default=60.0, help="seconds between checks (default 60)")
    watching.add_argument("--webhook", help="POST each line here (http or https)")
    watching.add_argument("--count", type=int, help="stop after this many checks (default: never)")
    add_migrations_argument(watching)
    watching.set_defaults(func=_watch)
