"""One headless Chromium for many pages, driven over the DevTools protocol on a pipe.

A Chromium run per page (`--dump-dom URL`) cost about three times the CPU of a page read in a
running one (0.6 s against 0.2 s on the 2-core CI machine), and the browser tests read dozens of
pages; so they start Chromium once per test module and open each page in a browser context of
its own (its own cookies, storage and cache, as a fresh profile had), closed once it is read.

A page is read as `chromium --virtual-time-budget=3000 --dump-dom` reads it: virtual time does
not advance while a fetch is pending, so the pages' scripts get their answers, and timers run
without real waiting; when the budget is spent (and the load event has fired) the DOM is taken.

The protocol: JSON messages, each ended by a NUL byte, that Chromium reads on its fd 3 and
writes on its fd 4 (`--remote-debugging-pipe`). Every wait here has a deadline. Chromium quits
when its end of the pipe closes, so it does not outlive the tests even when pytest is killed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .server import required

FLAGS = [
    "--headless",
    "--no-sandbox",  # we run as root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-proxy-server",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
    "--remote-debugging-pipe",
]
TIMEOUT = 60.0  # seconds for one page (or one protocol call) before the test fails
BUDGET = 3000  # virtual milliseconds a page's scripts get, as --virtual-time-budget=3000
PARALLEL = 3  # pages read at a time
# /bin/sh puts the pipes where Chromium looks for them: Popen keeps passed fds at their own
# numbers, and its preexec_fn (to dup2 them) is not safe beside the tests' server threads.
PLUMBING = 'exec "$@" 3<&0 4>&1 0</dev/null 1>&2'

Message = dict[str, Any]


class BrowserError(Exception):
    """Chromium answered with an error, died, or did not answer in time."""


def chromium_binary() -> str:
    """Debian's chromium (or $FEEDSVC_CHROMIUM). Without it the test is skipped, or fails
    when FEEDSVC_REQUIRE_BROWSER=1 (as .ci/run sets)."""
    found = os.environ.get("FEEDSVC_CHROMIUM") or shutil.which("chromium")
    reason = "the browser tests need headless Chromium: apt-get install -y chromium"
    return required(found, reason, "FEEDSVC_REQUIRE_BROWSER")


@contextlib.contextmanager
def chromium(workdir: Path) -> Iterator[Browser]:
    """A running Chromium with its profile and log in `workdir`; its whole process group is
    killed afterwards, whatever happened."""
    browser = Browser(chromium_binary(), workdir)
    try:
        yield browser
    finally:
        browser.close()


class Browser:
    def __init__(self, binary: str, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "chromium.log"
        to_chromium, self._write = os.pipe()
        self._read, from_chromium = os.pipe()
        command = [binary, *FLAGS, f"--user-data-dir={workdir / 'profile'}", "about:blank"]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                ["/bin/sh", "-c", PLUMBING, "sh", *command],
                stdin=to_chromium,
                stdout=from_chromium,
                stderr=log,
                start_new_session=True,  # its own process group, so its helpers die with it
            )
        os.close(to_chromium)
        os.close(from_chromium)
        self._lock = threading.Condition()
        self._write_lock = threading.Lock()
        self._next_id = 0
        self._answers: dict[int, Message] = {}
        self._events: dict[str, list[Message]] = {}  # of each open page's session
        self._closed = False
        self._reader = threading.Thread(target=self._read_messages, name="chromium-pipe")
        self._reader.start()

    # -- the pipe ----------------------------------------------------------------------------

    def _read_messages(self) -> None:
        buffer = b""
        try:
            while chunk := os.read(self._read, 1 << 16):
                *messages, buffer = (buffer + chunk).split(b"\0")
                with self._lock:
                    for raw in messages:
                        message = json.loads(raw)
                        if "id" in message:
                            self._answers[message["id"]] = message
                        elif (events := self._events.get(message.get("sessionId"))) is not None:
                            events.append(message)  # (kept only for the pages being read)
                    self._lock.notify_all()
        finally:  # Chromium closed its end (it exited), or wrote what is not JSON
            with self._lock:
                self._closed = True
                self._lock.notify_all()

    def _wait(self, found: Callable[[], Any], deadline: float, what: str) -> Any:
        """What `found` returns once it is not None, looked at each time a message comes."""
        with self._lock:
            while (result := found()) is None:
                left = deadline - time.monotonic()
                if self._closed:
                    raise BrowserError(f"chromium exited before {what} came: see {self.log}")
                if left <= 0:
                    raise BrowserError(f"chromium: {what} did not come in time")
                self._lock.wait(left)
            return result

    def call(self, method: str, session: str | None = None, **params: Any) -> Message:
        """Send one command and wait for its result."""
        with self._lock:
            self._next_id += 1
            ident = self._next_id
        message: Message = {"id": ident, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        with self._write_lock:
            try:
                while data:
                    data = data[os.write(self._write, data) :]
            except BrokenPipeError:
                raise BrowserError(f"chromium exited before {method}: see {self.log}") from None
        deadline = time.monotonic() + TIMEOUT
        answer = self._wait(
            lambda: self._answers.pop(ident, None), deadline, f"the answer to {method}"
        )
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')}")
        return answer["result"]

    def event(self, session: str, method: str, deadline: float) -> Message:
        """The first `method` event of `session` (waiting for it until `deadline`)."""

        def first() -> Message | None:
            events = self._events[session]
            return next((e["params"] for e in events if e["method"] == method), None)

        return self._wait(first, deadline, f"the event {method}")

    # -- pages -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def page(self, url: str, width: int = 800, height: int = 600) -> Iterator[str]:
        """`url` loaded in a new tab of a new browser context, its scripts run (see the module's
        docstring); yields the tab's session. Tab and context are closed afterwards."""
        context = self.call("Target.createBrowserContext")["browserContextId"]
        try:
            target = self.call("Target.createTarget", url="about:blank", browserContextId=context)
            session = self.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)[
                "sessionId"
            ]
            with self._lock:  # before Page.enable, the first command that makes events
                self._events[session] = []
            try:
                try:
                    self._load(session, url, width, height)
                except BrowserError as error:
                    raise BrowserError(f"{url}: {error}") from None
                yield session
            finally:
                with self._lock:
                    del self._events[session]
        finally:
            with contextlib.suppress(BrowserError):
                self.call("Target.disposeBrowserContext", browserContextId=context)

    def _load(self, session: str, url: str, width: int, height: int) -> None:
        deadline = time.monotonic() + TIMEOUT
        self.call("Page.enable", session)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        # Time stands still from before the navigation, so no timer of the page runs outside
        # the budget.
        self.call("Emulation.setVirtualTimePolicy", session, policy="pause")
        navigated = self.call("Page.navigate", session, url=url)
        if navigated.get("errorText"):
            raise BrowserError(navigated["errorText"])
        self.call(
            "Emulation.setVirtualTimePolicy",
            session,
            policy="pauseIfNetworkFetchesPending",
            budget=BUDGET,
        )
        self.event(session, "Emulation.virtualTimeBudgetExpired", deadline)
        self.event(session, "Page.loadEventFired", deadline)

    def dom(self, url: str) -> str:
        """The page's DOM once its scripts ran, as `--dump-dom` prints it."""
        with self.page(url) as session:
            return self.evaluate(session, "document.documentElement.outerHTML")

    def doms(self, urls: list[str]) -> dict[str, str]:
        """`dom` of each URL, a few pages at a time."""
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            return dict(zip(urls, pool.map(self.dom, urls), strict=True))

    def screenshot(self, url: str, width: int, height: int) -> bytes:
        """A PNG of the page's viewport, `width` by `height` CSS pixels at scale 1."""
        with self.page(url, width, height) as session:
            data = self.call("Page.captureScreenshot", session, format="png")["data"]
            return base64.b64decode(data)

    def evaluate(self, session: str, expression: str) -> Any:
        result = self.call("Runtime.evaluate", session, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"]["value"]

    # -- the end -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the pipe (Chromium quits when it reads its end), then kill its process group
        whatever it did."""
        os.close(self._write)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._reader.join(timeout=10)
        if not self._reader.is_alive():  # (else a helper still holds the pipe: leave it)
            os.close(self._read)
