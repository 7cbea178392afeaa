"""Open a local HTML file in headless Chromium over the DevTools protocol; collect console errors.

No browser download and no extra Python package: Debian's chromium (installed by .ci/system-deps.sh)
and the `websockets` client that Prefect already brings.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from tests._ports import free_port

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--remote-allow-origins=*"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@dataclass
class PageResult:
    errors: list[str] = field(default_factory=list)
    values: dict[str, object] = field(default_factory=dict)
    screenshot: bytes | None = None
    requests: list[str] = field(default_factory=list)  # every URL the page asked for (file:// and data: included)


async def _drive(ws_url: str, url: str, expressions: dict[str, str], settle_s: float, screenshot: bool,
                 javascript: bool = True, until: str | None = None) -> PageResult:
    import websockets

    result = PageResult()
    async with websockets.connect(ws_url, max_size=64 * 1024 * 1024) as ws:
        counter = 0
        pending: dict[int, asyncio.Future] = {}

        async def reader():
            async for raw in ws:
                message = json.loads(raw)
                if "id" in message and message["id"] in pending:
                    pending.pop(message["id"]).set_result(message)
                method = message.get("method")
                params = message.get("params", {})
                if method == "Runtime.exceptionThrown":
                    result.errors.append(params["exceptionDetails"].get("text", "exception"))
                elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                    result.errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
                elif method == "Network.requestWillBeSent":
                    result.requests.append(params["request"]["url"])
                elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                    result.errors.append(params["entry"].get("text", "log error"))

        async def call(method: str, **params):
            nonlocal counter
            counter += 1
            future = asyncio.get_running_loop().create_future()
            pending[counter] = future
            await ws.send(json.dumps({"id": counter, "method": method, "params": params}))
            return (await asyncio.wait_for(future, 60)).get("result", {})

        task = asyncio.create_task(reader())
        await call("Runtime.enable")
        await call("Log.enable")
        await call("Page.enable")
        await call("Network.enable")
        if not javascript:
            await call("Emulation.setScriptExecutionDisabled", value=True)
        await call("Page.navigate", url=url)
        if until is None:
            await asyncio.sleep(settle_s)
        else:  # poll for the page's own sign of being ready; settle_s is then the longest wait
            deadline = time.monotonic() + settle_s
            while time.monotonic() < deadline:
                ready = await call("Runtime.evaluate", expression=f"Boolean({until})", returnByValue=True)
                if ready.get("result", {}).get("value") is True:
                    break
                await asyncio.sleep(0.25)
        for name, expression in expressions.items():
            evaluated = await call("Runtime.evaluate", expression=expression, returnByValue=True)
            result.values[name] = evaluated.get("result", {}).get("value")
        if screenshot:
            import base64

            shot = await call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            result.screenshot = base64.b64decode(shot["data"])
        task.cancel()
    return result


def open_page(path: Path | str, expressions: dict[str, str], *, settle_s: float = 4.0, screenshot: bool = False,
              javascript: bool = True, until: str | None = None) -> PageResult:
    """Load `path` (a file, or an http:// address) in headless Chromium, wait `settle_s` (or, with `until`, until
    that JavaScript expression is true, at most `settle_s`), evaluate `expressions`; return errors and values."""
    binary = chromium_path()
    if binary is None:
        raise RuntimeError("chromium is not installed: run `make system-deps`")
    port = free_port()
    # Chromium's helper processes can still be writing to the throwaway profile as the main one exits
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen([binary, *FLAGS, f"--remote-debugging-port={port}", f"--user-data-dir={profile}",
                                    "--window-size=1280,2000", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as response:
                        targets = [t for t in json.load(response) if t.get("type") == "page"]
                    if targets:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("chromium did not start its DevTools endpoint")
                time.sleep(0.2)
            url = path if isinstance(path, str) and path.startswith(("http://", "https://")) \
                else Path(path).resolve().as_uri()
            return asyncio.run(_drive(targets[0]["webSocketDebuggerUrl"], url,
                                      expressions, settle_s, screenshot, javascript, until))
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
