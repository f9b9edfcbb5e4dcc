"""The SSRF guard: which network addresses a crawl may connect to. Pure policy, no I/O.

A public web page can link to, or redirect to, ``http://10.0.0.1/admin`` or a name that resolves
to ``169.254.169.254``: a crawler that follows it reaches what only this machine's network can
reach. So by default a crawl never connects to a loopback, private, link-local, multicast,
reserved or unspecified address (nor an IPv4-mapped or 6to4/NAT64 form of one), unless

- the host is one the seeds themselves name (``crawler crawl http://127.0.0.1:8000/`` crawls that
  host, and ``crawler add`` widens the set), or
- ``allow_private`` is set (``--allow-private``).

The check is made on the address actually connected to: the transport asks ``AddressPolicy`` about
every address a name resolves to and connects only to one it allowed (``transport.GuardedResolver``),
so a name that resolves to 10.0.0.1 is refused as surely as the literal. IP literals, which need no
resolving, are checked by the fetcher before each request and each redirect hop.

``forbidden`` is the seam tests use: every test runs on 127.0.0.0/8, so a test forbids a loopback
address such as 127.0.0.2 in place of a private range, and no packet ever leaves the machine.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = ["AddressPolicy", "is_special", "literal_address"]


def is_special(address: IPAddress) -> bool:
    """True for an address a public crawl must not reach: loopback, private, link-local, multicast,
    reserved, unspecified, shared (100.64/10), or an IPv6 form that embeds such an IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:   # ::ffff:a.b.c.d reaches a.b.c.d, and only that
            return is_special(address.ipv4_mapped)
        embedded = address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and is_special(embedded):
            return True
    return (address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
            or address.is_reserved or address.is_unspecified or not address.is_global)


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@functools.lru_cache(maxsize=4096)   # asked for every link found: a page's links share a few hosts
def literal_address(host: str) -> IPAddress | None:
    """The address a host name is, when it is an IP literal (``[::1]`` or ``::1``), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@dataclass(slots=True)
class AddressPolicy:
    """Which (host, address) pairs a crawl may connect to.

    ``seed_hosts`` are host names without port, lower-case, as ``urls.hostname`` gives them; the
    scheduler widens them when seeds join a running job. ``forbidden`` decides which addresses need
    a seed's say-so (``is_special`` unless a test passes another rule)."""

    seed_hosts: frozenset[str] = frozenset()
    allow_private: bool = False
    forbidden: Callable[[IPAddress], bool] = field(default=is_special)

    def permits(self, host: str, address: str | IPAddress) -> bool:
        """May we connect to ``address``, which ``host`` resolved to (or is)?"""
        if self.allow_private or host.strip("[]").removesuffix(".").lower() in self.seed_hosts:
            return True
        try:
            ip = address if not isinstance(address, str) else ipaddress.ip_address(address.partition("%")[0])
        except ValueError:
            return False   # not an address at all: nothing we would knowingly connect to
        return not self.forbidden(ip)

    def allowed(self, host: str, addresses: Iterable[str]) -> list[str]:
        """The addresses of ``host`` that may be connected to, in their order."""
        return [a for a in addresses if self.permits(host, a)]

    def refusal(self, host: str) -> str | None:
        """For an IP-literal ``host``: why it may not be connected to, or None (names: None too,
        they are checked when resolved)."""
        ip = literal_address(host)
        if ip is None or self.permits(host, ip):
            return None
        return f"{ip} is a private, loopback or reserved address (--allow-private permits it)"
