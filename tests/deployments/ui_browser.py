"""Headless Debian Chromium driven over the Chrome DevTools Protocol (CDP), for UI tests.

No browser-automation package: Chromium is started with ``--remote-debugging-port=0``, its port is
read from ``DevToolsActivePort`` in the fresh profile directory, and one page target is driven
over a websocket (``websockets`` comes with Prefect). Only what the UI tests need is here:
navigate, evaluate JavaScript, poll for a condition, click by visible text, screenshot.

    with launch_chromium() as browser:
        async with browser.page() as page:
            await page.navigate("http://127.0.0.1:4200/")
            await page.wait_for("document.body.innerText.includes('Flows')")
            await page.screenshot(Path("shot.png"))

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root, where the sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
)


REPLY_TIMEOUT = 60  # seconds for one CDP command; generous for a loaded machine


class BrowserError(RuntimeError):
    pass


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Chromium:
    proc: subprocess.Popen
    profile: Path
    port: int
    log_path: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    @contextlib.asynccontextmanager
    async def page(self, width: int = 1400, height: int = 2200) -> AsyncIterator[Page]:
        """A new tab with a fixed viewport; closed on exit."""
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            target = (await http.put(f"{self.http_url}/json/new?about:blank")).json()
        async with connect(
            target["webSocketDebuggerUrl"], max_size=None, proxy=None, ping_interval=None, open_timeout=30
        ) as ws:
            page = Page(ws)
            reader = asyncio.create_task(page._read())
            try:
                await page.send("Page.enable")
                await page.send("Runtime.enable")
                await page.set_viewport(width, height)
                yield page
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
        with contextlib.suppress(httpx.HTTPError):
            async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
                await http.get(f"{self.http_url}/json/close/{target['id']}")


@dataclass
class Page:
    ws: Any
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _pending: dict[int, asyncio.Future] = field(default_factory=dict)
    console: list[str] = field(default_factory=list)  # console messages and uncaught exceptions
    viewport: tuple[int, int] = (0, 0)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                if "id" in msg:
                    fut = self._pending.pop(msg["id"], None)
                    if fut and not fut.done():
                        fut.set_result(msg)
                    continue
                params = msg.get("params", {})
                if msg.get("method") == "Runtime.consoleAPICalled":
                    text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
                    self.console.append(f"console.{params.get('type')}: {text}"[:500])
                elif msg.get("method") == "Runtime.exceptionThrown":
                    details = params.get("exceptionDetails", {})
                    text = details.get("exception", {}).get("description") or details.get("text")
                    self.console.append(f"exception: {text}"[:500])
        except Exception as exc:  # connection gone: fail whoever still waits
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(BrowserError(f"DevTools connection lost: {exc!r}"))

    async def send(self, method: str, **params: Any) -> dict:
        msg_id = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        await self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        reply = await asyncio.wait_for(fut, REPLY_TIMEOUT)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression (promises are awaited)."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description") or details.get("text"))
        return result.get("result", {}).get("value")

    async def navigate(self, url: str) -> None:
        result = await self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"navigate {url}: {result['errorText']}")

    async def wait_for(self, expression: str, within: float = 60, interval: float = 0.25) -> Any:
        """Poll until the expression is truthy; return its value. TimeoutError after `within` s."""
        deadline = time.monotonic() + within
        last_error: str | None = None
        while True:
            try:
                value = await self.evaluate(expression)
                if value:
                    return value
            except BrowserError as exc:  # e.g. during a navigation; keep polling
                last_error = str(exc)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"not true after {within:.0f} s: {expression}"
                    + (f" (last error: {last_error})" if last_error else "")
                )
            await asyncio.sleep(interval)

    async def text(self) -> str:
        return await self.evaluate("document.body ? document.body.innerText : ''") or ""

    async def click_text(self, text: str, selector: str = "button") -> bool:
        """Click the first visible element matching `selector` whose text is exactly `text`."""
        return bool(
            await self.evaluate(f"""(() => {{
            const want = {json.dumps(text)};
            for (const el of document.querySelectorAll({json.dumps(selector)})) {{
                if (el.innerText.trim() === want && el.offsetParent !== null) {{
                    el.scrollIntoView({{block: 'center'}});
                    el.click();
                    return true;
                }}
            }}
            return false;
        }})()""")
        )

    async def set_viewport(self, width: int, height: int) -> None:
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.viewport = (width, height)
        await self.wait_for(f"window.innerHeight === {height}", within=30, interval=0.05)

    async def screenshot(self, path: Path, max_height: int = 12000) -> Path:
        """PNG of the whole page, written to `path`.

        Pages that scroll inside an element (not the document) are captured whole too: the
        viewport is made as tall as the tallest scrolled content for the shot, then restored.
        """
        width, height = self.viewport
        needed = await self.evaluate("""Math.max(document.documentElement.scrollHeight,
            ...[...document.querySelectorAll('*')].map(e => /auto|scroll/.test(getComputedStyle(e).overflowY)
                ? window.innerHeight + e.scrollHeight - e.clientHeight : 0))""")
        tall = min(max(int(needed or 0), height), max_height)
        if tall != height:
            await self.set_viewport(width, tall)
        try:
            shot = await self.send("Page.captureScreenshot", format="png")
        finally:
            if tall != height:
                await self.set_viewport(width, height)
        await asyncio.to_thread(_write, path, base64.b64decode(shot["data"]))
        return path


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)  # its own session: the launcher script and every renderer
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def launch_chromium(executable: str | None = None, timeout: float = 60) -> Iterator[Chromium]:
    """Start headless Chromium with a throwaway profile; always killed (process group) on exit."""
    executable = executable or chromium_path()
    if not executable:
        raise BrowserError("chromium is not installed")
    profile = Path(tempfile.mkdtemp(prefix="ui-test-chromium-"))
    log_path = profile.parent / f"{profile.name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        port = 0
        while not port:
            if proc.poll() is not None:
                raise BrowserError(
                    f"chromium exited with {proc.returncode}:\n"
                    + log_path.read_text(errors="replace")[-3000:]
                )
            if time.monotonic() > deadline:
                raise BrowserError(
                    f"chromium gave no DevTools port within {timeout:.0f} s:\n"
                    + log_path.read_text(errors="replace")[-3000:]
                )
            with contextlib.suppress(OSError, ValueError):
                port = int(port_file.read_text().split()[0])
            if not port:
                time.sleep(0.1)
        yield Chromium(proc=proc, profile=profile, port=port, log_path=log_path)
    finally:
        _kill(proc)
        shutil.rmtree(profile, ignore_errors=True)
        log_path.unlink(missing_ok=True)
