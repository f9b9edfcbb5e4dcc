"""The suite's own guard (conftest.loopback_only): nothing in this process leaves 127.0.0.0/8."""

from __future__ import annotations

import socket

import pytest


@pytest.mark.parametrize("host", ["a.test", "example.com", "10.0.0.1", "192.168.1.1", "2001:db8::1"])
def test_names_and_addresses_beyond_loopback_are_refused(host: str) -> None:
    with pytest.raises(OSError, match="loopback only"):
        socket.getaddrinfo(host, 80)
    with pytest.raises(OSError, match="loopback only"), socket.socket() as sock:
        sock.connect((host, 80))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.200.7", "localhost", "::1"])
def test_loopback_resolves(host: str) -> None:
    assert socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)
