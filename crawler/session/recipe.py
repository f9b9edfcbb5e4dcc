"""A login recipe (``--login FILE``, TOML) read and checked into ``Recipe``, before the first request.

    url  = "https://intranet.example/login"     # the login page
    form = "form#login"                         # CSS selector of its form
    guard = ["logout", "delete"]                # optional: replaces the default list (guard.py)
    [fields]                                    # filled in; other inputs (CSRF tokens) are carried over
    user = "alice"
    password = "${INTRANET_PASSWORD}"           # ${VAR}: read from the environment, never stored
    [check]
    logged_in = "a.logout"        # a selector on the page the login lands on ...
    logged_in_url = "/home"       # ... or a regex searched in its URL (at least one of the two)
    logged_out = "form#login"     # a selector on a page served logged out ...
    logged_out_url = "/login"     # ... or a regex searched in its final URL (at least one of the two)

Every mistake is a ``ConfigError`` (one line, exit 2) naming the file and the key; a ``${VAR}`` that
is not set is one too. ``Recipe`` keeps the fields as written (``${VAR}`` unexpanded): ``values()``
reads the environment at each login, so no password is held in a value that is pickled, stored or
printed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selectolax.lexbor import LexborHTMLParser

from crawler.errors import ConfigError
from crawler.session.guard import DEFAULT_GUARD
from crawler.urls import canonicalize
from crawler.user_files import read_toml

TOP_KEYS = ("url", "form", "fields", "check", "guard")
CHECK_KEYS = ("logged_in", "logged_in_url", "logged_out", "logged_out_url")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Recipe:
    """A checked login recipe. ``fields`` as written (``${VAR}`` references unexpanded)."""

    source: str
    url: str
    form: str
    fields: tuple[tuple[str, str], ...]
    logged_in: str = ""
    logged_in_url: str = ""
    logged_out: str = ""
    logged_out_url: str = ""
    guard: tuple[str, ...] = DEFAULT_GUARD

    def values(self) -> dict[str, str]:
        """The fields with each ``${VAR}`` read from the environment now; a variable not set is a
        ``ConfigError``."""
        return {name: expand(value, f"{self.source}: fields.{name}") for name, value in self.fields}


def expand(value: str, where: str) -> str:
    """``value`` with every ``${VAR}`` replaced by the environment's value."""
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"{where} names ${{{name}}}, which is not set in the environment")
        return os.environ[name]
    return _VARIABLE.sub(one, value)


def load(path: str) -> Recipe:
    """Read and check the recipe at ``path``, its ``${VAR}`` references included."""
    recipe = _recipe(str(Path(path)), read_toml(path, "login recipe"))
    recipe.values()   # every ${VAR} is set: checked now, before the first request
    return recipe


def _recipe(source: str, raw: dict[str, Any]) -> Recipe:
    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"{source}: {key} {why}")

    for key in raw:
        if key not in TOP_KEYS:
            raise bad(key, f"is not a key of a login recipe ({', '.join(TOP_KEYS)})")
    for key in ("url", "form"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise bad(key, "must be given, as a string")
    if not raw["url"].startswith(("http://", "https://")):
        raise bad("url", f"must be an absolute http(s) URL, got {raw['url']!r}")
    _selector(raw["form"], lambda why: bad("form", why))
    fields = raw.get("fields", {})
    if not isinstance(fields, dict) or not fields:
        raise bad("fields", "must be a table of the form's inputs to fill in ([fields] name = \"value\")")
    for name, value in fields.items():
        if not isinstance(value, str):
            raise bad(f"fields.{name}", "must be a string")
    check = raw.get("check", {})
    if not isinstance(check, dict):
        raise bad("check", "must be a table ([check])")
    for key, value in check.items():
        if key not in CHECK_KEYS:
            raise bad(f"check.{key}", f"is not a key of [check] ({', '.join(CHECK_KEYS)})")
        if not isinstance(value, str) or not value.strip():
            raise bad(f"check.{key}", "must be a non-empty string")
        if key.endswith("_url"):
            try:
                re.compile(value)
            except re.error as exc:
                raise bad(f"check.{key}", f"is not a valid regex: {exc}") from None
        else:
            _selector(value, lambda why, key=key: bad(f"check.{key}", why))
    if not ({"logged_in", "logged_in_url"} & check.keys()):
        raise bad("check", "needs logged_in (a selector) or logged_in_url (a regex): what proves the login worked")
    if not ({"logged_out", "logged_out_url"} & check.keys()):
        raise bad("check", "needs logged_out (a selector) or logged_out_url (a regex): what shows a page "
                           "was served logged out")
    guard = raw.get("guard", list(DEFAULT_GUARD))
    if not isinstance(guard, list) or not all(isinstance(word, str) and word.strip() for word in guard):
        raise bad("guard", "must be a list of words (an empty list guards nothing)")
    return Recipe(source, canonicalize(raw["url"]) or raw["url"], raw["form"], tuple((k, v) for k, v in fields.items()),
                  check.get("logged_in", ""), check.get("logged_in_url", ""), check.get("logged_out", ""),
                  check.get("logged_out_url", ""), tuple(word.strip().lower() for word in guard))


def _selector(css: str, bad: Any) -> None:
    try:
        LexborHTMLParser("<p></p>").css_first(css)
    except Exception as exc:  # selectolax raises its own errors for a selector it cannot read
        raise bad(f"is not a CSS selector selectolax reads: {exc}") from None
