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


def test_the_topic_model_and_its_training_data_are_package_data() -> None:
    # Filing reads the model at the first item (a missing file is an error on every command
    # that files), and `feedsvc learn` starts from the shipped training data.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["feedsvc"]
    for name in ("data/topics_model.json", "data/topics_training.jsonl"):
        assert (ROOT / "feedsvc" / name).is_file(), name
        assert any(fnmatch(name, pattern) for pattern in patterns), f"not in the wheel: {name}"
