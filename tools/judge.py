"""The independent judge: are two databases' schemas equal, by `pg_dump --schema-only`?

Nothing here uses our own introspection, so it can prove the planner (and rewrites) right or wrong.
The dump is normalised: comments, `SET` lines and session noise are removed, each archive entry
becomes one block, blocks are sorted, and the lines of a `CREATE TABLE` column list are sorted so
column order does not count (adding a column in the middle of a table cannot be replayed by
`ALTER TABLE`). Everything else (types, defaults, constraints, grants, owners) counts.
"""

from __future__ import annotations

import asyncio
import difflib
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pgshift.tools.child_env import child_env
from pgshift.tools.errors import DatabaseError
from pgshift.tools.redact import scrub, url_password
from pgshift.tools.untrusted import fence_text

DUMP_TIMEOUT_S = 120.0

# pg_dump writes one of these headers before every archive entry.
_ENTRY_HEADER = re.compile(r"^--\n-- (?:Name|Data for Name|TOC entry).*\n--\n", re.MULTILINE)
_NOISE_LINE = re.compile(
    r"^(SET [a-z_]+ = .*;|SELECT pg_catalog\.set_config\('search_path', '', false\);|\\(?:un)?restrict \S+"
    r"|--|-- PostgreSQL database dump( complete)?|-- Dumped (?:from database|by pg_dump) version .*)$"
)
_CREATE_TABLE = re.compile(r"^(CREATE (?:UNLOGGED |FOREIGN )?TABLE [^\n]* \(\n)(.*?)(\n\).*)$", re.DOTALL)


def url_without_password(url: str) -> str:
    """The URL for a libpq tool's command line: the password goes in PGPASSWORD instead (see `pg_env`)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}@{host}"
    query = "&".join(p for p in parts.query.split("&") if p and not p.lower().startswith("password="))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def pg_env(url: str) -> dict[str, str]:
    """The environment for a libpq tool: the allow-list of `tools.child_env` and this URL's password in PGPASSWORD
    (never another environment's URL, never a token)."""
    return child_env(url_password(url))


async def dump_schema(url: str, bin_dir: Path, *, no_owner: bool = False, secrets: Sequence[str] = ()) -> str:
    """`pg_dump --schema-only` (with `--no-owner` when asked) of the database at `url`, with `bin_dir`'s pg_dump.

    The password travels in PGPASSWORD, never on the command line; errors are scrubbed of it and of `secrets`,
    and pg_dump's own words are fenced as untrusted text.
    """
    args = [str(bin_dir / "pg_dump"), "--schema-only", *(["--no-owner"] if no_owner else [])]
    proc = await asyncio.create_subprocess_exec(
        *args,
        "--dbname",
        url_without_password(url),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=pg_env(url),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=DUMP_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise DatabaseError(f"pg_dump did not finish within {DUMP_TIMEOUT_S:.0f} s; nothing was changed") from None
    if proc.returncode != 0:
        said = scrub(err.decode(errors="replace").strip(), [*secrets, url_password(url) or ""])
        raise DatabaseError(f"pg_dump failed (exit {proc.returncode}): {fence_text(said)}; nothing was changed")
    return out.decode()


def _normalise_entry(block: str) -> str:
    lines = [ln.rstrip() for ln in block.strip("\n").split("\n")]
    lines = [ln for ln in lines if not _NOISE_LINE.match(ln)]
    text = "\n".join(lines).strip()
    # Column order aside: sort the body lines of every CREATE TABLE in the entry.
    statements = re.split(r"(?<=;)\n", text)
    out = []
    for stmt in statements:
        m = _CREATE_TABLE.match(stmt.strip())
        if m:
            body = sorted(ln.strip().removesuffix(",") for ln in m.group(2).split("\n") if ln.strip())
            stmt = m.group(1) + ",\n".join(f"    {ln}" for ln in body) + m.group(3)
        out.append(stmt.strip())
    if out and all(s.startswith(("GRANT ", "REVOKE ")) for s in out):
        out.sort()  # the order of the grants inside one ACL entry means nothing
    return "\n".join(s for s in out if s)


def normalise_dump(text: str) -> str:
    """A canonical form of a schema dump: noise removed, entries sorted, column order ignored."""
    entries = _ENTRY_HEADER.split(text)
    blocks = sorted({b for b in (_normalise_entry(e) for e in entries) if b})
    return "\n\n".join(blocks) + "\n"


async def judge_equal(url_a: str, url_b: str, bin_dir: Path) -> tuple[bool, str]:
    """Whether the schemas at `url_a` and `url_b` are equal; the unified diff of their normal forms if not."""
    dump_a, dump_b = await asyncio.gather(dump_schema(url_a, bin_dir), dump_schema(url_b, bin_dir))
    norm_a, norm_b = normalise_dump(dump_a), normalise_dump(dump_b)
    if norm_a == norm_b:
        return True, ""
    diff = difflib.unified_diff(
        norm_a.splitlines(keepends=True), norm_b.splitlines(keepends=True), fromfile="a", tofile="b"
    )
    return False, "".join(diff)
