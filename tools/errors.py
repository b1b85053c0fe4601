"""The project's exception hierarchy: one root, a few kinds that mean something to a user.

Every message is written for the person or assistant who reads it: what failed, what state the
database is in, what to do next. Messages never contain passwords (see `tools.redact`).
"""

from __future__ import annotations


class PgshiftError(Exception):
    """Root of every error pgshift raises on purpose."""


class ConfigError(PgshiftError):
    """The configuration or the caller's input is wrong (unknown environment, bad argument)."""


class ConnectionFailed(PgshiftError):
    """An environment's database could not be reached or refused our credentials."""


class NotAllowed(PgshiftError):
    """The request is refused by policy: protected or read-only environment, missing confirmation."""


class DatabaseError(PgshiftError):
    """PostgreSQL rejected a statement; `sqlstate` says why. The message says what state remains."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class EnvironmentBusy(PgshiftError):
    """Every connection of an environment's pool stayed in use for the whole wait: nothing was run."""
