"""`pgshift plan`: SQL on stdout only, messages on stderr, exit codes 0 / 2 / 3 / 1; the output pipes into psql."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess

import pytest
from conftest import create_database, drop_database
from support_plan import run_sql

from pgshift.server.commands import (
    EXIT_DATA_LOSS,
    EXIT_ERROR,
    EXIT_NOTHING_TO_DO,
    EXIT_PLAN,
    add_plan_arguments,
    run_plan,
)
from pgshift.tools.judge import judge_equal
from pgshift.tools.localpg import LocalPostgres, embedded_bin_dir


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_plan_arguments(parser)
    return parser.parse_args(list(argv))


async def cli(*argv: str) -> int:
    # run_plan owns its event loop (asyncio.run): give it a thread of its own.
    return await asyncio.to_thread(run_plan, parse(*argv))


async def test_plan_prints_only_sql_that_psql_applies_and_exits_by_outcome(
    pg18: LocalPostgres, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = await create_database(pg18), await create_database(pg18)
    try:
        await run_sql(source, "create table t(a int primary key, b text); create index t_b on t(b);")
        await run_sql(target, "create table t(a int primary key, old int);")

        assert await cli("--source", source, "--target", target) == EXIT_DATA_LOSS
        out, err = capsys.readouterr()
        assert all(line.startswith("--") for line in out.splitlines())  # the plan, to read: psql runs none of it
        assert "DELETES DATA" in out and "--allow-data-loss" in out
        assert "DROP COLUMN old" in err and pg18.password not in err

        assert await cli("--source", source, "--target", target, "--allow-data-loss", "--online") == EXIT_PLAN
        out, err = capsys.readouterr()
        assert out.startswith("SET lock_timeout = '3000ms';\nALTER TABLE public.t DROP COLUMN old;")
        assert "CREATE INDEX CONCURRENTLY t_b" in out
        assert "index_build" in err and "--" not in out

        psql = [
            str(pg18.bin_dir / "psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            target.replace(pg18.password, ""),
        ]
        env = {**os.environ, "PGPASSWORD": pg18.password}
        done = await asyncio.to_thread(
            subprocess.run, psql, input=out, text=True, capture_output=True, env=env, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        assert (await judge_equal(target, source, embedded_bin_dir()))[0]

        assert await cli("--source", source, "--target", target, "--json") == EXIT_NOTHING_TO_DO
        out, err = capsys.readouterr()
        assert '"statements": []' in out and "nothing to do" in err
    finally:
        await drop_database(pg18, source)
        await drop_database(pg18, target)


async def test_plan_exits_1_with_a_message_when_a_database_is_unreachable(
    pg18: LocalPostgres, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("--source", pg18.url("missing_db"), "--target", "production") == EXIT_ERROR
    out, err = capsys.readouterr()
    assert out == "" and "pgshift plan:" in err and pg18.password not in err
