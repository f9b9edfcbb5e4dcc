"""Counts and sizes as a person reads them: ``1 page``, ``1,808 pages``, ``2.5 MB``. Pure."""

from __future__ import annotations


def plural(count: int, word: str, words: str | None = None) -> str:
    """``count`` with thousands separators and ``word`` agreeing with it: ``plural(1, "page")`` is
    ``1 page``, ``plural(1808, "page")`` is ``1,808 pages``; ``words`` for a plural that is not
    ``word + "s"`` (``plural(2, "entry", "entries")``)."""
    return f"{count:,} {word if count == 1 else words or word + 's'}"


def size(count: int) -> str:
    """A byte count as the report and ``stats`` print it: ``512 B``, ``1.5 KB``, ``10.0 MB``, ``2.3 GB``
    (binary: a KB is 1,024 bytes)."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count:,} B"
