"""`pgshift dashboard` in a real headless Chromium (Debian's package): the page renders the status it fetches,
markup planted in a table name, a migration name and a failed migration's error stays text, and the headers lock
the page down. Screenshots are kept (tmp path, and $PGSHIFT_ARTIFACTS/dashboard*.png when set): at 1280 px, and at
390 and 1,400 px with layout facts measured in the page (nothing wider than the screen, every environment's name and
state shown)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from conftest import create_database, drop_database
from support_apply import prisma_folder
from support_browser import Browser

from pgshift.server.dashboard import dashboard_app, exposure_warning
from pgshift.tools.apply import apply_migration
from pgshift.tools.approval import ApprovalStore
from pgshift.tools.databases import Databases, Environment
from pgshift.tools.deploy import deploy
from pgshift.tools.localpg import LocalPostgres
from pgshift.tools.watch.status import Providers

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_TIMEOUT_S = 60
TABLE = "<img src=x onerror=document.body.dataset.pwned=1>"
MIGRATION = "</script><img src=x onerror=document.body.dataset.pwned=2><script>"
ERROR = "<img src=x onerror=document.body.dataset.pwned=3></script>"
LOCAL_MIGRATIONS = {
    "20240101000000_one": "CREATE TABLE one (id int);\n",
    # Not transactional (CREATE INDEX CONCURRENTLY): its failure stays recorded, with PostgreSQL's error.
    "20240102000000_boom": "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY t_idx ON t (id);\n"
    f"DO $$ BEGIN RAISE EXCEPTION '{ERROR}'; END $$;\n",
}


@dataclass(frozen=True)
class TableDrift:
    state: str
    objects: list[str]
    history_problems: int
    from_fast_path: bool
    detail: str | None


async def table_drift(db: Databases, environment: str, directory: str | None = None, /) -> TableDrift:
    """A real (simple) drift report: public tables the migrations do not create."""
    async with db.read_only(environment) as conn:
        names = [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    extra = sorted(set(names) - {"one", "t", "_prisma_migrations"})
    return TableDrift(
        "drift" if extra else "none", extra, 0, False, f"unexplained: {', '.join(extra)}" if extra else None
    )


@pytest.fixture
async def hostile(db18: str, pg18: LocalPostgres, tmp_path: Path) -> AsyncIterator[list[Environment]]:
    """local: migration one applied, boom failed with markup in its error; production: a table and a migration
    (missing locally) named with markup."""
    production = await create_database(pg18, "dash")
    folder = prisma_folder(tmp_path / "project", LOCAL_MIGRATIONS)
    envs = [Environment(name="local", url=db18), Environment(name="production", url=production, protected=True)]
    db = Databases([Environment(name="local", url=db18), Environment(name="production", url=production)])
    try:
        assert (await deploy(db, "local", str(folder))).status == "failed"
        await apply_migration(db, "production", MIGRATION, sql=f'CREATE TABLE "{TABLE}" (id int);', version="2")
    finally:
        await db.close()
    yield envs
    await drop_database(pg18, production)


@dataclass
class Served:
    url: str
    server: uvicorn.Server


@pytest.fixture
def served(hostile: list[Environment], tmp_path: Path) -> Iterator[Served]:
    store = ApprovalStore(tmp_path / "state")
    store.file("deploy", "production", "postgresql://u:****@h/db", ["CREATE TABLE x (id int)"], ["b"])
    app = dashboard_app(
        hostile,
        str(tmp_path / "project" / "prisma" / "migrations"),
        interval_s=1.0,
        providers=Providers(drift=table_drift),
        approvals=store,
        allowed_hosts=["127.0.0.1"],
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "dashboard did not start within 10 s"
        time.sleep(0.01)
    try:
        yield Served(f"http://127.0.0.1:{sock.getsockname()[1]}/", server)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def fetch(url: str, host: str | None = None) -> tuple[int, dict[str, str], str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def test_the_dashboard_page_renders_hostile_names_as_text_in_a_real_browser(served: Served, tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium): the browser test cannot run")
    shot = tmp_path / "dashboard.png"
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-proxy-server",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=4000",
            "--window-size=1280,900",
            f"--screenshot={shot}",
            "--dump-dom",
            served.url,
        ],
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT_S,
    )
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    if os.environ.get("PGSHIFT_ARTIFACTS"):
        Path(os.environ["PGSHIFT_ARTIFACTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(os.environ["PGSHIFT_ARTIFACTS"]) / "dashboard.png")
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    assert re.search(r'<body[^>]* data-rendered="\d+"', dom), dom[:3000]  # the script ran and rendered the status
    assert "data-pwned" not in dom and "<img" not in dom.lower()  # no planted element exists, none ran
    assert 'id="verdict" class="pill problem">not clean<' in dom
    for planted in (TABLE, MIGRATION, ERROR):  # each shown, as text
        shown = planted.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert shown in dom, planted
    assert dom.count("<script") == 1  # the page's own script only: the planted </script><script> is text
    assert "1 failed" in dom and "pgshift approve" in dom
    shown_table = TABLE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert f"drift: {shown_table}" in dom  # the drifted object named, not only counted
    assert "history problem" not in dom.split("<script")[0]  # "0 history problem(s)" is noise


LAYOUT = """(() => {
  const doc = document.documentElement, width = doc.clientWidth;
  const seen = (node) => { const b = node.getBoundingClientRect();
    return b.width > 0 && b.height > 0 && b.left >= 0 && b.right <= width + 0.5; };
  const cards = [...document.querySelectorAll("[data-environment]")];
  return {
    width, overflow: doc.scrollWidth - width,
    cards: cards.map((c) => ({ name: c.querySelector(".env-name").textContent,
      state: c.querySelector(".env-state").textContent, top: c.getBoundingClientRect().top,
      name_seen: seen(c.querySelector(".env-name")), state_seen: seen(c.querySelector(".env-state")),
      text: c.textContent })),
    cells_seen: [...document.querySelectorAll("#migrations td")].every(seen),
    times: [...document.querySelectorAll("time")].map((t) => [t.textContent, t.title]),
  };
})()"""


@pytest.mark.parametrize("width", [390, 1400])
def test_the_dashboard_reads_well_on_a_phone_and_on_a_desktop(served: Served, tmp_path: Path, width: int) -> None:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium): the browser test cannot run")
    browser = Browser(CHROMIUM, tmp_path / "profile")
    try:
        page = browser.open(served.url, width)
        page.wait_for("document.body && document.body.dataset.rendered")
        layout = page.evaluate(LAYOUT)
        shot = tmp_path / f"dashboard-{width}.png"
        page.screenshot(shot)
    finally:
        browser.close()
    if os.environ.get("PGSHIFT_ARTIFACTS"):
        Path(os.environ["PGSHIFT_ARTIFACTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(os.environ["PGSHIFT_ARTIFACTS"]) / shot.name)
    assert shot.stat().st_size > 10_000
    assert layout["width"] == width and layout["overflow"] <= 0, layout  # nothing wider than the screen
    assert [c["name"] for c in layout["cards"]] == ["local", "production"]
    assert all(c["name_seen"] and c["state_seen"] for c in layout["cards"]), layout["cards"]
    assert all(re.fullmatch(r"\d+ problems?", c["state"]) for c in layout["cards"]), layout["cards"]
    assert layout["cells_seen"], "a migration cell lies outside the screen"
    local, production = layout["cards"]
    assert (local["top"] == production["top"]) == (width == 1400)  # side by side on a desktop, stacked on a phone
    assert f"drift: {TABLE}" in production["text"]
    assert layout["times"] and all(re.fullmatch(r"just now|\d+ (min|h|days?) ago|in .+", t) for t, _ in layout["times"])
    assert all(re.match(r"\d{4}-\d\d-\d\dT", title) for _, title in layout["times"])  # the full time on hover


def test_the_dashboard_locks_its_page_down_and_answers_only_on_its_own_host(served: Served) -> None:
    status, headers, body = fetch(served.url)
    csp = headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert status == 200 and nonce is not None and f'<script nonce="{nonce.group(1)}">' in body
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-store"
    status, headers, body = fetch(served.url + "status.json")
    assert status == 200 and headers["content-type"] == "application/json" and "content-security-policy" in headers
    assert '"untrusted":true' in body
    assert fetch(served.url, host="attacker.example")[0] == 400  # a DNS-rebound name gets nothing
    assert exposure_warning("127.0.0.1") is None and "WARNING" in (exposure_warning("0.0.0.0") or "")


def test_the_status_endpoint_reports_a_broken_folder_as_an_error_and_keeps_serving(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    envs = [Environment(name="local", url="postgresql://u:Sup3rSecretPw@127.0.0.1:1/db")]
    app = dashboard_app(envs, str(tmp_path / "nowhere"), interval_s=1.0)
    with TestClient(app) as client:
        answer = client.get("/status.json")
        page = client.get("/")
    assert answer.status_code == 503 and "nowhere" in answer.json()["error"]
    assert page.status_code == 200 and "Sup3rSecretPw" not in answer.text + page.text


PGSHIFT = Path(sys.executable).with_name("pgshift")  # the console script users run


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_pgshift_dashboard_run_from_the_console_script_outside_the_checkout_serves_its_page(
    db18: str, tmp_path: Path
) -> None:
    prisma_folder(tmp_path, LOCAL_MIGRATIONS)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db18, "PGSHIFT_STATE_DIR": str(tmp_path / "state")}
    env.pop("PGSHIFT_DEBUG", None)
    proc = subprocess.Popen(
        [str(PGSHIFT), "dashboard", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _, body = fetch(f"http://127.0.0.1:{port}/")
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline and proc.poll() is None, "the dashboard did not start within 30 s"
                time.sleep(0.05)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert status == 200 and "<title>pgshift status</title>" in body, (status, body[:500], err)
    assert "Traceback" not in err and "ModuleNotFoundError" not in err, err


async def broken_drift(db: Databases, environment: str, directory: str | None = None, /) -> TableDrift:
    raise RuntimeError("a bug, with a secret: postgresql://u:Sup3rSecretPw@h/db")


def test_a_bug_answers_500_with_one_line_on_stderr_and_the_traceback_only_in_debug_mode(
    db18: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.testclient import TestClient

    folder = prisma_folder(tmp_path, LOCAL_MIGRATIONS)
    envs = [Environment(name="local", url=db18)]
    monkeypatch.delenv("PGSHIFT_DEBUG", raising=False)
    for debug in (False, True):
        if debug:
            monkeypatch.setenv("PGSHIFT_DEBUG", "1")
        app = dashboard_app(envs, str(folder), interval_s=1.0, providers=Providers(drift=broken_drift))
        with TestClient(app, raise_server_exceptions=False) as client:
            answer = client.get("/status.json")
        err = capsys.readouterr().err
        assert answer.status_code == 500 and "RuntimeError" in answer.json()["error"]
        assert "Sup3rSecretPw" not in answer.text and "content-security-policy" in answer.headers
        assert "pgshift dashboard: unexpected RuntimeError answering /status.json; set PGSHIFT_DEBUG=1" in err
        assert ("Traceback" in err) == debug and ("Sup3rSecretPw" in err) == debug
