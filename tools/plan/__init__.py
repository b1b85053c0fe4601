"""The migration planner: `plan_migration(source, target)` -> ordered statements with hazards."""

from tools.plan.planner import plan_migration
from tools.plan.statement import Hazard, HazardKind, Plan, Statement

__all__ = ["Hazard", "HazardKind", "Plan", "Statement", "plan_migration"]
