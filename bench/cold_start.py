"""Cold start of `python -m server` to its first tools/list answer, over stdio (median of N runs).

python bench/cold_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters


async def once(workdir: str) -> tuple[float, int]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "pgshift"], env={}, cwd=workdir)
    started = time.perf_counter()
    async with Client(params, read_timeout_seconds=60) as client:
        tools = (await client.list_tools()).tools
        elapsed = time.perf_counter() - started
    return elapsed, len(tools)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    times = []
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(args.runs):
            elapsed, n = anyio.run(once, workdir)
            times.append(elapsed)
    print(
        f"cold start to tools/list ({n} tools), {args.runs} runs: median {statistics.median(times):.3f} s, "
        f"min {min(times):.3f} s, max {max(times):.3f} s"
    )


if __name__ == "__main__":
    main()
