"""Main text, its word count and its simhash: the CPU-heavy part of the parse stage.

Every page's main text is taken out of its tree for its word count (a built-in field); its simhash
is the optional part (``extract_text``).

A simhash maps a text to 64 bits such that similar texts get hashes a few bits apart, so pages
that differ only in navigation, dates or counters can be flagged as near-duplicates. It is pure
Python work over every word of a page, which makes it the stage's CPU-bound part: the work that
the GIL keeps a thread pool from spreading over cores and a process pool spreads well.
"""

from __future__ import annotations

import re
import string
from hashlib import blake2b

from selectolax.lexbor import LexborHTMLParser

# Elements whose text is not the page's content.
_BOILERPLATE = "script, style, noscript, template, nav, header, footer, aside, form, svg, iframe, select"
_WORD = re.compile(r"\w+")
# What str.split splits on beyond ASCII: NEL, no-break space, the Ogham, en, em, thin... spaces, line
# and paragraph separators, ideographic space (every non-ASCII str.isspace; a test holds the list to it).
UNICODE_SPACES = ("\x85", "\xa0", "\u1680", *(chr(c) for c in range(0x2000, 0x200B)), "\u2028", "\u2029", "\u202f",
                  "\u205f", "\u3000")
_PUNCTUATION = string.punctuation.encode()
_WORD_MARKS = bytes(32 if chr(b).isspace() else 120 for b in range(128)) + b"x" * 128
SHINGLE = 3          # words per feature: word order matters, single-word noise does not
NEAR_BITS = 3        # hashes at most this many bits apart are near-duplicates

# Vertical counters: each of the 64 bits of a feature hash gets its own 24-bit field in one big
# integer, so adding two spread values adds 64 counters at once. Eight table lookups (one per
# byte) spread a 64-bit hash; this is ~8x faster than looping over bits in Python.
_FIELD = 24
_SPREAD = [[sum(((byte >> bit) & 1) << (_FIELD * (8 * pos + bit)) for bit in range(8)) for byte in range(256)]
           for pos in range(8)]
_FIELD_MASK = (1 << _FIELD) - 1


def main_text(tree: LexborHTMLParser) -> str:
    """The visible text of a parsed page without boilerplate, whitespace collapsed. Mutates ``tree``."""
    return " ".join(raw_main_text(tree).split())


def raw_main_text(tree: LexborHTMLParser) -> str:
    """``main_text`` before its whitespace is collapsed (a word count needs no more). Mutates ``tree``:
    the boilerplate is taken out of it."""
    root = tree.body or tree.root
    if root is None:
        return ""
    for node in root.css(_BOILERPLATE):
        node.decompose()
    return root.text(separator=" ")


def count_words(text: str) -> int:
    """The words of a text: its whitespace-separated tokens (as ``str.split`` cuts them) that hold
    more than ASCII punctuation, so the lone "." or "|" between two elements is no word. Counted
    without making the words: 25 µs for the 1,700 words of a bench page, where splitting takes 65.

    ASCII punctuation is deleted, every whitespace character (str.isspace) becomes a space and every
    other byte of the UTF-8 text an ``x``; words are then the ``" x"`` pairs, plus one if the text
    starts with a word. Each step runs in C over the whole text at once.
    """
    if not text.isascii():
        for space in UNICODE_SPACES:
            if space in text:
                text = text.replace(space, " ")
    marks = text.encode("utf-8", "surrogatepass").translate(_WORD_MARKS, _PUNCTUATION)
    return marks.count(b" x") + (marks[:1] == b"x")


def simhash(text: str) -> int:
    """64-bit simhash of a text over word 3-shingles (0 for a text of no words)."""
    words = _WORD.findall(text.lower())
    if not words:
        return 0
    if len(words) < SHINGLE:
        features = [" ".join(words)]
    else:
        features = [" ".join(words[i:i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)]
    t0, t1, t2, t3, t4, t5, t6, t7 = _SPREAD
    total = 0
    for feature in features:
        h = int.from_bytes(blake2b(feature.encode(), digest_size=8).digest(), "little")
        total += (t0[h & 255] + t1[(h >> 8) & 255] + t2[(h >> 16) & 255] + t3[(h >> 24) & 255]
                  + t4[(h >> 32) & 255] + t5[(h >> 40) & 255] + t6[(h >> 48) & 255] + t7[h >> 56])
    half = len(features) / 2
    out = 0
    for bit in range(64):
        if (total >> (_FIELD * bit)) & _FIELD_MASK > half:
            out |= 1 << bit
    return out


def hamming(a: int, b: int) -> int:
    """Bits that differ between two hashes."""
    return (a ^ b).bit_count()


def to_signed(h: int) -> int:
    """A 64-bit hash as SQLite's signed 64-bit INTEGER."""
    return h - (1 << 64) if h >= 1 << 63 else h


def bands(h: int) -> tuple[int, int, int, int]:
    """Four 16-bit bands: hashes within NEAR_BITS (< 4) bits of each other share at least one."""
    return (h & 0xFFFF, (h >> 16) & 0xFFFF, (h >> 32) & 0xFFFF, (h >> 48) & 0xFFFF)
