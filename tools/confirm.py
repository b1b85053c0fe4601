"""Confirmation tokens: a write to a protected environment needs a token bound to exactly what will run.

A token is an HMAC (server-held key) over the action, the environment, the exact statements and any
extra binding (such as the target's schema fingerprint), with an expiry. It is checkable without
server-side state and cannot be reused for different SQL or a changed target.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from tools.errors import NotAllowed

TOKEN_TTL_S = 15 * 60


class Confirmations:
    def __init__(self, key: bytes | None = None, ttl_s: int = TOKEN_TTL_S) -> None:
        self._key = key or secrets.token_bytes(32)
        self._ttl = ttl_s

    def _mac(self, expires: int, parts: tuple[str, ...]) -> str:
        msg = "\x1f".join((str(expires), *parts)).encode()
        return base64.urlsafe_b64encode(hmac.new(self._key, msg, hashlib.sha256).digest()[:24]).decode().rstrip("=")

    def issue(self, *parts: str) -> str:
        expires = int(time.time()) + self._ttl
        return f"{expires}.{self._mac(expires, parts)}"

    def check(self, token: str, *parts: str, what: str = "this change") -> None:
        """Raise NotAllowed unless `token` was issued for exactly these parts and has not expired."""
        expires_text, _, mac = token.partition(".")
        if not expires_text.isdigit() or not mac:
            raise NotAllowed(f"invalid confirmation token for {what}: nothing was run. Call again without confirm.")
        expires = int(expires_text)
        if not hmac.compare_digest(mac, self._mac(expires, parts)):
            raise NotAllowed(
                f"confirmation token does not match {what}: the statements or the target changed since it was issued "
                "(or it was issued by another server). Nothing was run. Call again without confirm to get a new one."
            )
        if expires < time.time():
            raise NotAllowed(f"confirmation token for {what} expired: nothing was run. Call again without confirm.")
