"""How a message names one of the caller's options, on the surface it came through.

Engines are shared by MCP and the CLI, so a message such as "pass accept_data_loss to lose it" must not name the MCP
argument to a person at a terminal. An engine names the option with an `Option` value inside its f-string
(`f"... {ACCEPT_DATA_LOSS} to lose it"`); the option renders itself for the surface running the call: the MCP
argument (`accept_data_loss=true`) by default, the CLI flag (`--accept-data-loss`) inside `cli_surface()`, which the
`pgshift` command enters once for the whole run.

One name per option lives here, so a renamed flag or argument changes every message that names it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Surface = Literal["mcp", "cli"]
_surface: contextvars.ContextVar[Surface] = contextvars.ContextVar("pgshift_surface", default="mcp")


@contextlib.contextmanager
def cli_surface() -> Iterator[None]:
    """Inside this block (and the tasks and threads it starts), options render as CLI flags."""
    token = _surface.set("cli")
    try:
        yield
    finally:
        _surface.reset(token)


def surface() -> Surface:
    return _surface.get()


@dataclass(frozen=True)
class Option:
    """One option of a tool or command: `argument` (MCP) and `flag` (CLI; None when the CLI has no such flag, then
    the MCP name is used everywhere). `value` is the MCP value a message asks for (`true`; None names the argument
    alone), `metavar` what follows the flag (None for a switch)."""

    argument: str
    flag: str | None = None
    value: str | None = "true"
    metavar: str | None = None

    def rendered(self, on: Surface | None = None) -> str:
        if (on or surface()) == "cli" and self.flag is not None:
            return self.flag if self.metavar is None else f"{self.flag} {self.metavar}"
        return self.argument if self.value is None else f"{self.argument}={self.value}"

    def __str__(self) -> str:
        return self.rendered()

    def __format__(self, spec: str) -> str:
        return format(self.rendered(), spec)


ACCEPT_DATA_LOSS = Option("accept_data_loss", "--allow-data-loss")
ALLOW_DATA_LOSS = Option("allow_data_loss", "--allow-data-loss")
SINCE_LAST_APPLY = Option("since_last_apply", "--since-last-apply")
DIRECTORY = Option("directory", "--migrations", value=None, metavar="DIR")
SNAPSHOT = Option("snapshot", "--snapshot", value=None, metavar="ID")
DETAIL = Option("detail", None)
WRITE = Option("write", None)
