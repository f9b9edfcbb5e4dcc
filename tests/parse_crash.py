"""A parse function that kills its worker process on a marker, for the parse-stage crash tests.

It lives in its own module so that a process-pool worker can import it by name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from crawler.parse_stage import Analysis, ParseOptions, analyze

MARKER = b"<!-- crash the parser -->"


def crash_on_marker(url: str, headers: Mapping[str, str], body: bytes, depth: int, html: bool,
                    options: ParseOptions, status: int = 200) -> Analysis:
    if MARKER in body:
        os._exit(1)   # what a segfault in C code or an out-of-memory kill looks like to the pool
    return analyze(url, headers, body, depth, html, options, status)
