"""A small driver of headless Chromium over its DevTools protocol, for tests and screenshots.

Starts Debian's (or the system's) Chromium with a fresh profile and a free debugging port,
connects to its page with websocket-client, and sends protocol commands: navigate, evaluate
script, real mouse and keyboard input, screenshots. Nothing is downloaded.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


class Chromium:
    def __init__(self, profile: Path, width: int = 1200, height: int = 900):
        import websocket

        profile = Path(profile)
        port_file = profile / "DevToolsActivePort"
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--no-first-run", "--disable-component-update",
             "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
             "--remote-debugging-port=0", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self._until(lambda: port_file.exists() and port_file.read_text().strip(), 60,
                        "Chromium did not open its debugging port")
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
                pages = [t for t in json.load(r) if t["type"] == "page"]
            self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=60,
                                                  suppress_origin=True)
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise
        self._id = 0

    @staticmethod
    def _until(check, seconds: float, message: str):
        end = time.monotonic() + seconds
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > end:
                raise TimeoutError(message)
            time.sleep(0.05)

    def send(self, method: str, **params) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:  # events arrive in between; skip them
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def eval(self, expression: str):
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                        awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression!r}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait(self, expression: str, seconds: float = 60):
        """Evaluate ``expression`` until it is truthy (an error, as while a page loads, counts
        as not yet); its value."""
        def check():
            try:
                return self.eval(expression)
            except RuntimeError:
                return None
        return self._until(check, seconds, f"the page never had {expression!r}")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def center(self, selector: str) -> tuple[float, float]:
        """The centre of the first element matching ``selector``, scrolled into view."""
        r = self.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                      f" e.scrollIntoView({{block: 'center'}});"
                      f" const r = e.getBoundingClientRect();"
                      f" return [r.left + r.width / 2, r.top + r.height / 2]; }})()")
        return r[0], r[1]

    def hover(self, selector: str) -> None:
        x, y = self.center(selector)
        self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)

    def click(self, selector: str) -> None:
        x, y = self.center(selector)
        self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                      clickCount=1)

    KEYS = {"ArrowRight": 39, "ArrowLeft": 37, "Home": 36, "End": 35}
    SHIFT, CTRL = 8, 2  # the protocol's modifier bits

    def press(self, key: str, modifiers: int = 0, times: int = 1) -> None:
        """Press and release a navigation key (``KEYS``), e.g. Shift+ArrowRight to select."""
        for _ in range(times):
            for kind in ("rawKeyDown", "keyUp"):
                self.send("Input.dispatchKeyEvent", type=kind, key=key, code=key,
                          windowsVirtualKeyCode=self.KEYS[key], modifiers=modifiers)

    def type(self, text: str) -> None:
        """Insert ``text`` at the focused element's caret, as typing or pasting does."""
        self.send("Input.insertText", text=text)

    def screenshot(self, path, selector: str | None = None) -> None:
        """A PNG of the whole page, or of the first element matching ``selector``."""
        if selector is None:
            m = self.send("Page.getLayoutMetrics")["cssContentSize"]
            box = {"x": 0, "y": 0, "width": m["width"], "height": m["height"]}
        else:
            box = self.eval(f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                            f".getBoundingClientRect(); return {{x: r.left + scrollX, "
                            f"y: r.top + scrollY, width: r.width, height: r.height}}; }})()")
        params = {"format": "png", "captureBeyondViewport": True, "clip": dict(box, scale=1)}
        data = self.send("Page.captureScreenshot", **params)["data"]
        Path(path).write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
