"""The environment every child process pgshift starts receives: an allow-list, never pgshift's own environment.

pgshift's process holds every environment's URL (DATABASE_URL, SUPABASE_DB_URL, ...) and whatever tokens its
client passed. A child (pg_dump, initdb, pg_ctl, postgres) needs none of them: it gets the locale, the time zone,
PATH, HOME/USER, libpq's TLS *file* settings, and for libpq exactly the one password of the one connection it
makes (PGPASSWORD). Anything else, a variable named like a secret above all, is never passed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

# Passed as they are when set.
ALLOWED = ("PATH", "LANG", "LANGUAGE", "TZ", "HOME", "USER", "LOGNAME", "TMPDIR")
# libpq's TLS settings: file paths and modes, never credentials.
ALLOWED_PG = ("PGSSLMODE", "PGSSLCERT", "PGSSLKEY", "PGSSLROOTCERT", "PGSSLCRL", "PGSSLCRLDIR", "PGSSLSNI")
_SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL|URL|DSN", re.IGNORECASE)


def child_env(password: str | None = None, *, source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process: the allow-listed variables of `source` (default: ours) and, for a
    libpq program, `password` as PGPASSWORD. PGSSLKEY is a file path; it is passed although its name says KEY."""
    source = os.environ if source is None else source
    env = {k: v for k, v in source.items() if k in ALLOWED or k.startswith("LC_")}
    env = {k: v for k, v in env.items() if not _SECRET_NAME.search(k)}
    env.update({k: source[k] for k in ALLOWED_PG if k in source})
    if password:
        env["PGPASSWORD"] = password
    return env
