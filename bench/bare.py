"""The floor for bench.serve: a bare WSGI callable answering one feed's bytes with the headers
feedsvc sends (200, or 304 to its ETag), run under granian exactly as `feedsvc serve` runs.

    granian ... --factory bench.bare:create_app   (FEEDSVC_BENCH_BARE=answer.json)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


def create_app() -> WSGIApp:
    """answer.json: {"body": path, "headers": [[name, value]...], "not_modified": [...]}."""
    answer = json.loads(Path(os.environ["FEEDSVC_BENCH_BARE"]).read_text())
    body = Path(answer["body"]).read_bytes()
    headers = [tuple(pair) for pair in answer["headers"]]
    not_modified = [tuple(pair) for pair in answer["not_modified"]]
    etag = {name.lower(): value for name, value in headers}["etag"]

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("HTTP_IF_NONE_MATCH") == etag:
            start_response("304 Not Modified", not_modified)
            return [b""]
        start_response("200 OK", headers)
        return [body]

    return app
