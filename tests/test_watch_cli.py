"""`pgshift watch`: one JSON line per change of the status, each POSTed to a webhook (a receiver on 127.0.0.1 in
a thread); a failing webhook is reported on stderr and watching goes on; every run bounded by --count."""

from __future__ import annotations

import argparse
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support_apply import prisma_folder

from pgshift.server.dashboard import add_dashboard_commands, watch
from pgshift.tools.errors import ConfigError, ConnectionFailed
from pgshift.tools.watch.status import Providers, Status

NEXT = "20240102000000_two"


@pytest.fixture(autouse=True)
def without_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    """The columns' engines (drift's shadow replay, snapshots) have their own tests and cost seconds per check:
    these tests give their providers explicitly, and the commands run with none."""
    import pgshift.server.dashboard
    import pgshift.tools.watch.status

    monkeypatch.setattr(pgshift.tools.watch.status, "default_providers", Providers)
    monkeypatch.setattr(pgshift.server.dashboard, "default_providers", Providers)


@dataclass
class Receiver:
    """What the webhook received; on the first POST it adds a migration file, so the next check differs."""

    folder: Path
    status: int = 200
    bodies: list[str] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def project(db18: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    (tmp_path / "pgshift.toml").write_text(f'[environments.local]\nurl = "{db18}"\n')
    return prisma_folder(tmp_path, {"20240101000000_one": "CREATE TABLE one (id int);\n"})


def serve_receiver(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver.bodies.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
            if len(receiver.bodies) == 1:
                (receiver.folder / NEXT).mkdir()
                (receiver.folder / NEXT / "migration.sql").write_text("CREATE TABLE two (id int);\n")
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/s3cretToken"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def receiver(project: Path) -> Iterator[Receiver]:
    yield from serve_receiver(Receiver(project))


@pytest.fixture
def failing_receiver(project: Path) -> Iterator[Receiver]:
    yield from serve_receiver(Receiver(project, status=500))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pgshift")
    add_dashboard_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_watch_prints_one_line_per_change_and_posts_each_to_the_webhook(
    receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse(["watch", "--interval", "0.05", "--count", "3", "--webhook", receiver.url])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 2, captured  # the initial state, the change; the third check saw nothing new
    first, second = (json.loads(line) for line in lines)
    assert (first["environments"]["local"]["pending"], second["environments"]["local"]["pending"]) == (1, 2)
    assert first["migrations"] == 1 and second["migrations"] == 2 and first["checked_at"]
    assert receiver.bodies == lines and captured.err == ""


def test_a_failing_webhook_is_reported_on_stderr_without_its_path_and_watching_continues(
    failing_receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse(["watch", "--interval", "0.05", "--count", "2", "--webhook", failing_receiver.url])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2 and len(failing_receiver.bodies) == 2
    failures = captured.err.splitlines()
    origin = failing_receiver.url.split("/hooks")[0]
    assert failures == [f"pgshift watch: webhook {origin} failed (HTTP 500); watching continues"] * 2
    assert "s3cretToken" not in captured.err


def test_watch_refuses_a_webhook_that_is_not_http(project: Path) -> None:
    args = parse(["watch", "--count", "1", "--webhook", "file:///etc/passwd"])
    with pytest.raises(ConfigError, match="http:// or https://"):
        args.func(args)


async def test_a_failed_check_is_a_state_of_its_own_printed_once_with_secrets_scrubbed() -> None:
    async def unreachable() -> Status:
        raise ConnectionFailed("cannot connect at postgresql://u:Sup3rSecretPw@db/x")

    out = io.StringIO()
    printed = await watch(unreachable, interval_s=0.01, count=3, out=out, scrub=lambda s: s.replace("Sup3r", "*"))
    assert printed == 1
    line = json.loads(out.getvalue())
    assert line["checked_at"] is None and "cannot connect" in line["error"] and "Sup3r" not in line["error"]
