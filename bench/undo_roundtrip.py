"""Undo round trips over every migration of every real chain in tests/corpus (issue 10, Proof).

For each migration k: apply k with pgshift over the rows already there, put rows in every table (tests/support_rows.py),
roll k back, then check the schema against a raw psql replay up to k-1 (`pg_dump --schema-only`, normalised, the
history tables and our ledger schema aside), the rows from before k, and the three histories; re-apply k and go on.
Prints chain x round trips x failures x seconds, each failure's reason on one line, and why a chain stopped early.
Always exits 0: it measures, the tests assert.

Chains needing pgcrypto (umami, basejump) and chatbot-ui (http, vector) run on Debian's PostgreSQL 15 when present,
hoppscotch on the embedded 18; snapshots load on the same server.

python bench/undo_roundtrip.py [--chains umami basejump hoppscotch chatbot-ui]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support_rows import ChainReport, walk_chain  # noqa: E402

from pgshift.tools.localpg import LocalPostgres, embedded_server, pg15_bin_dir  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"
# chain -> (migrations folder, Supabase shape first, wants PostgreSQL 15)
CHAINS = {
    "umami": (CORPUS / "prisma" / "umami" / "migrations", False, True),
    "basejump": (CORPUS / "supabase" / "basejump" / "supabase" / "migrations", True, True),
    "hoppscotch": (CORPUS / "prisma" / "hoppscotch" / "migrations", False, False),
    "chatbot-ui": (CORPUS / "supabase" / "chatbot-ui" / "supabase" / "migrations", True, True),
}


def render(rows: list[tuple[ChainReport, str]]) -> str:
    head = f"{'chain':<12} {'server':<6} {'migrations':>10} {'round trips':>11} {'failures':>8} {'seconds':>8} "
    head += f"{'s/trip':>6} {'rows filled':>11} {'tables skipped':>14}"
    lines = [head, "-" * len(head)]
    for r, server in rows:
        lines.append(
            f"{r.chain:<12} {server:<6} {r.migrations:>10} {len(r.trips):>11} {len(r.failures):>8} {r.seconds:>8.1f} "
            f"{r.seconds / max(1, len(r.trips)):>6.2f} {r.filled_rows:>11} {len(r.skipped_tables):>14}"
        )
    total = sum(len(r.trips) for r, _ in rows), sum(len(r.failures) for r, _ in rows)
    lines.append(f"total: {total[0]} round trips, {total[1]} failures")
    for r, _ in rows:
        lines += [f"  {r.chain} {t.version} FAILED: {t.failure}" for t in r.failures]
        lines += [f"  {r.chain} {t.version} note: {t.note}" for t in r.trips if t.note]
        lines += [f"  {r.chain} filler skipped {table}: {why}" for table, why in sorted(r.skipped_tables.items())]
        if r.stopped:
            lines.append(f"  {r.chain} {r.stopped}")
        if r.final_difference:
            lines.append(f"  {r.chain} at the end differs from the psql replay: {r.final_difference}")
    return "\n".join(lines)


async def main(chains: list[str]) -> None:
    pg18 = embedded_server().start()
    bin15 = pg15_bin_dir()
    pg15 = LocalPostgres(bin15).start() if bin15 is not None else None
    rows: list[tuple[ChainReport, str]] = []
    try:
        for chain in chains:
            directory, supabase, wants15 = CHAINS[chain]
            server, label = (pg15, "pg15") if wants15 and pg15 is not None else (pg18, "pg18")
            t0 = time.perf_counter()
            report = await walk_chain(chain, directory, server, server, supabase=supabase)
            print(f"{chain}: {len(report.trips)} round trips in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            rows.append((report, label))
    finally:
        pg18.stop()
        if pg15 is not None:
            pg15.stop()
    print(render(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chains", nargs="+", choices=sorted(CHAINS), default=list(CHAINS))
    asyncio.run(main(parser.parse_args().chains))
