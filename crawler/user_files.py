"""Files the user names (a config file, a login recipe, a cookies.txt), read with
one line for each way that fails: not found, unreadable, not TOML. Each message names the kind of
file and its path, so the CLI can print it as it is (exit 2). Extraction rules are read the same way
by ``extraction.rules`` itself, which imports nothing beyond the foundations."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from crawler.errors import ConfigError


def read_text(path: str | Path, what: str) -> str:
    """The text of ``path`` (UTF-8); a ``ConfigError`` naming ``what`` the file is if it cannot be read."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {p}: {exc}") from None


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """``path`` read as TOML; a ``ConfigError`` naming ``what`` the file is if it cannot be."""
    text = read_text(path, what)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {Path(path)} is not valid TOML: {exc}") from None
