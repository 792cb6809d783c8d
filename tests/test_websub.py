"""WebSub publish pings against a real hub on loopback (tests/hub.py)."""

from __future__ import annotations

import socket
import time

import pytest

from feedsvc.websub import Pinger

from .hub import Hub

FEEDS = ["http://feeds.example.org/feeds/all.atom", "http://feeds.example.org/feeds/all.rss"]


@pytest.fixture
def hub():
    with Hub() as running:
        yield running


def test_one_publish_request_per_hub_with_every_changed_url(hub) -> None:
    results = Pinger([hub.url], backoff=0).ping([*FEEDS, FEEDS[0]])
    assert [r.ok for r in results] == [True]
    ((content_type, form),) = hub.wait_for(1)
    assert content_type == "application/x-www-form-urlencoded"
    assert form == [("hub.mode", "publish"), ("hub.url", FEEDS[0]), ("hub.url", FEEDS[1])]


def test_nothing_changed_sends_nothing(hub) -> None:
    assert Pinger([hub.url]).ping([]) == []
    # No fixed sleep to see nothing arrive: a real ping after it is the first request.
    Pinger([hub.url], backoff=0).ping(FEEDS[:1])
    ((_, form),) = hub.wait_for(1)
    assert form == [("hub.mode", "publish"), ("hub.url", FEEDS[0])]


def test_a_failing_hub_is_retried_with_backoff_then_reported(hub) -> None:
    hub.script.extend([500, 503])
    lines: list[str] = []
    started = time.monotonic()
    (result,) = Pinger([hub.url], backoff=0.1, report=lines.append).ping(FEEDS)
    assert result.ok and len(hub.wait_for(3)) == 3
    assert time.monotonic() - started >= 0.3  # 0.1 then 0.2 seconds apart
    assert [line.rsplit(": ", 1)[1] for line in lines] == ["HTTP 500", "HTTP 503"]
    hub.script.extend([500, 500, 500])
    (failed,) = Pinger([hub.url], backoff=0, report=lines.append).ping(FEEDS)
    assert not failed.ok and failed.detail == "HTTP 500" and len(lines) == 5


def test_a_stalled_hub_times_out_and_a_closed_port_is_unreachable(hub) -> None:
    hub.script.append(2.0)
    lines: list[str] = []
    started = time.monotonic()
    (result,) = Pinger([hub.url], timeout=0.3, attempts=1, report=lines.append).ping(FEEDS)
    assert not result.ok and "unreachable" in result.detail
    assert time.monotonic() - started < 1.5
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/hub"
    (down,) = Pinger([closed], attempts=2, backoff=0, report=lines.append).ping(FEEDS)
    assert not down.ok and "unreachable" in down.detail and len(lines) == 3


def test_background_ping_returns_at_once(hub) -> None:
    hub.script.append(0.5)
    started = time.monotonic()
    thread = Pinger([hub.url]).ping_in_background(FEEDS)
    assert time.monotonic() - started < 0.2 and thread is not None
    thread.join(5)
    assert hub.published_urls() == FEEDS
