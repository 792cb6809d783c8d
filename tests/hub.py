"""A small WebSub hub for tests: a real HTTP server on loopback that records publish requests
and can fail on demand (no tests in here)."""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hub:
    """Records each POST as (content type, parsed form); answers from a script of failures."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, list[tuple[str, str]]]] = []
        self.script: deque[int | float] = deque()  # a status to answer, or seconds to stall
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode("ascii")
                with hub.lock:
                    step = hub.script.popleft() if hub.script else 204
                    hub.requests.append(
                        (self.headers.get("Content-Type", ""), urllib.parse.parse_qsl(body))
                    )
                    hub.arrived.notify_all()
                if isinstance(step, float):
                    time.sleep(step)  # longer than the client waits: a timeout
                    step = 204
                self.send_response(step)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Hub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(
        self, count: int, timeout: float = 10.0
    ) -> list[tuple[str, list[tuple[str, str]]]]:
        with self.lock:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def published_urls(self, index: int = -1) -> list[str]:
        return [value for key, value in self.requests[index][1] if key == "hub.url"]
