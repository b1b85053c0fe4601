"""Keep secrets out of everything we print, log or return."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "****"
_URL_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL with its password (in the userinfo or the query string) masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":" + MASK
        netloc = f"{userinfo}@{host}"
    query = re.sub(r"(^|&)(password=)[^&]*", rf"\1\2{MASK}", parts.query, flags=re.IGNORECASE)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_password(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.password:
        return unquote(parts.password)
    m = re.search(r"(?:^|&)password=([^&]*)", parts.query, flags=re.IGNORECASE)
    return unquote(m.group(1)) if m else None


def scrub(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Remove passwords from free text: any URL password, `password=...` pairs, and each known secret."""
    text = _URL_PASSWORD.sub(rf"\1{MASK}\3", text)
    text = _KV_PASSWORD.sub(rf"\1{MASK}", text)
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, MASK)
    return text
