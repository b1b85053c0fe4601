"""The migration planner: `plan_migration(source, target)` -> ordered statements with hazards."""

from typing import Any

from pgshift.tools.plan.statement import Hazard, HazardKind, Plan, Statement

__all__ = ["Hazard", "HazardKind", "Plan", "Statement", "plan_migration"]


def __getattr__(name: str) -> Any:
    """`plan_migration` on first use: importing the plan's types (`tools.plan.statement`) must not load the planner."""
    if name == "plan_migration":
        from pgshift.tools.plan.planner import plan_migration

        return plan_migration
    raise AttributeError(f"module 'pgshift.tools.plan' has no attribute {name!r}")
