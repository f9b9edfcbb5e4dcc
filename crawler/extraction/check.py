"""What a run's extraction settings come to, checked before the first request: the rules read from
their file, the plugin imported. A mistake in either is a ``UsageError`` (one line, exit 2)."""

from __future__ import annotations

from crawler.extraction import plugin as plugins
from crawler.extraction.rules import Rules, load


def check_extraction(rules_file: str, plugin: str) -> Rules | None:
    """The rules of ``rules_file`` ("" none), with the ``plugin`` ("" none) checked to import and be
    callable."""
    rules = load(rules_file) if rules_file else None
    if plugin:
        plugins.load(plugin)
    return rules
