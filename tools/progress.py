"""Progress of long work (a deploy of hundreds of migrations, a rollback, a snapshot verification, a drift replay, a
compare of a large schema), reported by the engine that does it and shown by the surface that called it.

An engine takes `progress: Progress = no_progress` and awaits `progress(done, total, message)` at each step
(`total` None when unknown). The engine never knows who listens: `server/` passes a callback that sends MCP progress
notifications (the SDK's `Context.report_progress`, a no-op when the client did not ask for progress), or one that
draws a progress line on a terminal (`pgshift` on a TTY; nothing in CI). A listener's failure never stops the work.

Messages name the step in our words (a migration's label is the folder's own name): no database text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

Progress = Callable[[float, float | None, str], Awaitable[None]]
"""`await progress(done, total, message)`: `done` of `total` steps (total None: unknown), what is being done."""


async def no_progress(done: float, total: float | None, message: str) -> None:
    """The default: nobody listens."""


def stages(progress: Progress, names: tuple[str, ...]) -> Callable[[int], Awaitable[None]]:
    """For work in a few fixed stages: `await stage(i)` reports stage `i` of `len(names)` with its name (`i ==
    len(names)` reports the end, named by the last stage)."""

    async def stage(i: int) -> None:
        await progress(i, len(names), names[min(i, len(names) - 1)])

    return stage


async def reported(progress: Progress, what: str, work: Awaitable[T]) -> T:
    """Run one long step whose engine reports nothing finer: its start and its end."""
    await progress(0, 1, f"{what}: started")
    result = await work
    await progress(1, 1, f"{what}: done")
    return result
