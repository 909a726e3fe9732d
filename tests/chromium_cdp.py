"""A headless Chromium driven over the DevTools protocol, for the report's browser test.

The browser talks over ``--remote-debugging-pipe``: it reads JSON commands from file
descriptor 3 and writes replies and events to descriptor 4, each message ending in a NUL
byte. That needs neither a WebSocket library nor a TCP port.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import pathlib
import selectors
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Chromium", "PageLoad", "chromium_executable", "open_chromium"]

#: Debian installs ``chromium``; other distributions name it differently.
EXECUTABLES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_executable() -> str | None:
    return next((path for name in EXECUTABLES if (path := shutil.which(name))), None)


class Chromium:
    """One browser process; :meth:`command` sends a command and waits for its reply."""

    def __init__(self, process: subprocess.Popen[bytes], to_browser: int, from_browser: int):
        self.process = process
        self._to_browser = to_browser
        self._from_browser = from_browser
        self._selector = selectors.DefaultSelector()
        self._selector.register(from_browser, selectors.EVENT_READ)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def command(self, method: str, params: dict[str, Any] | None = None, *,
                session: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        payload = json.dumps(message).encode() + b"\0"
        while payload:
            payload = payload[os.write(self._to_browser, payload):]
        reply = self._receive(lambda m: m.get("id") == self._next_id, timeout, method)
        if "error" in reply:
            raise RuntimeError(f"{method} failed: {reply['error']}")
        return reply.get("result", {})

    def wait_for_event(self, method: str, timeout: float = 60.0) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        return self._receive(lambda m: m.get("method") == method, timeout, method)

    def _receive(self, wanted, timeout: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "method" in message:
                    self.events.append(message)
                if wanted(message):
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer from Chromium to {what} within {timeout} s")
            if self._selector.select(left):
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed its pipe while waiting for {what} "
                                       f"(exit code {self.process.poll()})")
                self._buffer += chunk


@contextmanager
def open_chromium(executable: str, *, width: int = 1400, height: int = 1000) -> Iterator[Chromium]:
    """Start a headless Chromium with a throw-away profile; closed on exit."""
    to_browser_read, to_browser_write = os.pipe()
    from_browser_read, from_browser_write = os.pipe()
    # The child's ends are moved above fd 9 so that putting them on 3 and 4 cannot clobber
    # one with the other; they stay close-on-exec, only the copies on 3 and 4 are inherited.
    child_read = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD_CLOEXEC, 10)
    child_write = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD_CLOEXEC, 10)
    for fd in (to_browser_read, from_browser_write):
        os.close(fd)
    with tempfile.TemporaryDirectory(prefix="tokenswarm-chromium-") as profile:
        def remap() -> None:  # in the child, before exec
            os.dup2(child_read, 3)
            os.dup2(child_write, 4)

        process = subprocess.Popen(
            [executable, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}",
             f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=remap,  # noqa: PLW1509 - only dup2 runs there, before exec
        )
        os.close(child_read)
        os.close(child_write)
        browser = Chromium(process, to_browser_write, from_browser_read)
        try:
            yield browser
        finally:
            try:
                browser.command("Browser.close", timeout=10)
            except (RuntimeError, TimeoutError, OSError):
                pass
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            os.close(to_browser_write)
            os.close(from_browser_read)


class PageLoad:
    """A page opened in a fresh tab, with the console and network problems it reported."""

    def __init__(self, browser: Chromium, url: str, *, width: int, height: int, timeout: float = 60.0):
        self.browser = browser
        target = browser.command("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.command("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        start = len(browser.events)
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" and e.get("sessionId") == self.session
                      for e in browser.events[start:]):
            browser._receive(lambda m: m.get("method") == "Page.loadEventFired", deadline - time.monotonic(),
                             "Page.loadEventFired")
        self._start = start

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.command(method, params, session=self.session)

    def evaluate(self, expression: str) -> Any:
        reply = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                               "awaitPromise": True})
        if "exceptionDetails" in reply:
            raise RuntimeError(f"script failed: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, error log entries and failed requests."""
        found = []
        for event in self.browser.events[self._start:]:
            if event.get("sessionId") != self.session:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params.get('exceptionDetails')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                found.append(f"log: {entry.get('text')} {entry.get('url', '')}")
            elif method == "Network.loadingFailed":
                found.append(f"request failed: {params.get('errorText')} ({params.get('requestId')})")
        return found

    def screenshot(self, path: pathlib.Path, *, full_page: bool = False) -> pathlib.Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.send("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path
