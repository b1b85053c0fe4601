"""Where engines' progress goes (`tools.progress.Progress`): MCP progress notifications for a tool call, a line on
the terminal for a `pgshift` command. A listener's failure never stops the work it reports on."""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from pgshift.tools.progress import Progress, no_progress


def mcp_progress(ctx: Any) -> Progress:
    """Progress notifications to the client that called the tool (the SDK sends nothing when the client did not
    ask for progress: no progress token)."""

    async def send(done: float, total: float | None, message: str) -> None:
        try:
            await ctx.report_progress(done, total, message)
        except Exception:  # the client went away or the transport failed: the work goes on
            return

    return send


class TerminalProgress:
    """One progress line on stderr, redrawn in place (`\\r`), only when stderr is a terminal (quiet in CI, in a
    pipe, and with `NO_COLOR`-style `PGSHIFT_NO_PROGRESS=1`). `close()` erases it, so messages start clean."""

    def __init__(self, command: str, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.command = command
        if enabled is None:
            enabled = _is_tty(self.stream) and not os.environ.get("PGSHIFT_NO_PROGRESS") and not os.environ.get("CI")
        self.enabled = enabled
        self._drawn = 0

    async def __call__(self, done: float, total: float | None, message: str) -> None:
        if not self.enabled:
            return
        share = f" [{done:g}/{total:g}]" if total else ""
        line = f"pgshift {self.command}: {message}{share}"[: self._width()]
        try:
            self.stream.write("\r" + line.ljust(self._drawn))
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False
            return
        self._drawn = len(line)

    def close(self) -> None:
        if self.enabled and self._drawn:
            try:
                self.stream.write("\r" + " " * self._drawn + "\r")
                self.stream.flush()
            except (OSError, ValueError):
                pass
        self._drawn = 0

    @staticmethod
    def _width() -> int:
        try:
            return max(20, os.get_terminal_size(sys.stderr.fileno()).columns - 1)
        except (OSError, ValueError):
            return 79


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError):
        return False


__all__ = ["Progress", "TerminalProgress", "mcp_progress", "no_progress"]
