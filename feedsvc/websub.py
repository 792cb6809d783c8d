"""WebSub publishing (W3C Recommendation, section 7): tell the site's hubs which feeds changed.

One POST per hub (`hub.mode=publish`, `hub.url` once per changed feed URL), after the change
is committed, with a timeout and a few retries with backoff. A hub that is down costs a log
line, never an ingest or a build: failures are reported, not raised.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

TIMEOUT = 5.0  # seconds per attempt
ATTEMPTS = 3
BACKOFF = 0.5  # seconds before the second attempt, doubled each time
USER_AGENT = "feedsvc (WebSub publisher)"

logger = logging.getLogger("feedsvc.websub")


@dataclass(frozen=True, slots=True)
class PingResult:
    hub: str
    ok: bool
    detail: str  # the hub's status, or why it could not be reached


def publish_body(urls: Iterable[str]) -> bytes:
    """The form body of a publish request: the mode, then each changed URL once, sorted."""
    fields = [("hub.mode", "publish")] + [("hub.url", url) for url in sorted(set(urls))]
    return urllib.parse.urlencode(fields).encode("ascii")


class Pinger:
    """Sends publish pings to a fixed list of hubs."""

    def __init__(
        self,
        hubs: Sequence[str],
        timeout: float = TIMEOUT,
        attempts: int = ATTEMPTS,
        backoff: float = BACKOFF,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.hubs = tuple(hubs)
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.report = report or logger.warning

    def ping(self, urls: Iterable[str]) -> list[PingResult]:
        """Ping every hub about `urls` (nothing to ping: no request at all)."""
        urls = sorted(set(urls))
        if not urls or not self.hubs:
            return []
        body = publish_body(urls)
        return [self._ping_hub(hub, body) for hub in self.hubs]

    def ping_in_background(self, urls: Iterable[str]) -> threading.Thread | None:
        """The same, in a daemon thread: a server's answer never waits for a hub."""
        urls = sorted(set(urls))
        if not urls or not self.hubs:
            return None
        thread = threading.Thread(target=self.ping, args=(urls,), name="websub", daemon=True)
        thread.start()
        return thread

    def _ping_hub(self, hub: str, body: bytes) -> PingResult:
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            result = self._post(hub, body)
            if result.ok:
                return result
            self.report(f"websub: {hub}: attempt {attempt} of {self.attempts}: {result.detail}")
            if attempt < self.attempts:
                time.sleep(delay)
                delay *= 2
        return result

    def _post(self, hub: str, body: bytes) -> PingResult:
        request = urllib.request.Request(
            hub,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": USER_AGENT,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return PingResult(hub, True, str(response.status))
        except urllib.error.HTTPError as error:  # 4xx/5xx: the hub answered, and said no
            return PingResult(hub, False, f"HTTP {error.code}")
        except (urllib.error.URLError, OSError) as error:  # refused, unreachable, timed out
            reason = getattr(error, "reason", error)
            return PingResult(hub, False, f"unreachable: {reason}")
