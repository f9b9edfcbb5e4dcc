"""The one canonical form of a URL, and the keys derived from it.

Every link the parser finds goes through ``canonicalize`` before it reaches the frontier, so two
spellings of one resource (``HTTP://Example.com:80/a/./b%7E`` and ``http://example.com/a/b~``) dedup
to one row, and everything downstream (scope, politeness, storage) may assume a canonical URL:

    scheme   http or https, lower-case; anything else is not crawled and gives None
    host     lower-case ASCII: IDNA hosts as punycode, IPv4 in dotted-quad form (``0x7f.1`` is
             127.0.0.1, as browsers and ``getaddrinfo`` read it), IPv6 compressed in brackets
    port     dropped when it is the scheme's default
    userinfo dropped: credentials must not end up in the job file or the exports, and a link
             like ``http://bank.com@evil.example/`` is about ``evil.example`` anyway
    path     ``/`` at least; dot segments removed; percent-encoding normalized
    query    percent-encoding normalized; ``?`` with nothing after it dropped
    fragment dropped: it never reaches the server

Percent-encoding is normalized as RFC 3986 section 6.2.2 allows: escapes of unreserved characters
are decoded, other escapes upper-cased, characters that may not appear raw are encoded as UTF-8,
and reserved characters are left exactly as they were (``%2F`` is not ``/``). One deliberate
difference from browsers: a ``%`` that does not start an escape becomes ``%25``. Leaving it raw
would let the decoding of a neighbour create a new escape (``%%341`` -> ``%41`` -> ``A``), and
canonical forms must be idempotent.

Relative links are resolved as RFC 3986 section 5.2 and browsers do it, not quite as ``urljoin``:
``a//b`` keeps its empty segment, ``;`` is not a parameter separator, and a backslash counts as ``/``.

All of this is pure: no I/O, no logging. The caches are bounded ``lru_cache``s on pure functions
(links repeat across the pages of a site), so each worker process may keep its own.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote

from crawler.errors import InvalidURL

__all__ = ["C0_AND_SPACE", "canonicalize", "host_key", "hostname", "parse_seed", "registrable_domain", "strip_params"]

try:
    import idna
except ImportError:  # pragma: no cover - idna comes with httpx2; the stdlib codec is IDNA 2003

    def _idna_to_ascii(host: str) -> str:
        return host.encode("idna").decode("ascii")

else:

    def _idna_to_ascii(host: str) -> str:
        # UTS 46 mapping is what browsers do: it folds case, full-width letters and ideographic dots.
        return idna.encode(host, uts46=True).decode("ascii")


_DEFAULT_PORT = {"http": 80, "https": 443}

# WHATWG: strip leading and trailing C0 controls and spaces, and drop every tab and newline.
C0_AND_SPACE = "".join(map(chr, range(0x21)))
_DROP_TAB_NEWLINE = str.maketrans("", "", "\t\n\r")

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Characters that may stand raw in a path (RFC 3986 pchar and "/"), and in a query (also "?").
# A part with nothing outside this set and no "%" is already canonical: the common, fast case.
_PATH_OK = r"A-Za-z0-9\-._~!$&'()*+,;=:@/"
_QUERY_OK = _PATH_OK + "?"
_PATH_NEEDS_WORK = re.compile(f"[^{_PATH_OK}]")
_QUERY_NEEDS_WORK = re.compile(f"[^{_QUERY_OK}]")
_PATH_FIX = re.compile(f"%[0-9A-Fa-f]{{2}}|%|[^{_PATH_OK}%]+")
_QUERY_FIX = re.compile(f"%[0-9A-Fa-f]{{2}}|%|[^{_QUERY_OK}%]+")

# After lower-casing and IDNA: labels of letters, digits, "-" and "_" (seen on real hosts), at most
# 63 each, at most 253 in all plus an optional trailing dot. Anything else cannot be resolved.
_HOST = re.compile(r"(?=.{1,253}\.?\Z)(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}\.?")
_DIGITS = {10: frozenset("0123456789"), 8: frozenset("01234567"), 16: frozenset("0123456789abcdef")}
_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# RFC 3986 appendix B, anchored on a scheme: one C-level match instead of urlsplit's Python loop.
_SPLIT = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?", re.DOTALL)

# Long URLs and netlocs are canonicalized but not cached, so a page of megabyte-long links cannot
# pin memory: the caches hold at most (8192 + 256) * 1 KiB and 4096 * 256 bytes of keys.
_CACHE_MAX_LEN = 1024
_NETLOC_CACHE_MAX_LEN = 256


def canonicalize(url: str, base: str | None = None, *, sort_query: bool = False) -> str | None:
    """The canonical absolute http(s) form of ``url`` resolved against ``base``, or None.

    None means "not something we crawl": another scheme (``mailto:``, ``javascript:``), no host, a
    bad port or IDNA host, or input too broken to parse. It never raises, because it runs on every
    link of hostile pages, where one exception would lose the page. ``sort_query`` also sorts the
    ``&``-separated query pairs by name, keeping repeated names in their order.
    """
    try:
        url = _clean(url)
        if base:
            split = _split_base(base) if len(base) > _CACHE_MAX_LEN else _split_base_cached(base)
            joined = _join(split, url)
            if joined is None:
                return None
            url = joined
        if len(url) > _CACHE_MAX_LEN:
            return _canonical_absolute(url, sort_query)
        return _canonical_absolute_cached(url, sort_query)
    except ValueError:  # also UnicodeError and idna.IDNAError, which subclass it
        return None


def strip_params(url: str, names: frozenset[str]) -> str:
    """``url`` (canonical) without the query parameters and ``;name=value`` path parameters whose
    name, lower-cased, is in ``names``: session ids (``jsessionid``, ``phpsessid``, ``sid``, ...)
    make one page a new URL on every visit, and a crawl that keeps them never ends. Names in
    ``names`` must be lower-case. The rest of the URL is left exactly as it was."""
    if not names or ("?" not in url and ";" not in url):
        return url
    head, mark, query = url.partition("?")
    if ";" in head:
        scheme, sep, rest = head.partition("://")
        authority, slash, path = rest.partition("/")
        kept = []
        for segment in path.split("/"):
            name, *params = segment.split(";")
            params = [p for p in params if _param_name(p) not in names]
            kept.append(";".join([name, *params]))
        head = f"{scheme}{sep}{authority}{slash}{'/'.join(kept)}"
    if query:
        pairs = [pair for pair in query.split("&") if _param_name(pair) not in names]
        query = "&".join(pairs)
    return f"{head}?{query}" if mark and query else head


def _param_name(pair: str) -> str:
    return unquote(pair.partition("=")[0]).lower()


def parse_seed(text: str) -> str:
    """The canonical form of a seed URL typed by the user; ``InvalidURL`` says what is wrong with it.

    Unlike ``canonicalize`` this explains itself, since a person will read the message.
    """
    seed = text.strip()
    match = _SPLIT.match(_clean(seed))
    if match is None or match[2] is None:
        # "example.com" or "localhost:8080": probably a missing "http://", so say so. Text before a
        # scheme (an invisible byte-order mark, a quote) is no missing "http://": suggest what follows it.
        scheme_at = re.search(r"https?://", seed, re.IGNORECASE)
        guess = (canonicalize(seed[scheme_at.start():]) if scheme_at
                 else canonicalize("http://" + seed) if "@" not in seed and "://" not in seed else None)
        hint = f" (did you mean {guess!r}?)" if guess else ""
        raise InvalidURL(f"not an absolute http(s) URL: {seed!r}{hint}")
    scheme, netloc = match[1].lower(), match[2]
    if scheme not in _DEFAULT_PORT:
        raise InvalidURL(f"unsupported scheme {scheme!r} in {seed!r} (only http and https are crawled)")
    if not netloc.rpartition("@")[2]:
        raise InvalidURL(f"no host in {seed!r}")
    canonical = canonicalize(seed)
    if canonical is None:
        try:
            authority = _canonical_netloc(scheme, netloc)
        except ValueError:
            authority = None
        if authority is None:
            raise InvalidURL(f"bad host or port in {seed!r}")
        raise InvalidURL(f"not a valid URL: {seed!r}")
    return canonical


def host_key(url: str) -> str:
    """``host[:port]`` of a canonical URL: the key for per-host politeness and for scope.

    Canonical URLs carry no userinfo and no default port, so two URLs share a key exactly when
    they go to the same server. Returns "" for a string with no authority.
    """
    match = _AUTHORITY.match(url)
    return match[1].rpartition("@")[2].lower() if match else ""


def hostname(url: str) -> str:
    """The host of a canonical URL without port; IPv6 without brackets, as ``urllib`` gives it."""
    key = host_key(url)
    if key.startswith("["):
        return key[1:].partition("]")[0]
    return key.partition(":")[0]


def registrable_domain(host: str) -> str:
    """The registrable domain (eTLD+1) of a host, from the bundled public suffix list, offline.

    ``a.b.example.co.uk`` -> ``example.co.uk``. IP addresses, ``localhost`` and hosts that are
    themselves a public suffix have no registrable part and are returned as they are (lower-case).
    The list's private section counts, so ``alice.github.io`` and ``bob.github.io`` are different
    sites, as browsers treat them. A trailing dot is ignored.
    """
    return _registrable_domain(host.lower())


@lru_cache(maxsize=4096)
def _registrable_domain(host: str) -> str:
    if not host or host.startswith("[") or ":" in host or _is_ipv4(host):
        return host
    domain = _public_suffix_list().privatesuffix(host)
    return domain if isinstance(domain, str) else host


@lru_cache(maxsize=1)
def _public_suffix_list() -> Any:
    """Loaded on first use (it parses a data file, ~25 ms), then shared."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host.rstrip("."))
    except ValueError:
        return False
    return True


