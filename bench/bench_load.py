"""Concurrent mixed tool calls (compare_schemas included), in memory and over streamable HTTP.

python bench/bench_load.py [--calls 50] [--rounds 3]

Starts an embedded PostgreSQL 18 with two small databases (the sample app schema, one drifted), then sends
`--calls` tool calls at once, `--rounds` times per transport: in memory (`mcp.Client(app)`) and over HTTP
(`pgshift serve --http` with a bearer token). Prints p50 / p99 latency per call and the error count.
The workload is the one `tests/test_load.py` asserts error-free.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import drop_database  # noqa: E402
from test_load import TOKEN, app_database, run_concurrently, start_http_server, stop_http_server, workload  # noqa: E402

from pgshift.server.app import build_app  # noqa: E402
from pgshift.tools.databases import Environment  # noqa: E402
from pgshift.tools.localpg import embedded_server  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(transport: str, outcomes: list[tuple[str, float, str]], wall: list[float]) -> None:
    times = [t for _, t, _ in outcomes]
    errors = [e for _, _, e in outcomes if e]
    compares = [t for name, t, _ in outcomes if name == "compare_schemas"]
    print(
        f"{transport:>9}: {len(outcomes)} calls, errors {len(errors)}, p50 {percentile(times, 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(times, 0.99) * 1000:.0f} ms, compare p50 {percentile(compares, 0.5) * 1000:.0f} ms, "
        f"wall per round (median) {statistics.median(wall):.2f} s"
    )
    for error in sorted(set(errors))[:5]:
        print(f"           error: {error[:200]}")


async def in_memory(local: str, production: str, calls: int, rounds: int) -> None:
    envs = [Environment(name="local", url=local), Environment(name="production", url=production, protected=True)]
    outcomes, wall = [], []
    async with Client(build_app(lambda: envs), raise_exceptions=False) as client:
        await run_concurrently(client, workload(10))  # warm the pools
        for _ in range(rounds):
            started = time.perf_counter()
            outcomes += await run_concurrently(client, workload(calls))
            wall.append(time.perf_counter() - started)
    report("in memory", outcomes, wall)


async def over_http(url: str, calls: int, rounds: int) -> None:
    outcomes, wall = [], []
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            await run_concurrently(client, workload(10))
            for _ in range(rounds):
                started = time.perf_counter()
                outcomes += await run_concurrently(client, workload(calls))
                wall.append(time.perf_counter() - started)
    report("HTTP", outcomes, wall)


async def main_async(calls: int, rounds: int) -> None:
    server = embedded_server().start()
    try:
        local, production = await app_database(server, drift=True), await app_database(server, drift=False)
        await in_memory(local, production, calls, rounds)
        with tempfile.TemporaryDirectory() as cwd:
            proc, url = start_http_server(Path(cwd), local, production)
            try:
                await over_http(url, calls, rounds)
            finally:
                stderr = stop_http_server(proc)
                if "Traceback" in stderr:
                    print(f"server stderr:\n{stderr}")
        for db in (local, production):
            await drop_database(server, db)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    anyio.run(main_async, args.calls, args.rounds)


if __name__ == "__main__":
    main()
