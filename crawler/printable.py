"""Text from the network, made safe to print on a terminal.

A URL, a title, a header or an error message comes from a server, and a server can put control
characters in it: ESC starts a terminal escape sequence (retitle the window, move the cursor, rewrite
lines already shown, on some terminals write to the clipboard), BEL rings, CR and BS hide what came
before, and bidirectional overrides reorder what the reader sees. ``printable`` shows each of them
as an escape (``\\x1b``, ``\\u202e``) and leaves every other character as it is. It is pure, and
every command's text output passes through it where it may hold what a server sent.
"""

from __future__ import annotations

import re
import sys

# C0 controls (newline and tab included: a value is printed on one line), DEL, C1 controls (0x9b is
# CSI on terminals that take 8-bit controls), and the bidirectional embeddings, overrides and isolates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every control character escaped: ``"a\\x1b]0;b"`` becomes ``"a\\\\x1b]0;b"``."""
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def say(message: str) -> None:
    """One plain line on stderr: no markup, no wrapping, no control character, whatever the message holds."""
    print(printable(message), file=sys.stderr, flush=True)