def _clean(url: str) -> str:
    """What a browser does to an href before parsing it."""
    url = url.strip(C0_AND_SPACE)
    if "\t" in url or "\n" in url or "\r" in url:
        url = url.translate(_DROP_TAB_NEWLINE)
    if "\\" in url:
        # For http(s) a browser reads "\" as "/" before the query. Other schemes give None anyway.
        end = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url))
        url = url[:end].replace("\\", "/") + url[end:]
    return url


def _split_base(base: str) -> tuple[str, str, str, str] | None:
    """(scheme, "scheme://netloc", path, query) of an http(s) base, else None. Cached because
    every link of a page is resolved against the same base."""
    match = _SPLIT.match(_clean(base))
    if match is None or match[2] is None or match[1].lower() not in _DEFAULT_PORT:
        return None
    scheme = match[1].lower()
    return scheme, f"{scheme}://{match[2]}", match[3], match[4] or ""


_split_base_cached = lru_cache(maxsize=256)(_split_base)


def _join(base: tuple[str, str, str, str] | None, ref: str) -> str | None:
    """RFC 3986 section 5.2 reference resolution, up to dot segments (removed later, with the
    rest of the path normalization). Like a browser, "http:x" against an http base is relative."""
    match = _SCHEME.match(ref)
    if match is not None:
        rest = ref[match.end() :]
        if base is None or match[1].lower() != base[0] or rest.startswith("//"):
            return ref
        ref = rest
    if base is None:
        return None
    scheme, prefix, path, query = base
    if ref.startswith("//"):
        return f"{scheme}:{ref}"
    if ref.startswith("/"):
        return prefix + ref
    if ref.startswith("?"):
        return prefix + path + ref
    if not ref or ref.startswith("#"):
        return f"{prefix}{path}?{query}" if query else prefix + path
    return prefix + path[: path.rfind("/") + 1] + ref if path else f"{prefix}/{ref}"


