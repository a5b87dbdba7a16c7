"""Headless Chromium over the Chrome DevTools Protocol, for the map tests and ``scripts/bench_maps.py``.

Debian's ``chromium`` package, driven with ``websockets`` (a test dependency; uvicorn[standard] installs it too): no
browser download, no driver binary. A :class:`Page` records every request the page makes, every console message and
uncaught exception, and can evaluate JavaScript and take screenshots.

    with Chromium() as browser:
        page = browser.new_page()
        page.goto("http://127.0.0.1:8000/maps/overview")
        page.count("path.gis-villages")
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from gis_service.maps.printing import find_chromium, start_chromium, stop_chromium

# The browser, its flags and how it is found are the map printer's (gis_service/maps/printing.py).

#: JavaScript: resolves, two animation frames after the load event, with ms since navigation start.
DRAWN_JS = """new Promise(function (resolve) {
  function frames() { requestAnimationFrame(function () { requestAnimationFrame(function () {
    resolve(performance.now()); }); }); }
  if (document.readyState === "complete") { frames(); } else { window.addEventListener("load", frames); }
})"""


@dataclass
class Page:
    """One tab: what it requested, what it logged, and a way to run JavaScript in it."""

    browser: Chromium
    session: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def send(self, method: str, params: dict | None = None, *, timeout_s: float = 60) -> dict:
        return self.browser.send(method, params, session=self.session, timeout_s=timeout_s)

    def event(self, method: str, params: dict) -> None:
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            self.failed.append(f"{params.get('errorText')} ({params.get('requestId')})")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console_errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.console_errors.append(f"uncaught: {text}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            self.console_errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())

    def goto(self, url: str, *, timeout_s: float = 60) -> float:
        """Open ``url`` and wait until it has loaded and painted; returns ms from navigation start to then."""
        self.requests.clear()
        self.console_errors.clear()
        self.failed.clear()
        answer = self.send("Page.navigate", {"url": url}, timeout_s=timeout_s)
        if answer.get("errorText"):
            raise RuntimeError(f"navigation to {url} failed: {answer['errorText']}")
        return float(self.evaluate(DRAWN_JS, timeout_s=timeout_s))

    def goto_until(self, url: str, ready_js: str, *, timeout_s: float = 60) -> float:
        """Open ``url`` and wait until the JavaScript expression ``ready_js`` is true in it, across the page's own
        reloads (a page that says what is being computed and refreshes itself until it is ready), then until it is
        painted; returns ms from the navigation to then."""
        started = time.monotonic()
        self.goto(url, timeout_s=timeout_s)
        self.wait_until(ready_js, timeout_s=max(1.0, timeout_s - (time.monotonic() - started)))
        return (time.monotonic() - started) * 1000

    def wait_until(self, ready_js: str, *, timeout_s: float = 60) -> float:
        """Wait until the JavaScript expression ``ready_js`` is true in the page, across its own reloads, and the
        page is painted; returns ms waited."""
        started = time.monotonic()
        while True:
            try:
                if self.evaluate(f"document.readyState === 'complete' && !!({ready_js})", timeout_s=timeout_s):
                    self.evaluate(DRAWN_JS, timeout_s=timeout_s)
                    return (time.monotonic() - started) * 1000
            except RuntimeError:  # asked between two loads of the page
                pass
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"not ready ({ready_js}) within {timeout_s:.0f} s")
            time.sleep(0.1)

    def evaluate(self, expression: str, *, timeout_s: float = 60):
        """The value of a JavaScript expression (promises are awaited); raises on a JavaScript error."""
        answer = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, timeout_s=timeout_s)
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise RuntimeError(f"JavaScript error: {details.get('exception', {}).get('description') or details}")
        return answer["result"].get("value")

    def count(self, selector: str) -> int:
        return int(self.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length"))

    def screenshot(self, path: Path) -> Path:
        answer = self.send("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(answer["data"]))
        return path


class Chromium:
    """A headless Chromium with a fresh profile, closed (and its profile removed) on exit."""

    def __init__(self, *, width: int = 1280, height: int = 900, executable: str | None = None):
        self.executable = executable or find_chromium()
        self.width, self.height = width, height
        self._next_id = 0
        self._pages: dict[str, Page] = {}

    def __enter__(self) -> Chromium:
        from websockets.sync.client import connect

        self.process, self.profile, address = start_chromium(f"--window-size={self.width},{self.height}",
                                                             prefix="gis-chromium-", executable=self.executable)
        self._connection = connect(address, max_size=None, open_timeout=30)
        self.ws = self._connection.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._connection.__exit__(None, None, None)
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        stop_chromium(self.process, self.profile)

    def send(self, method: str, params: dict | None = None, *, session: str | None = None,
             timeout_s: float = 60) -> dict:
        """Send one command and return its result, dispatching the events that arrive meanwhile."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer to {method} within {timeout_s} s")
            reply = json.loads(self.ws.recv(timeout=remaining))
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            page = self._pages.get(reply.get("sessionId", ""))
            if page is not None and "method" in reply:
                page.event(reply["method"], reply.get("params", {}))

    def new_page(self) -> Page:
        """A new tab with network, console and log recording on, and its viewport set."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        self._pages[session] = page
        for domain in ("Page", "Network", "Runtime", "Log"):
            page.send(f"{domain}.enable")
        page.send("Network.setCacheDisabled", {"cacheDisabled": True})
        page.send("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                         "deviceScaleFactor": 1, "mobile": False})
        return page
