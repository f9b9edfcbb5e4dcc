"""The SSRF guard's test stand-ins: public-looking names resolved to loopback addresses without DNS,
and a policy that forbids 127.0.0.2 in place of a private range, so that no packet leaves 127.0.0.0/8
even if the guard were broken."""

from __future__ import annotations

import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult

from crawler.addresses import IPAddress

NAMES = {"public.test": "127.0.0.1", "internal.test": "127.0.0.2"}
FORBIDDEN = ipaddress.ip_address("127.0.0.2")


def forbidden(address: IPAddress) -> bool:
    """The test's stand-in for "private": 127.0.0.2 only."""
    return address == FORBIDDEN


class StubResolver(AbstractResolver):
    """Resolves the names in NAMES to their loopback addresses, nothing else, without DNS."""

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        if host not in NAMES:   # as getaddrinfo says it
            raise socket.gaierror(socket.EAI_NONAME, f"no such test name: {host}")
        return [ResolveResult(hostname=host, host=NAMES[host], port=port, family=socket.AF_INET, proto=0,
                              flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        pass
