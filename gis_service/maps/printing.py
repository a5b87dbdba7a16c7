"""A map printed to PDF or PNG by headless Chromium: ``gis-service map build NAME --out FILE.pdf|FILE.png``.

Debian's ``chromium`` (scripts/setup.sh installs it for the map tests too) driven over the Chrome DevTools
Protocol with ``websockets``, which uvicorn[standard] already brings: no browser download, no driver binary. The
page is the built map opened from a temporary file with ``#print``, which switches on the same print layout as the
map's 打印 button (``templates/map.css``); the viewport is the paper's printable area, so Leaflet lays
the map out at the size it is printed. Text stays text in the PDF (Chromium embeds the fonts).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from gis_service.errors import InvalidInputError, SetupError

#: Where Debian puts the browser; GIS_CHROMIUM names another.
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--disable-features=Translate,MediaRouter",
         "--hide-scrollbars", "--mute-audio", "--remote-debugging-port=0")
#: Paper sizes in millimetres (portrait), and the margin the print layout keeps.
PAPERS = {"A4": (210, 297), "A3": (297, 420)}
MARGIN_MM = 8
PX_PER_MM = 96 / 25.4
#: JavaScript: resolves two animation frames after the load event (Leaflet has drawn every layer by then).
DRAWN_JS = """new Promise(function (resolve) {
  function frames() { requestAnimationFrame(function () { requestAnimationFrame(function () { resolve(true); }); }); }
  if (document.readyState === "complete") { frames(); } else { window.addEventListener("load", frames); }
})"""


def find_chromium() -> str:
    """The Chromium executable; a :class:`SetupError` that says how to get one when there is none."""
    explicit = os.environ.get("GIS_CHROMIUM")
    for candidate in ((explicit,) if explicit else ()) + CHROMIUM_CANDIDATES:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise SetupError("printing a map needs headless Chromium: run scripts/setup.sh (it installs Debian's chromium "
                     "and fonts-wqy-microhei), or set GIS_CHROMIUM to the browser's path")


def paper_mm(paper: str, landscape: bool) -> tuple[float, float]:
    """Width and height of ``paper`` in millimetres; InvalidInputError for a paper that is not A4 or A3."""
    if paper.upper() not in PAPERS:
        raise InvalidInputError(f"--paper must be one of {', '.join(PAPERS)}; got {paper!r}")
    width, height = PAPERS[paper.upper()]
    return (height, width) if landscape else (width, height)


def start_chromium(*args: str, prefix: str = "gis-print-",
                   executable: str | None = None) -> tuple[subprocess.Popen, Path, str]:
    """A headless Chromium with a fresh profile: its process, its profile folder and its DevTools address."""
    profile = Path(tempfile.mkdtemp(prefix=prefix))
    command = [executable or find_chromium(), *FLAGS, f"--user-data-dir={profile}", *args, "about:blank"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_chromium(process, profile)
            raise SetupError("headless Chromium did not start; run scripts/setup.sh")
        time.sleep(0.05)
    port, path = port_file.read_text().splitlines()[:2]
    return process, profile, f"ws://127.0.0.1:{port}{path}"


def stop_chromium(process: subprocess.Popen, profile: Path) -> None:
    """End the browser (politely, then not) and remove its profile."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    shutil.rmtree(profile, ignore_errors=True)


class _Tab:
    """One headless Chromium with one tab, over the DevTools protocol; closed with its profile on exit."""

    def __enter__(self) -> _Tab:
        from websockets.sync.client import connect

        self.process, self.profile, address = start_chromium()
        self.connection = connect(address, max_size=None, open_timeout=30)
        self.ws = self.connection.__enter__()
        self.next_id, self.session = 0, None
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        return self

    def send(self, method: str, params: dict | None = None, *, timeout_s: float = 120) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout_s
        while True:
            reply = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"Chromium: {method}: {reply['error'].get('message')}")
                return reply.get("result", {})

    def __exit__(self, *exc) -> None:
        try:
            self.connection.__exit__(None, None, None)
        finally:
            stop_chromium(self.process, self.profile)


def print_map(html: str, out: Path, *, paper: str = "A4", landscape: bool = True) -> int:
    """Write the built map ``html`` (self-contained) to ``out`` as PDF or PNG in its print layout; bytes written."""
    kind = out.suffix.lower()
    if kind not in (".pdf", ".png"):
        raise InvalidInputError(f"printing writes .pdf or .png; got {out.name}")
    width_mm, height_mm = paper_mm(paper, landscape)
    width = round((width_mm - 2 * MARGIN_MM) * PX_PER_MM)
    height = round((height_mm - 2 * MARGIN_MM) * PX_PER_MM)
    with tempfile.TemporaryDirectory(prefix="gis-print-page-") as folder, _Tab() as tab:
        page = Path(folder) / "map.html"
        page.write_text(html, encoding="utf-8")
        tab.send("Page.enable")
        tab.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                       "deviceScaleFactor": 2 if kind == ".png" else 1,
                                                       "mobile": False})
        tab.send("Page.navigate", {"url": page.as_uri() + "#print"})
        tab.send("Runtime.evaluate", {"expression": DRAWN_JS, "awaitPromise": True})
        time.sleep(0.3)  # the labels' collision pass runs after the print layout's fit
        if kind == ".pdf":
            inch = 25.4
            answer = tab.send("Page.printToPDF", {
                "paperWidth": width_mm / inch, "paperHeight": height_mm / inch, "printBackground": True,
                **{f"margin{side}": MARGIN_MM / inch for side in ("Top", "Bottom", "Left", "Right")}})
        else:
            answer = tab.send("Page.captureScreenshot", {"format": "png"})
    body = base64.b64decode(answer["data"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(body)
    return len(body)