def _canonical_absolute(url: str, sort_query: bool) -> str | None:
    match = _SPLIT.match(url)
    if match is None:
        return None
    scheme, netloc, path, query = match.group(1, 2, 3, 4)
    scheme = scheme.lower()
    if netloc is None or scheme not in _DEFAULT_PORT:
        return None
    if len(netloc) > _NETLOC_CACHE_MAX_LEN:
        authority = _canonical_netloc(scheme, netloc)
    else:
        authority = _canonical_netloc_cached(scheme, netloc)
    if authority is None:
        return None
    if _PATH_NEEDS_WORK.search(path):
        path = _PATH_FIX.sub(_fix_escape, path)
    # Dot segments are removed after decoding, so "%2E%2E" counts as ".." the first time round.
    if "/." in path:
        path = _remove_dot_segments(path)
    if query is None:
        query = ""
    elif _QUERY_NEEDS_WORK.search(query):
        query = _QUERY_FIX.sub(_fix_escape, query)
    if sort_query and query:
        query = "&".join(sorted((pair for pair in query.split("&") if pair), key=_query_name))
    return f"{scheme}://{authority}{path or '/'}{'?' if query else ''}{query}"


_canonical_absolute_cached = lru_cache(maxsize=8192)(_canonical_absolute)


def _canonical_netloc(scheme: str, netloc: str) -> str | None:
    """``host[:port]`` in canonical form, or None if the host or port is not valid."""
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        inside, bracket, port = hostport[1:].partition("]")
        if not bracket or (port and port[0] != ":") or "%" in inside:  # no zone ids
            return None
        host: str | None = f"[{ipaddress.IPv6Address(inside).compressed}]"
        port = port[1:]
    else:
        name, _, port = hostport.partition(":")
        host = _canonical_host(name)
    if host is None:
        return None
    if not port:  # "host:" means the default port, as in browsers
        return host
    if len(port) > 5 or not (port.isascii() and port.isdigit()):
        return None
    number = int(port)
    if number > 65535:
        return None
    return host if number == _DEFAULT_PORT[scheme] else f"{host}:{number}"


