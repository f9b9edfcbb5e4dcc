"""crawler.config: defaults < TOML file < CRAWLER_* environment < flags, validated once.

``environ=`` is always passed explicitly: these tests never read or touch ``os.environ``.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from crawler.config import KEYS, Settings, from_env, from_flags, load, load_explicit, parse_duration
from crawler.errors import ConfigError, UsageError

DEFAULT_TOML = Path(__file__).resolve().parents[1] / "config" / "default.toml"


@pytest.fixture
def toml(tmp_path: Path) -> Any:
    def write(text: str) -> Path:
        path = tmp_path / "crawler.toml"
        path.write_text(text, encoding="utf-8")
        return path
    return write


def config_error(**kwargs: Any) -> str:
    """The message of the ConfigError that ``load(**kwargs)`` raises; it must be one line."""
    kwargs.setdefault("environ", {})
    with pytest.raises(ConfigError) as info:
        load(**kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_validate_and_load_with_nothing_gives_defaults() -> None:
    assert Settings().validated() == Settings()
    assert load(environ={}) == Settings()
    assert issubclass(ConfigError, UsageError)


def test_precedence_defaults_file_env_flags(toml: Any) -> None:
    path = toml("concurrency = 4\nper_host = 3\ndelay = 1.0\nscope = 'domain'\n")
    environ = {"CRAWLER_PER_HOST": "2", "CRAWLER_DELAY": "0.5", "HOME": "/root", "PATH": "/bin"}
    flags = {"delay": 0.25, "timeout": None}  # None: the flag was not given
    s, explicit = load_explicit(path, flags, environ)
    assert (s.concurrency, s.per_host, s.delay, s.scope) == (4, 2, 0.25, "domain")
    assert s.timeout == Settings().timeout
    assert explicit == {"concurrency", "per_host", "delay", "scope"}


def test_load_explicit_reports_exactly_the_keys_set() -> None:
    assert load_explicit(environ={})[1] == frozenset()
    # Set to its default value is still set: the user said so.
    _, explicit = load_explicit(flags={"retries": 2, "robots": None}, environ={"CRAWLER_MAX_PAGES": "0"})
    assert explicit == {"retries", "max_pages"}


def test_file_values_of_every_type(toml: Any) -> None:
    s = load(toml('robots = false\nallow_domains = ["a.com", "b.org"]\ntimeout = 5\nuser_agent = "x/1"\n'),
             environ={})
    assert (s.robots, s.allow_domains, s.timeout, s.user_agent) == (False, ("a.com", "b.org"), 5.0, "x/1")
    assert isinstance(s.timeout, float)


@pytest.mark.parametrize(("value", "expected"), [
    ("a.com,b.org", ("a.com", "b.org")), (" a.com , b.org ,, ", ("a.com", "b.org")), ("", ()),
])
def test_lists_from_env(value: str, expected: tuple[str, ...]) -> None:
    assert load(environ={"CRAWLER_ALLOW_DOMAINS": value}).allow_domains == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("1", True), ("true", True), ("YES", True), ("on", True), ("0", False), ("false", False), ("Off", False),
])
def test_bools_from_env(value: str, expected: bool) -> None:
    assert load(environ={"CRAWLER_ROBOTS": value}).robots is expected


def test_env_names_are_case_insensitive_after_the_prefix() -> None:
    assert from_env({"CRAWLER_Concurrency": "7", "crawler_delay": "9"}) == {"concurrency": 7}


def test_unknown_file_key_is_named(toml: Any) -> None:
    message = config_error(config_file=toml("concurency = 4\n"))
    assert "'concurency'" in message
    assert "crawler.toml" in message


def test_table_in_file_is_an_unknown_key(toml: Any) -> None:
    assert "'fetch'" in config_error(config_file=toml("[fetch]\ntimeout = 3\n"))


def test_unknown_env_variable_and_flag() -> None:
    assert "CRAWLER_CONCURENCY" in config_error(environ={"CRAWLER_CONCURENCY": "4"})
    assert "'bogus'" in config_error(flags={"bogus": 1})


def test_flags_left_out_set_nothing() -> None:
    # What typer passes for ``crawler crawl --db job.db``: every other option at its default.
    params = {"db": "job.db", "urls": (), "seeds": None, "config_file": None, "max_pages": None,
              "allow_domain": (), "include": [], "no_robots": False, "recrawl": False, "older_than": None}
    assert from_flags(params) == {"db": "job.db"}


def test_flags_named_otherwise_than_their_setting() -> None:
    params = {"allow_domain": ["a.com"], "no_robots": True, "no_bodies": True, "recrawl": True,
              "older_than": "2h", "max_pages": 0, "scope": "domain"}
    assert from_flags(params) == {"allow_domains": ["a.com"], "robots": False, "bodies": False, "recrawl": True,
                                  "older_than": 7200.0, "max_pages": 0, "scope": "domain"}


def test_every_crawl_option_but_seeds_and_config_is_a_setting() -> None:
    import typer

    from crawler.cli import app
    crawl = typer.main.get_command(app).commands["crawl"]
    for param in crawl.params:
        name = param.name
        keys = set(from_flags({name: "1"}))
        if name in ("urls", "seeds", "config_file"):
            assert not keys, name
        else:
            assert keys, name
            assert keys <= KEYS, name


@pytest.mark.parametrize(("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("30m", 1800.0), (" 12h ", 43200.0),
                                               ("7d", 604800.0), ("1.5w", 907200.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "", "7y", "-1d", "d"])
def test_bad_duration(text: str) -> None:
    with pytest.raises(ConfigError, match="bad duration"):
        parse_duration(text)


def test_missing_and_invalid_toml(toml: Any, tmp_path: Path) -> None:
    assert "not found" in config_error(config_file=tmp_path / "nope.toml")
    assert "not valid TOML" in config_error(config_file=toml("concurrency = = 3\n"))


@pytest.mark.parametrize(("source", "key", "value"), [
    ("env", "concurrency", "abc"),
    ("env", "concurrency", "2.5"),
    ("env", "delay", "fast"),
    ("env", "robots", "maybe"),
    ("toml", "concurrency", "2.5"),
    ("toml", "concurrency", "true"),
    ("toml", "delay", "true"),
    ("toml", "robots", '"maybe"'),
    ("toml", "robots", "1"),
    ("toml", "allow_domains", "[1, 2]"),
    ("toml", "user_agent", "5"),
    ("flag", "concurrency", "abc"),
])
def test_bad_types_name_the_key_and_source(toml: Any, source: str, key: str, value: str) -> None:
    if source == "env":
        message = config_error(environ={f"CRAWLER_{key.upper()}": value})
        where = f"CRAWLER_{key.upper()}"
    elif source == "toml":
        message = config_error(config_file=toml(f"{key} = {value}\n"))
        where = "crawler.toml"
    else:
        message = config_error(flags={key: value})
        where = "command line"
    assert key in message
    assert where in message


@pytest.mark.parametrize("line", ['robots = "false"', 'concurrency = "8"'])
def test_toml_strings_are_not_parsed_like_environment_strings(toml: Any, line: str) -> None:
    config_error(config_file=toml(line + "\n"))


@pytest.mark.parametrize(("flags", "needle"), [
    ({"concurrency": 0}, "concurrency must be at least 1"),
    ({"per_host": 0}, "per_host"),
    ({"max_redirects": 0}, "max_redirects"),
    ({"delay": -1.0}, "delay must not be negative"),
    ({"retries": -1}, "retries"),
    ({"timeout": 0.0}, "timeout must be positive"),
    ({"max_depth": -2}, "max_depth"),
    ({"scope": "planet"}, "scope must be one of host, domain, any"),
    ({"transport": "curl"}, "transport"),
    ({"parse_mode": "fork"}, "parse_mode"),
    ({"user_agent": "  "}, "user_agent"),
])
def test_out_of_range_values(flags: dict[str, Any], needle: str) -> None:
    assert needle in config_error(flags=flags)


def test_out_of_range_from_env_too() -> None:
    assert "concurrency" in config_error(environ={"CRAWLER_CONCURRENCY": "0"})


@pytest.mark.parametrize(("source", "key"), [("env", "timeout"), ("env", "delay"), ("toml", "retry_backoff")])
def test_nan_is_rejected(toml: Any, source: str, key: str) -> None:
    if source == "env":
        config_error(environ={f"CRAWLER_{key.upper()}": "nan"})
    else:
        config_error(config_file=toml(f"{key} = nan\n"))


# --- config/default.toml documents every key ------------------------------------------------------


@pytest.mark.skipif(not DEFAULT_TOML.exists(), reason="config/default.toml not written yet")
def test_default_toml_names_every_setting_and_loads_as_the_defaults() -> None:
    text = DEFAULT_TOML.read_text(encoding="utf-8")
    # Keys may be set or commented out ("# delay = 0.0"): either documents them.
    documented = set(re.findall(r"^[ \t]*#?[ \t]*([a-z_]+)[ \t]*=", text, flags=re.MULTILINE))
    missing = sorted(KEYS - documented)
    assert not missing, f"not in config/default.toml: {missing}"
    assert load(DEFAULT_TOML, environ={}) == Settings()


def test_keys_are_the_settings_fields() -> None:
    # but the password of --auth, which no file, variable or flag may set (crawler.access.credentials)
    assert {f.name for f in fields(Settings)} == KEYS | {"auth_password"}
    assert "s3cret" not in repr(Settings(auth_password="s3cret"))
