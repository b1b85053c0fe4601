"""Order plan steps from a dependency graph (Kahn's algorithm, stable on generation order)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

from pgshift.tools.plan.statement import Statement


@dataclass
class Step:
    """Statements that run together, with the steps that must run before them (by id)."""

    id: str
    statements: list[Statement]
    after: set[str] = field(default_factory=set)


def order_steps(steps: Iterable[Step]) -> list[Step]:
    """Steps in an order where every step follows the steps it names in `after`.

    Ties keep generation order. Edges to unknown ids are ignored (the object needs no change).
    A cycle cannot be ordered by dependencies alone: its steps keep generation order.
    """
    items = list(steps)
    index = {s.id: i for i, s in enumerate(items)}
    indegree = [0] * len(items)
    children: list[list[int]] = [[] for _ in items]
    for i, step in enumerate(items):
        for dep in step.after:
            j = index.get(dep)
            if j is None or j == i:
                continue
            children[j].append(i)
            indegree[i] += 1
    ready = [i for i, d in enumerate(indegree) if d == 0]
    heapq.heapify(ready)
    out: list[int] = []
    done = [False] * len(items)
    while len(out) < len(items):
        if not ready:  # a cycle: release the earliest remaining step
            i = next(k for k in range(len(items)) if not done[k])
            indegree[i] = 0
            heapq.heappush(ready, i)
        i = heapq.heappop(ready)
        if done[i]:
            continue
        done[i] = True
        out.append(i)
        for c in children[i]:
            indegree[c] -= 1
            if indegree[c] == 0 and not done[c]:
                heapq.heappush(ready, c)
    return [items[i] for i in out]
