"""The schema commands of the CLI (compare, plan, check, apply, status, deploy)."""

from __future__ import annotations

import argparse
from typing import Any


def add_schema_commands(sub: Any) -> None:
    """Register the schema subcommands on the `pgshift` parser."""
    _ = (sub, argparse)
