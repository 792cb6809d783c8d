"""Settings from one place: the environment and the command line, never read elsewhere."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_MAX_BODY = 5 * 1024 * 1024


def default_instance_path() -> Path:
    """Flask's instance folder for this package (the default home of the store)."""
    from flask import Flask  # deferred: importing the CLI should not build an app

    return Path(Flask("feedsvc").instance_path)


@dataclass(frozen=True, slots=True)
class Settings:
    """Where the store and the catalogue are, and the few knobs of the live service."""

    db_path: Path | None = None  # None: `feedsvc.sqlite3` in Flask's instance folder
    feeds_dir: Path = Path("feeds")
    base_url: str | None = None  # overrides feeds/site.toml
    token: str | None = None  # enables POST /api/items
    max_body: int = DEFAULT_MAX_BODY
    access_log: bool = False  # one line per request on stdout (`feedsvc serve` turns it on)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        settings = cls()
        if env.get("FEEDSVC_DB"):
            settings = replace(settings, db_path=Path(env["FEEDSVC_DB"]))
        if env.get("FEEDSVC_FEEDS"):
            settings = replace(settings, feeds_dir=Path(env["FEEDSVC_FEEDS"]))
        if env.get("FEEDSVC_MAX_BODY", "").isdigit():
            settings = replace(settings, max_body=int(env["FEEDSVC_MAX_BODY"]))
        return replace(
            settings,
            base_url=env.get("FEEDSVC_BASE_URL") or None,
            token=env.get("FEEDSVC_TOKEN") or None,
            access_log=env.get("FEEDSVC_ACCESS_LOG") == "1",
        )

    def store_path(self) -> Path:
        return self.db_path or default_instance_path() / "feedsvc.sqlite3"
