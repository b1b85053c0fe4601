"""Where environments come from: pgshift.toml, [tool.pgshift] in pyproject.toml, or environment variables.

    # pgshift.toml
    [environments.local]
    url_env = "DATABASE_URL"          # or url = "postgresql://..."

    [environments.production]
    url_env = "SUPABASE_DB_URL"
    protected = true                  # default: true for 'production', false otherwise
    read_only = false
    shadow_url_env = "SHADOW_DB_URL"  # optional: where throw-away copies are built (see tools/scratch.py)
    kept_retention_days = 30          # undo's kept data expires after this (tools/undo/retention.py)
    keep_snapshots = 20               # newest snapshots kept

With no file: `local` from DATABASE_URL and `production` from SUPABASE_DB_URL, read from the process
environment or, as Prisma does, from ./.env. An environment whose variable is unset is left out.

The server never dies of its configuration: `load_configuration` turns a broken one (bad TOML, an unset variable,
a URL that is not postgresql://) into a `problem` that every tool call answers with, next step included, so a
client shows it instead of "Connection closed". With nothing configured, tools answer with NOTHING_CONFIGURED.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgshift.tools.databases import Environment
from pgshift.tools.errors import ConfigError

DEFAULT_VARIABLES = {"local": "DATABASE_URL", "production": "SUPABASE_DB_URL"}
PROTECTED_BY_DEFAULT = frozenset({"production", "prod"})
CONFIG_ENV_VAR = "PGSHIFT_CONFIG"

CONFIGURE_NEXT_STEP = (
    "Next step: set DATABASE_URL (local) and SUPABASE_DB_URL (production) to postgresql:// URLs in the `env` block "
    "of the MCP client's server entry or in ./.env of the directory the server runs in, or create pgshift.toml "
    'there with [environments.local] url_env = "DATABASE_URL"; then restart the server (Claude Code: /mcp, then '
    "reconnect)."
)
NOTHING_CONFIGURED = f"no database environment is configured. {CONFIGURE_NEXT_STEP}"
FIX_AND_RESTART = (
    "Next step: fix it, then restart the server (Claude Code: /mcp, then reconnect). Until then every tool answers "
    "with this error; `pgshift serve` run in a terminal prints the same message."
)


@dataclass(frozen=True)
class Configuration:
    """The environments the server starts with, and what is wrong with the configuration (None: nothing)."""

    environments: list[Environment]
    problem: str | None = None


def load_configuration(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> Configuration:
    """Like `load_environments`, but never raises: a broken configuration becomes a `problem`."""
    try:
        return Configuration(load_environments(cwd, environ))
    except ConfigError as exc:
        return Configuration([], f"pgshift configuration error: {exc}. {FIX_AND_RESTART}")


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=value lines of a .env file (quotes stripped, comments and `export ` allowed)."""
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out[key.strip()] = value
    return out


def _lookup(variable: str, environ: Mapping[str, str], dotenv: Mapping[str, str]) -> str | None:
    return environ.get(variable) or dotenv.get(variable) or None


def _size(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"[environments.{name}] max_kept_bytes must be a whole number of bytes (0 or more)")
    return value


def _shadow_url(
    name: str, spec: Mapping[str, Any], environ: Mapping[str, str], dotenv: Mapping[str, str]
) -> str | None:
    """`shadow_url` / `shadow_url_env`: the scratch server for this environment's throw-away copies (tools.scratch)."""
    url = spec.get("shadow_url")
    if url is None and "shadow_url_env" in spec:
        url = _lookup(str(spec["shadow_url_env"]), environ, dotenv)
        if url is None:
            raise ConfigError(f"environment '{name}': variable {spec['shadow_url_env']} (shadow_url_env) is not set")
    if url is not None and (not isinstance(url, str) or not url.startswith(("postgres://", "postgresql://"))):
        raise ConfigError(f"[environments.{name}] shadow_url must be a postgresql:// URL")
    return url


def _retention(name: str, spec: Mapping[str, Any]) -> dict[str, int]:
    """`kept_retention_days` (days undo keeps destroyed data; default 30) and `keep_snapshots` (newest snapshots kept;
    default 20), when set (tools.undo.retention)."""
    out = {}
    for key, least in (("kept_retention_days", 0), ("keep_snapshots", 1)):
        value = spec.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"[environments.{name}] {key} must be a whole number ({least} or more)")
            out[key] = value
    return out


def _from_table(table: Mapping[str, Any], environ: Mapping[str, str], dotenv: Mapping[str, str]) -> list[Environment]:
    envs = table.get("environments")
    if not isinstance(envs, dict) or not envs:
        raise ConfigError("pgshift configuration has no [environments.<name>] tables")
    out = []
    for name, spec in envs.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"[environments.{name}] must be a table")
        unknown = set(spec) - {
            "url",
            "url_env",
            "protected",
            "read_only",
            "max_kept_bytes",
            "shadow_url",
            "shadow_url_env",
            "kept_retention_days",
            "keep_snapshots",
        }
        if unknown:
            raise ConfigError(f"[environments.{name}] has unknown keys: {', '.join(sorted(unknown))}")
        url = spec.get("url")
        if url is None and "url_env" in spec:
            url = _lookup(str(spec["url_env"]), environ, dotenv)
            if url is None:
                raise ConfigError(
                    f"environment '{name}': variable {spec['url_env']} is not set (set it in the `env` block of the "
                    "MCP client's server entry, or in ./.env)"
                )
        if not isinstance(url, str) or not url.startswith(("postgres://", "postgresql://")):
            raise ConfigError(
                f"environment '{name}' needs url = 'postgresql://...' or url_env = 'VARIABLE' naming a variable that "
                "holds a postgresql:// URL"
            )
        out.append(
            Environment(
                name=name,
                url=url,
                protected=bool(spec.get("protected", name in PROTECTED_BY_DEFAULT)),
                read_only=bool(spec.get("read_only", False)),
                max_kept_bytes=_size(name, spec.get("max_kept_bytes")),
                shadow_url=_shadow_url(name, spec, environ, dotenv),
                **_retention(name, spec),
            )
        )
    return out


def load_environments(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> list[Environment]:
    """The configured environments, from the first source that exists (see module docstring)."""
    cwd = cwd or Path.cwd()
    environ = os.environ if environ is None else environ
    dotenv = read_dotenv(cwd / ".env")
    explicit = environ.get(CONFIG_ENV_VAR)
    candidates = [Path(explicit)] if explicit else [cwd / "pgshift.toml"]
    for path in candidates:
        if path.is_file():
            try:
                return _from_table(tomllib.loads(path.read_text()), environ, dotenv)
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        if explicit:
            raise ConfigError(f"{CONFIG_ENV_VAR}={explicit}: no such file")
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        try:
            table = tomllib.loads(pyproject.read_text()).get("tool", {}).get("pgshift")
        except tomllib.TOMLDecodeError:
            table = None
        if table:
            return _from_table(table, environ, dotenv)
    out = []
    for name, variable in DEFAULT_VARIABLES.items():
        url = _lookup(variable, environ, dotenv)
        if url:
            out.append(Environment(name=name, url=url, protected=name in PROTECTED_BY_DEFAULT))
    return out
