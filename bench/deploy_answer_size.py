"""How big is a real `deploy` answer over MCP for a folder of N migrations? (Prints seconds, bytes, tokens ≈ bytes/4.)

    python bench/deploy_answer_size.py [--migrations 500]

Starts an embedded PostgreSQL 18, writes N one-table Prisma migrations, deploys them through an in-memory MCP client
(the helpers of tests/test_deploy_answer.py) and measures the text content of the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import create_database
from test_deploy_answer import deploy_over_mcp, write_folder

from pgshift.tools.localpg import embedded_server


async def measure(count: int) -> None:
    server = embedded_server().start()
    try:
        url = await create_database(server)
        folder = Path(tempfile.mkdtemp())
        write_folder(folder, count)
        os.chdir(folder)
        started = time.monotonic()
        text, answer = await deploy_over_mcp(url)
        seconds = round(time.monotonic() - started, 1)
        print(
            f"{count} migrations: deploy {seconds} s, answer {len(text)} bytes ≈ {len(text) // 4} tokens, "
            f"status {answer['status']}, rows shown {answer['rows_shown']}"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--migrations", type=int, default=500)
    asyncio.run(measure(parser.parse_args().migrations))
