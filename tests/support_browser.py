"""A headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: no port, no extra
package): open a page at a given width, wait for it to render, evaluate a script in it, take a full-page
screenshot. Every wait is bounded."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

WAIT_S = 30.0


class Browser:
    def __init__(self, chromium: str, profile: Path) -> None:
        to_read, self._to = os.pipe()
        self._from, from_write = os.pipe()
        # Chromium reads commands on fd 3 and writes answers on fd 4: move our ends above any fd bash might use.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_read, from_write)]
        os.close(to_read)
        os.close(from_write)
        command = f'exec "$0" "$@" 3<&{high[0]} 4>&{high[1]} {high[0]}<&- {high[1]}>&-'
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-proxy-server", "--hide-scrollbars"]
        self.proc = subprocess.Popen(
            ["bash", "-c", command, chromium, *flags, f"--user-data-dir={profile}", "--remote-debugging-pipe"],
            pass_fds=tuple(high),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fd in high:
            os.close(fd)
        self._buffer = b""
        self._id = 0

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + WAIT_S
        while True:
            while b"\0" in self._buffer:
                raw, _, self._buffer = self._buffer.partition(b"\0")
                reply = json.loads(raw)
                if reply.get("id") == self._id:
                    assert "error" not in reply, f"{method}: {reply['error']}"
                    return dict(reply["result"])
            left = deadline - time.monotonic()
            assert left > 0, f"the browser did not answer {method} within {WAIT_S} s"
            ready, _, _ = select.select([self._from], [], [], left)
            if ready:
                chunk = os.read(self._from, 1 << 20)
                assert chunk, "the browser exited"
                self._buffer += chunk

    def open(self, url: str, width: int, height: int = 900) -> Page:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}
        self.call("Emulation.setDeviceMetricsOverride", metrics, session)
        self.call("Page.navigate", {"url": url}, session)
        return Page(self, session)

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (AssertionError, OSError):
            self.proc.kill()
        self.proc.wait(10)
        os.close(self._to)
        os.close(self._from)


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser, self.session = browser, session

    def evaluate(self, expression: str) -> Any:
        answer = self.browser.call(
            "Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True}, self.session
        )
        assert "exceptionDetails" not in answer, answer["exceptionDetails"]
        return answer["result"].get("value")

    def wait_for(self, condition: str) -> None:
        """Until the JavaScript `condition` holds (checked every 50 ms in the page; the call is bounded)."""
        self.evaluate(
            f"new Promise((done, fail) => {{ const end = Date.now() + {int(WAIT_S * 1000) - 2000};"
            f"const poll = () => ({condition}) ? done(true) : Date.now() > end ? fail(new Error('timed out')) "
            ": setTimeout(poll, 50); poll(); })"
        )

    def screenshot(self, path: Path) -> None:
        size = self.browser.call("Page.getLayoutMetrics", {}, self.session)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.browser.call(
            "Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True}, self.session
        )
        path.write_bytes(base64.b64decode(shot["data"]))
