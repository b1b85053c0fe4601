"""Streamable HTTP on 127.0.0.1, guarded by a bearer token.

The token comes from PGSHIFT_HTTP_TOKEN; when unset, one is generated and printed once on stderr.
Every HTTP request without `Authorization: Bearer <token>` gets 401 before it reaches MCP.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import sys
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN_ENV_VAR = "PGSHIFT_HTTP_TOKEN"


class BearerAuth:
    """ASGI middleware: reject HTTP requests that lack the bearer token (lifespan events pass through)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                body = b'{"error": "unauthorized: send Authorization: Bearer <token>"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def http_app(app: Any, token: str) -> ASGIApp:
    return BearerAuth(app.streamable_http_app(), token)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost; any other name or address (0.0.0.0 included) is reachable from elsewhere."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str) -> str | None:
    if is_loopback(host):
        return None
    return (
        f"pgshift: WARNING: --host {host} is not a loopback address: other machines can reach this server, which "
        "holds database credentials and runs SQL for whoever has the bearer token. The token travels in clear text "
        "over plain HTTP: use 127.0.0.1 (the default) unless a TLS proxy or a private network stands in front."
    )


def serve_http(app: Any, *, host: str = "127.0.0.1", port: int = 8765) -> None:
    import uvicorn

    warning = exposure_warning(host)
    if warning:
        print(warning, file=sys.stderr)
    token = os.environ.get(TOKEN_ENV_VAR)
    if not token:
        token = secrets.token_urlsafe(32)
        print(f"pgshift: {TOKEN_ENV_VAR} not set; generated bearer token for this run: {token}", file=sys.stderr)
    print(f"pgshift: serving MCP at http://{host}:{port}/mcp", file=sys.stderr)
    uvicorn.run(http_app(app, token), host=host, port=port, log_level="warning")
