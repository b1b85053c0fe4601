"""Object kinds declared as one unit: a catalog query and the function that maps its rows to model values.

A declared kind is read by adding its `KindQuery` to `tools.introspect.DECLARED`; the query runs with the same
two bind parameters as every catalog query (`filters.filter_args`), in the same snapshot, and `build` fills the
`Schema` collection named `attr`. Its plan side is one generator in `tools.plan.kinds` (create, drop, alter and
the nodes it depends on), registered in `tools.plan.planner.GENERATORS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """What a `build` function may need to know about the read."""

    include_managed: bool = False


@dataclass(frozen=True, slots=True)
class KindQuery:
    attr: str  # the `Schema` collection it fills (also the query's name)
    sql: str  # takes $1 (excluded schemas) and $2 (selected schemas or NULL)
    build: Callable[[Iterable[asyncpg.Record], ReadOptions], tuple[Any, ...]]  # rows -> sorted model values
