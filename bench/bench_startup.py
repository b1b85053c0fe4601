"""Start-up cost: `python -m server` until it answers `initialize` over stdio, and the whole `pgshift compare`
process against migra on the same drifted pairs, in one run.

    python bench/bench_startup.py [--sizes 1000 5000] [--runs 5] [--migra /tmp/migra-venv/bin/migra] [--tree DIR]
                                  [--no-plan] [--no-startup] [--pair TABLES BASE_URL TARGET_URL ...]

`--tree DIR` (repeatable) measures copies of the source, e.g. before and after a change, in interleaved rounds: every
child process runs with PYTHONPATH=DIR, so its `server` and `tools` shadow this venv's editable install.

Measured, each in a fresh process, medians of --runs (interleaved, so load from elsewhere weighs on each alike):

- `python -c pass`: the interpreter alone, the floor of any Python command;
- `python -m server` from exec to its answer to `initialize` (written on stdin, read from stdout);
- the import time of what `python -m server` and `pgshift compare` load (`python -X importtime`, summed per top-level
  package), to show where start-up goes;
- `pgshift compare --source base --target target` (run as `python -m server.cli compare`, what the console
  script runs; whole process: interpreter, imports, connections, both catalog reads, diff, text output) and
  `migra --unsafe` on the same pair (its own venv: see bench/README.md), and `pgshift plan --allow-data-loss`
  (whole process: both catalog reads with dependencies, the planner, the script, the row checks), for each size,
  printed as ratios (compare / migra, plan / migra, plan / compare); the pairs come from
  `../shared/tools/genschema.py` as in bench_compare.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_compare import GENSCHEMA, build_pair, run_with_peak  # noqa: E402

NEUTRAL_DIR = tempfile.gettempdir()  # children run here: a working directory on sys.path would shadow --tree
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}},
}
SERVE_IMPORTS = (
    "from pgshift.server.cli import build_parser; build_parser('serve'); from pgshift.server.app import build_app; "
    "from pgshift.server.config import load_configuration; c = load_configuration(); build_app(lambda: c)"
)
COMPARE_IMPORTS = (
    "from pgshift.server.cli import build_parser; "
    "args = build_parser('compare').parse_args(['compare', '--source', 'a://', '--target', 'b://']); "
    "import pgshift.server.commands, pgshift.tools.compare"
)


def child_env(tree: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(tree)}


def interpreter_alone() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def server_to_initialize(workdir: str, tree: Path) -> float:
    """Seconds from exec of `python -m server` to its initialize answer on stdout (then stdin closes; it exits)."""
    env = child_env(tree)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgshift"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
        env=env,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps(INITIALIZE) + "\n")
        proc.stdin.flush()
        answer = json.loads(proc.stdout.readline())
        elapsed = time.perf_counter() - started
        assert answer.get("id") == 1 and "result" in answer, answer
        proc.stdin.close()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    return elapsed


def import_profile(code: str, tree: Path) -> tuple[float, list[tuple[str, float]]]:
    """Total import milliseconds of `code` and the heaviest top-level packages (self time, summed)."""
    command = [sys.executable, "-X", "importtime", "-c", code]
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=child_env(tree), cwd=NEUTRAL_DIR)
    err = done.stderr
    per: Counter[str] = Counter()
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = (part.strip() for part in line.split(":", 1)[1].split("|"))
        parts = name.split(".")
        per[".".join(parts[:2]) if parts[0] in ("tools", "server") else parts[0]] += int(own)
    return sum(per.values()) / 1000, [(k, v / 1000) for k, v in per.most_common(8)]


def compare_process(tree: Path, source: str, target: str, command: str = "compare") -> float:
    """Seconds of one whole `pgshift compare` (or `pgshift plan`) process (exit code 2: the pair differs)."""
    extra = ["--allow-data-loss"] if command == "plan" else []
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pgshift.server.cli", command, "--source", source, "--target", target, *extra],
        capture_output=True,
        text=True,
        env=child_env(tree),
        cwd=NEUTRAL_DIR,
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 2:
        raise SystemExit(f"pgshift {command} exited {done.returncode} on a drifted pair: {done.stderr[-500:]}")
    return elapsed


def fmt(times: list[float]) -> str:
    return ", ".join(f"{t:.2f} s" for t in times) or "not run"


def startup(trees: list[Path], runs: int) -> None:
    """Interpreter alone, `python -m server` to initialize, and the import profiles, per tree (rounds interleaved)."""
    bare: list[float] = []
    serve: dict[Path, list[float]] = {t: [] for t in trees}
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(runs):
            bare.append(interpreter_alone())
            for tree in trees:
                serve[tree].append(server_to_initialize(workdir, tree))
    print(f"python -c pass: median {statistics.median(bare):.3f} s (min {min(bare):.3f})")
    for tree in trees:
        times = serve[tree]
        print(f"[{tree}] python -m server to its initialize answer: median {statistics.median(times):.3f} s")
    for label, code in (("python -m server", SERVE_IMPORTS), ("pgshift compare", COMPARE_IMPORTS)):
        profiles: dict[Path, list[tuple[float, list[tuple[str, float]]]]] = {t: [] for t in trees}
        for _ in range(runs):
            for tree in trees:
                profiles[tree].append(import_profile(code, tree))
        for tree in trees:
            total, heaviest = min(profiles[tree], key=lambda r: r[0])
            listed = ", ".join(f"{name} {ms:.0f}" for name, ms in heaviest)
            print(f"[{tree}] imports of {label}: {total:.0f} ms (least of {runs}); heaviest (ms): {listed}", flush=True)


Row = tuple[int, Path, float, float, float]


def compares(
    trees: list[Path], sizes: list[int], runs: int, migra_bin: str, plan: bool, given: list[list[str]] | None = None
) -> list[Row]:
    """(tables, tree, our compare's median, migra's median, our plan's median or NaN) for every size and tree, on
    the same pairs, rounds interleaved. `given`: pairs already built, as [tables, base URL, target URL]."""
    if not GENSCHEMA.exists() and not given:
        raise SystemExit(f"{GENSCHEMA} not found: it generates the drifted pairs")
    have_migra = Path(migra_bin).exists()
    if not have_migra:
        print(f"migra not found at {migra_bin}: see bench/README.md (only our times are measured)", flush=True)
    from pgshift.tools.localpg import embedded_server

    rows = []
    server = embedded_server().start() if not given else None
    pairs = [(int(n), b, t) for n, b, t in given] if given else [(n, "", "") for n in sizes]
    try:
        for n, base, target in pairs:
            if server is not None:
                base, target = build_pair(server.url(), server.url, n, str(server.bin_dir / "psql"))
            ours: dict[Path, list[float]] = {t: [] for t in trees}
            plans: dict[Path, list[float]] = {t: [] for t in trees}
            migra: list[float] = []
            for _ in range(runs):
                for tree in trees:
                    ours[tree].append(compare_process(tree, base, target))
                    if plan:
                        plans[tree].append(compare_process(tree, base, target, "plan"))
                if have_migra:
                    migra.append(run_with_peak([migra_bin, "--unsafe", target, base])[0])
            migra_s = statistics.median(migra) if migra else float("nan")
            print(f"{n} tables: migra {fmt(migra)}", flush=True)
            for tree in trees:
                print(f"{n} tables: [{tree}] pgshift compare {fmt(ours[tree])}", flush=True)
                if plan:
                    print(f"{n} tables: [{tree}] pgshift plan {fmt(plans[tree])}", flush=True)
                plan_s = statistics.median(plans[tree]) if plans[tree] else float("nan")
                rows.append((n, tree, statistics.median(ours[tree]), migra_s, plan_s))
    finally:
        if server is not None:
            server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 5000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--migra", default="/tmp/migra-venv/bin/migra")
    parser.add_argument(
        "--tree", type=Path, action="append", help="a source tree to measure (repeatable; default: this checkout)"
    )
    parser.add_argument(
        "--no-plan", dest="plan", action="store_false", help="leave out `pgshift plan` (timed on the same pairs)"
    )
    parser.add_argument(
        "--pair",
        nargs=3,
        action="append",
        metavar=("TABLES", "BASE_URL", "TARGET_URL"),
        help="measure a pair already built (genschema's base and target) instead of building --sizes",
    )
    parser.add_argument("--no-startup", dest="startup", action="store_false", help="only the whole-process runs")
    args = parser.parse_args()
    trees = [t.resolve() for t in args.tree or [ROOT]]
    print(f"cores: {os.cpu_count()}; runs: {args.runs}; load average before: {os.getloadavg()}", flush=True)
    if args.startup:
        startup(trees, args.runs)
    rows = compares(trees, args.sizes, args.runs, args.migra, args.plan, args.pair) if args.sizes or args.pair else []
    print(f"load average after: {os.getloadavg()}")
    if rows:
        print(
            "\n| tables | source tree | pgshift compare (whole process) | migra (whole process) | compare / migra "
            "| pgshift plan (whole process) | plan / migra | plan / compare |"
        )
        print("|---:|---|---:|---:|---:|---:|---:|---:|")
        for n, tree, ours_s, migra_s, plan_s in rows:
            print(
                f"| {n:,} | {tree.name} | {ours_s:.2f} s | {migra_s:.2f} s | {ours_s / migra_s:.2f}× "
                f"| {plan_s:.2f} s | {plan_s / migra_s:.2f}× | {plan_s / ours_s:.2f}× |"
            )


if __name__ == "__main__":
    main()
