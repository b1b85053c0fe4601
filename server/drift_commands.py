"""`pgshift drift`: the live target against its migrations folder, a CI drift gate.

    pgshift drift --target production [--migrations supabase/migrations] [--format json|markdown] [--adopt NAME]

Exit 0 no drift, 2 drift (objects changed by hand or history problems), 1 error (drift unknown included).
With --adopt NAME the drift is written as a new migration file instead (exit 0 written or nothing to adopt).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable
from typing import Any

from pgshift.server.cli import EXIT_DIFFERENT, EXIT_ERROR, EXIT_OK, add_data_loss_argument, add_migrations_argument
from pgshift.server.commands import _run, _target_db, output_format
from pgshift.server.progress import TerminalProgress
from pgshift.tools.errors import PgshiftError
from pgshift.tools.progress import reported
from pgshift.tools.watch.drift import AdoptResult, DriftReport, SinceLastApply, adopt_drift, detect_drift

SIGN = {"added": "+", "removed": "-", "changed": "~"}


def _cell(value: object) -> str:
    """Database text as one Markdown table cell in code: no pipe, backtick or line break can leave it."""
    text = " ".join(str(value).split()).replace("`", "'").replace("|", "\\|")
    return f"`{text}`"


def render_text(r: DriftReport) -> str:
    """One line per drifted object (fields indented), then the history problems and what to do."""
    s = r.summary
    fast = f" (drift path: {r.drift_path}" + (", unchanged since the last check)" if r.from_fast_path else ")")
    if r.state == "unknown":
        head = f"'{r.environment}': drift unknown: {r.error}"
    elif r.state == "none":
        head = f"'{r.environment}' matches its {r.replayed} applied migration(s) in {r.directory}{fast}"
    else:
        head = (
            f"'{r.environment}' drifted from {r.directory}: {s.added} added, {s.removed} removed, {s.changed} changed "
            f"by hand; {r.history_problem_count} history problem(s){fast}"
        )
    lines = [head]
    for d in r.differences.data:
        lines.append(f"{SIGN[d.change]} {d.kind} {d.name}")
        lines += [f"    {f.field}: {json.dumps(f.before)} -> {json.dumps(f.after)}" for f in d.fields]
    lines += [f"! {p.problem} {p.version} {p.name}: {p.detail}" for p in r.history_problems.data]
    if r.since_last_apply is not None:
        lines += since_lines(r.since_last_apply)
    if r.uncompared_note:
        lines.append(r.uncompared_note)
    lines += [f"next: {step}" for step in r.next_steps]
    return "\n".join(lines)


def since_lines(s: SinceLastApply) -> list[str]:
    """The comparison with the schema the last apply left: the verdict, what was compared, what changed."""
    lines = [f"since last apply: {s.state}: compared with {s.compared}"]
    if s.note:
        lines.append(f"    {s.note}")
    for d in s.differences.data if s.differences is not None else []:
        lines.append(f"    {SIGN[d.change]} {d.kind} {d.name}")
    return lines


def render_markdown(r: DriftReport) -> str:
    """A Markdown summary (a CI job summary or pull-request comment)."""
    verdict = {"none": "No drift", "drift": "Drift", "unknown": "Drift unknown"}[r.state]
    s = r.summary
    lines = [
        f"### {verdict}: `{r.environment}` against `{r.directory}`",
        "",
        f"{r.replayed} applied migration(s) replayed; {s.added} added, {s.removed} removed, {s.changed} changed by "
        f"hand; {r.history_problem_count} history problem(s)." + (" (fast path)" if r.from_fast_path else ""),
    ]
    if r.error:
        lines += ["", f"> {r.error}"]
    if r.differences.data:
        lines += ["", "| change | kind | object | fields |", "| --- | --- | --- | --- |"]
        for d in r.differences.data:
            fields = "<br>".join(f"{_cell(f.field)}: {_cell(f.before)} → {_cell(f.after)}" for f in d.fields)
            lines.append(f"| {d.change} | {d.kind} | {_cell(d.name)} | {fields} |")
    if r.history_problems.data:
        lines += ["", "**History**", ""]
        lines += [f"- {p.problem}: {_cell(p.version)} {_cell(p.name)}: {p.detail}" for p in r.history_problems.data]
    for title, plan in (("Adopt (new migration)", r.adopt), ("Revert", r.revert)):
        if plan is not None and plan.data.statements:
            script = plan.data.script or "\n".join(f"{st.sql};" for st in plan.data.statements)
            lines += ["", f"<details><summary>{title}</summary>", "", "```sql", script.rstrip(), "```", "</details>"]
    if r.since_last_apply is not None:
        lines += ["", "**Since the last apply**", "", *[f"    {line}" for line in since_lines(r.since_last_apply)]]
    if r.next_steps:
        lines += ["", *[f"- {step}" for step in r.next_steps]]
    return "\n".join(lines)


def render_adopt(r: AdoptResult) -> str:
    return "\n".join([r.message, *[f"hazard: {h}" for h in r.hazards], *[f"next: {s}" for s in r.next_steps]])


def _drift(args: argparse.Namespace) -> int:
    try:
        return _drift_or_raise(args)
    except PgshiftError as exc:
        print(f"pgshift drift: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _drift_or_raise(args: argparse.Namespace) -> int:
    db, name = _target_db(args.target)
    if args.adopt:
        adopted: AdoptResult = _run(db, lambda: adopt_drift(db, name, args.adopt, args.migrations))
        print(adopted.model_dump_json(indent=2) if output_format(args) == "json" else render_adopt(adopted))
        return EXIT_OK
    line = TerminalProgress("drift")

    def work() -> Awaitable[DriftReport]:
        checked = detect_drift(
            db,
            name,
            args.migrations,
            allow_data_loss=args.allow_data_loss,
            refresh=args.refresh,
            since=args.since_last_apply,
            plans=output_format(args) != "text",  # text shows neither plan: a CI gate skips planning them
        )
        return reported(line, "checking drift (replaying the migrations)", checked)

    try:
        report: DriftReport = _run(db, work)
    finally:
        line.close()
    if output_format(args) == "json":
        print(report.model_dump_json(indent=2))
    elif args.format == "markdown":
        print(render_markdown(report))
    else:
        print(render_text(report))
    if report.state == "unknown":
        print(f"pgshift drift: {report.error}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_DIFFERENT if report.state == "drift" else EXIT_OK


def add_drift_commands(sub: Any) -> None:
    """Register `pgshift drift` on the `pgshift` parser."""
    p = sub.add_parser("drift", help="the target against its migrations folder (0 no drift, 2 drift, 1 error)")
    p.add_argument("--target", required=True, help="postgresql:// URL or configured environment name")
    add_migrations_argument(p)
    p.add_argument("--json", action="store_true", help="print the full result as JSON (same as --format json)")
    p.add_argument("--format", choices=["text", "json", "markdown"], default="text", help="output format")
    p.add_argument("--adopt", metavar="NAME", help="write the drift as a new migration file named NAME")
    add_data_loss_argument(p, "print the revert script even when it deletes data")
    p.add_argument("--refresh", action="store_true", help="skip the fast path: re-read and replay")
    p.add_argument(
        "--since-last-apply",
        action="store_true",
        help="also compare object by object with the schema the last apply left (a throw-away local database)",
    )
    p.set_defaults(func=_drift)
