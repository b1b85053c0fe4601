"""Migration history tables are not schema: leave Prisma's `_prisma_migrations` out of a model.

The history schemas (`pgshift`, `supabase_migrations`) never reach the model: the catalog queries exclude
them (`filters.filter_args`). Prisma keeps `_prisma_migrations` in the app's own schema, so that table is
taken out here, with everything that belongs to it (columns, constraints, indexes, triggers, policies,
grants, dependencies and the sequences it owns).
"""

from __future__ import annotations

import dataclasses

from pgshift.tools.introspect.filters import HISTORY_TABLES
from pgshift.tools.model import Schema


def without_history_tables(schema: Schema) -> Schema:
    """`schema` without the history tables (the same object when it has none)."""
    keys = {t.key for t in schema.tables if t.name in HISTORY_TABLES}
    if not keys:
        return schema

    def inside(key: str | None) -> bool:
        return key is not None and (key in keys or any(key.startswith(f"{k}.") for k in keys))

    return dataclasses.replace(
        schema,
        tables=tuple(t for t in schema.tables if t.key not in keys),
        sequences=tuple(s for s in schema.sequences if not inside(s.owned_by)),
        constraints=tuple(c for c in schema.constraints if c.table not in keys),
        indexes=tuple(i for i in schema.indexes if i.table not in keys),
        triggers=tuple(t for t in schema.triggers if t.table not in keys),
        policies=tuple(p for p in schema.policies if p.table not in keys),
        privileges=tuple(p for p in schema.privileges if not inside(p.object)),
        dependencies=tuple(d for d in schema.dependencies if not (inside(d.key) or inside(d.on_key))),
    )
