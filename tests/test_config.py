"""Settings from the environment: every bad value is one line naming the variable."""

from __future__ import annotations

import pytest

from feedsvc.cli import main
from feedsvc.config import DEFAULT_MAX_BODY, Settings
from feedsvc.errors import SettingsError
from feedsvc.web import create_app

BAD = {
    "FEEDSVC_MAX_BODY": [
        ("5M", "FEEDSVC_MAX_BODY='5M': must be a number of bytes (default 5242880)"),
        ("0", "FEEDSVC_MAX_BODY='0': must be a number of bytes (default 5242880)"),
        ("-1", "FEEDSVC_MAX_BODY='-1': must be a number of bytes (default 5242880)"),
        ("١٢", "FEEDSVC_MAX_BODY='١٢': must be a number of bytes (default 5242880)"),
    ],
    "FEEDSVC_ACCESS_LOG": [
        ("yes", "FEEDSVC_ACCESS_LOG='yes': must be 1 (on) or 0 (off)"),
    ],
    "FEEDSVC_BASE_URL": [
        (
            "feeds.example.org",
            "FEEDSVC_BASE_URL='feeds.example.org': must be an absolute http(s) URL",
        ),
        (
            "ftp://x.example/",
            "FEEDSVC_BASE_URL='ftp://x.example/': must be an absolute http(s) URL",
        ),
    ],
    "FEEDSVC_TOKEN": [
        ("s3cret\n", "FEEDSVC_TOKEN: must be printable ASCII, without spaces around it"),
        ("sécret", "FEEDSVC_TOKEN: must be printable ASCII, without spaces around it"),
    ],
}
CASES = [(name, value, line) for name, cases in BAD.items() for value, line in cases]


@pytest.mark.parametrize(("name", "value", "line"), CASES)
def test_bad_setting_is_an_error_naming_variable_and_value(name, value, line) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value) == line


def test_good_and_empty_settings_are_read() -> None:
    settings = Settings.from_env(
        {
            "FEEDSVC_MAX_BODY": "1234",
            "FEEDSVC_ACCESS_LOG": "1",
            "FEEDSVC_BASE_URL": "https://feeds.example.org/news/",
            "FEEDSVC_TOKEN": "pass phrase-1",
        }
    )
    assert settings.max_body == 1234 and settings.access_log
    assert settings.base_url == "https://feeds.example.org/news/"
    assert settings.token == "pass phrase-1"
    empty = {name: "" for name in BAD}
    assert Settings.from_env(empty) == Settings.from_env({}) == Settings()
    assert Settings().max_body == DEFAULT_MAX_BODY


def test_a_long_value_is_cut_short_in_the_message() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"FEEDSVC_MAX_BODY": "9" * 30 + "x" * 100})
    assert str(caught.value) == (
        f"FEEDSVC_MAX_BODY='{'9' * 30}{'x' * 10}...': must be a number of bytes (default 5242880)"
    )


@pytest.mark.parametrize("command", [["topics"], ["serve"], ["parse", "-"]])
@pytest.mark.parametrize(("name", "value", "line"), CASES)
def test_cli_shows_a_bad_setting_in_one_line(runner, command, name, value, line) -> None:
    result = runner.invoke(main, command, env={name: value}, input="")
    assert result.exit_code == 1
    assert result.stderr == f"feedsvc: error: {line}\n"
    assert result.stdout == ""  # nothing started: no "serving on"


def test_create_app_raises_the_named_error(settings, store, monkeypatch) -> None:
    monkeypatch.setenv("FEEDSVC_DB", str(settings.db))
    monkeypatch.setenv("FEEDSVC_MAX_BODY", "5 MiB")
    with pytest.raises(SettingsError, match=r"^FEEDSVC_MAX_BODY='5 MiB': must be a number"):
        create_app()
    # Settings given outright are the settings: the environment is not read.
    app = create_app({"SETTINGS": settings, "TESTING": True})
    assert app.config["MAX_CONTENT_LENGTH"] == settings.max_body


@pytest.mark.sqlite_only
def test_a_setting_comes_from_the_option_else_the_environment_else_site_toml(
    tmp_path, store
) -> None:
    """One precedence (README, Settings): `build --base-url` over FEEDSVC_BASE_URL over
    base_url in site.toml; `--db` over FEEDSVC_DB."""
    from click.testing import CliRunner

    from .server import snapshot_feeds

    feeds = snapshot_feeds(tmp_path / "feeds")
    site_toml = feeds / "site.toml"
    site_toml.write_text('base_url = "https://toml.example/"\n' + site_toml.read_text())

    def links(env_url: str, *option: str) -> str:
        env = {"FEEDSVC_DB": store.location, "FEEDSVC_FEEDS": str(feeds)}
        result = CliRunner(env={**env, "FEEDSVC_BASE_URL": env_url}).invoke(
            main, ["build", str(tmp_path / "site"), "--overwrite", *option]
        )
        assert result.exit_code == 0, result.output
        return (tmp_path / "site" / "feeds.opml").read_text()

    assert "https://option.example/" in links(
        "https://env.example/", "--base-url", "https://option.example/"
    )
    assert "https://env.example/" in links("https://env.example/")
    assert "https://toml.example/" in links("")

    elsewhere = tmp_path / "nowhere.sqlite3"
    runner = CliRunner(env={"FEEDSVC_DB": store.location, "FEEDSVC_FEEDS": str(feeds)})
    result = runner.invoke(main, ["--db", str(elsewhere), "topics"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"feedsvc: error: {elsewhere}: no store here")
