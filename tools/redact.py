"""Keep secrets out of everything we print, log or return.

URLs are split the way a person meant them, not the way `urlsplit` reads a malformed one: the user
information runs up to the *last* `@`, so a password holding an unencoded `#`, `/`, `?` or `@` is still
masked whole (never shown in part as a "port", a path or a fragment).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "****"
_URL_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)(\S*)(@)")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)


def split_userinfo(url: str) -> tuple[str, str | None, str]:
    """(`scheme://`, user information or None, the rest): the user information ends at the last `@`."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return (scheme + sep, None, rest) if sep else ("", None, url)
    userinfo, _, hostpart = rest.rpartition("@")
    return scheme + sep, userinfo, hostpart


def redact_url(url: str) -> str:
    """The URL with its password (in the user information or the query string) masked."""
    prefix, userinfo, rest = split_userinfo(url)
    rest = _QUERY_PASSWORD.sub(rf"\1{MASK}", rest)
    if userinfo is None:
        return prefix + rest
    if ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":" + MASK
    return f"{prefix}{userinfo}@{rest}"


def url_password(url: str, *, decode: bool = True) -> str | None:
    """The password of a URL, wherever it is: user information or `password=` in the query.

    Decoded by default (what the server receives); `decode=False` gives it as written in the URL."""
    _, userinfo, rest = split_userinfo(url)
    found: str | None = None
    if userinfo is not None and ":" in userinfo:
        found = userinfo.split(":", 1)[1] or None
    if found is None:
        m = re.search(r"[?&]password=([^&]*)", rest, flags=re.IGNORECASE)
        found = m.group(1) if m else None
    return unquote(found) if found is not None and decode else found


def url_secrets(url: str) -> list[str]:
    """Every form of the URL's password worth scrubbing from text: as written and decoded."""
    return sorted({p for p in (url_password(url), url_password(url, decode=False)) if p})


def scrub(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Remove passwords from free text: any URL password, `password=...` pairs, and each known secret."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) >= 3:
            text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(rf"\1{MASK}\3", text)
    return _KV_PASSWORD.sub(rf"\1{MASK}", text)
