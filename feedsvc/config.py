"""Settings from one place, with one precedence: a command-line option, else the environment
(FEEDSVC_*), else `feeds/site.toml` (the catalogue applies `base_url` over its own), else the
default. Nothing else reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from .errors import SettingsError

DEFAULT_MAX_BODY = 5 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    """Where the store and the catalogue are, and the few knobs of the live service."""

    db: str | None = None  # a path or URL; None: `feedsvc.sqlite3` in Flask's instance folder
    feeds_dir: Path = Path("feeds")
    base_url: str | None = None  # overrides feeds/site.toml
    token: str | None = None  # enables POST /api/items
    max_body: int = DEFAULT_MAX_BODY
    access_log: bool = False  # one line per request on stdout (`feedsvc serve` turns it on)
    # How long a worker thread trusts the store generation it read (`feedsvc serve`: 5 ms):
    # 0 asks the store at every request.
    recheck_ms: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings the environment gives; a bad value is a `SettingsError` naming it.

        An empty variable counts as unset (`FEEDSVC_TOKEN= feedsvc serve`: no API)."""
        env = os.environ if environ is None else environ
        settings = cls()
        if env.get("FEEDSVC_DB"):
            settings = replace(settings, db=env["FEEDSVC_DB"])
        if env.get("FEEDSVC_FEEDS"):
            settings = replace(settings, feeds_dir=Path(env["FEEDSVC_FEEDS"]))
        return replace(
            settings,
            max_body=_max_body(env.get("FEEDSVC_MAX_BODY")),
            base_url=_base_url(env.get("FEEDSVC_BASE_URL")),
            token=_token(env.get("FEEDSVC_TOKEN")),
            access_log=_switch("FEEDSVC_ACCESS_LOG", env.get("FEEDSVC_ACCESS_LOG")),
            recheck_ms=_recheck_ms(env.get("FEEDSVC_RECHECK_MS")),
        )

    def with_options(self, **options: object) -> Settings:
        """These settings with the command line's options over them (None: not given)."""
        given = {name: value for name, value in options.items() if value is not None}
        return replace(self, **given)  # type: ignore[arg-type]


def _bad(name: str, value: str, rule: str) -> SettingsError:
    shown = value if len(value) <= 40 else value[:40] + "..."
    return SettingsError(rule, f"{name}={shown!r}")


def _max_body(value: str | None) -> int:
    if not value:
        return DEFAULT_MAX_BODY
    if not (value.isascii() and value.isdigit() and int(value) > 0):
        raise _bad(
            "FEEDSVC_MAX_BODY", value, f"must be a number of bytes (default {DEFAULT_MAX_BODY})"
        )
    return int(value)


def _recheck_ms(value: str | None) -> int:
    if not value:
        return 0
    if not (value.isascii() and value.isdigit() and int(value) <= 60_000):
        raise _bad("FEEDSVC_RECHECK_MS", value, "must be milliseconds from 0 to 60000")
    return int(value)


def _base_url(value: str | None) -> str | None:
    if not value:
        return None
    try:
        parts = urlsplit(value)
        absolute = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        absolute = False
    if not absolute:
        raise _bad("FEEDSVC_BASE_URL", value, "must be an absolute http(s) URL")
    return value


def _token(value: str | None) -> str | None:
    if not value:
        return None
    # Clients send it in an HTTP header (stripped, ASCII): any other token could never match.
    if value != value.strip() or not all(" " <= character <= "~" for character in value):
        # A secret: the message names the variable, never the value.
        raise SettingsError("must be printable ASCII, without spaces around it", "FEEDSVC_TOKEN")
    return value


def _switch(name: str, value: str | None) -> bool:
    if value not in (None, "", "0", "1"):
        raise _bad(name, value, "must be 1 (on) or 0 (off)")
    return value == "1"