_canonical_netloc_cached = lru_cache(maxsize=4096)(_canonical_netloc)


def _canonical_host(host: str) -> str | None:
    if "%" in host:
        host = unquote(host, errors="strict")
    if not host.isascii():
        host = _idna_to_ascii(host)
    host = host.lower()
    if not _HOST.fullmatch(host):
        return None
    # A host whose last label is a number is an IPv4 address, in any of the forms inet_aton reads.
    last = host.rstrip(".").rpartition(".")[2]
    if last[0] in _DIGITS[10] and (last.isdigit() or (last.startswith("0x") and _DIGITS[16].issuperset(last[2:]))):
        return _ipv4(host)
    return host


def _ipv4(host: str) -> str | None:
    """WHATWG IPv4 parsing: 1-4 decimal, octal (0...) or hex (0x...) parts, the last filling the rest."""
    parts = host.removesuffix(".").split(".")
    if len(parts) > 4:
        return None
    numbers = []
    for part in parts:
        if part.startswith("0x"):
            digits, radix = part[2:], 16
        elif len(part) > 1 and part[0] == "0":
            digits, radix = part[1:], 8
        else:
            digits, radix = part, 10
        if not _DIGITS[radix].issuperset(digits):
            return None
        numbers.append(int(digits, radix) if digits else 0)
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last + sum(n << (8 * (3 - i)) for i, n in enumerate(head))
    return str(ipaddress.IPv4Address(value))


def _fix_escape(match: re.Match[str]) -> str:
    text = match[0]
    if text[0] != "%":
        return quote(text, safe="")  # UTF-8; a lone surrogate raises, and the URL is dropped
    if len(text) == 1:
        return "%25"
    char = chr(int(text[1:], 16))
    return char if char in _UNRESERVED else text.upper()


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4 for a path that starts with "/"; ".." never climbs above the root."""
    segments = path.split("/")
    output: list[str] = []
    for segment in segments[1:]:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    if segments[-1] in (".", ".."):
        output.append("")
    return "/" + "/".join(output)


def _query_name(pair: str) -> str:
    return pair.partition("=")[0]


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a canonical URL."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"
