"""What the wheel ships. .ci/run installs a real wheel and smoke-tests it (tests/smoke.py);
this is the quick check of the same rule while iterating."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch

from .conftest import ROOT


def test_every_template_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["feedsvc"]
    package = ROOT / "feedsvc"
    templates = [p.relative_to(package).as_posix() for p in (package / "templates").iterdir()]
    assert "templates/feeds.opml" in templates
    missing = [t for t in templates if not any(fnmatch(t, pattern) for pattern in patterns)]
    assert missing == [], f"not in the wheel: {missing}"
