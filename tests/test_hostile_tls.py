"""TLS, said plainly: a local HTTPS server with a self-signed certificate the test makes (openssl).

A certificate the crawler does not trust is error ``tls`` with the verifier's reason (not
``connect``); robots.txt that cannot be fetched for that reason says so underneath;
``--ca-bundle FILE`` trusts the certificate, ``--insecure`` skips verification and says so.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from site_server import Site, _Handler, _Server, html

from crawler.config import Settings
from crawler.errors import ConfigError, TlsFailed
from crawler.fetcher import Fetcher

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(cert.pem, key.pem): self-signed, for 127.0.0.1, valid for a day."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


class TlsSite(Site):
    """``Site`` over HTTPS with the given certificate."""

    def __init__(self, cert: Path, key: Path, routes: dict[str, Any]) -> None:
        super().__init__(routes)
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert, key)

    def start(self) -> Site:
        import threading
        server = _Server(("127.0.0.1", 0), _Handler)
        server.socket = self._context.wrap_socket(server.socket, server_side=True)
        server.site = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@pytest.fixture
def tls_site(certificate: tuple[Path, Path]) -> Iterator[TlsSite]:
    with TlsSite(*certificate, {"/": html("Secure", "/a"), "/a": html("A")}) as site:
        yield site  # type: ignore[misc]


def fetch(url: str, transport: str = "aiohttp", **changes: Any) -> Any:
    async def go() -> Any:
        async with Fetcher(replace(Settings(), transport=transport, timeout=5.0, **changes).validated()) as f:
            return await f.fetch(url)
    return asyncio.run(go())


@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
def test_an_untrusted_certificate_is_a_tls_error_with_the_verifiers_reason(tls_site: TlsSite, transport: str) -> None:
    with pytest.raises(TlsFailed, match="certificate verify failed") as caught:
        fetch(tls_site.url("/"), transport)
    assert caught.value.code == "tls"


@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
def test_ca_bundle_trusts_it_and_insecure_skips_verification(tls_site: TlsSite, certificate: tuple[Path, Path],
                                                             transport: str) -> None:
    assert fetch(tls_site.url("/"), transport, ca_bundle=str(certificate[0])).status == 200
    assert fetch(tls_site.url("/"), transport, insecure=True).status == 200


def test_a_missing_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ca_bundle"):
        replace(Settings(), ca_bundle=str(tmp_path / "none.pem")).validated()


def test_the_cli_says_why_and_insecure_says_so(tls_site: TlsSite, certificate: tuple[Path, Path], cli: Any,
                                               tmp_path: Path) -> None:
    db = tmp_path / "job.db"
    done = cli.in_process("crawl", tls_site.url("/"), "--db", db, "--timeout", "5", "--retries", "0")
    assert done.returncode == 4, done.stderr   # its only seed could not be fetched
    assert "no seed could be fetched (1 tls)" in done.stderr
    (record,) = cli.export(db, "--fields", "url,error,error_message")
    assert record["error"] == "tls"   # robots.txt's, which is the site's
    assert "certificate verify failed" in record["error_message"]
    trusted = cli.in_process("crawl", tls_site.url("/"), "--db", tmp_path / "ca.db", "--ca-bundle", certificate[0], "--no-robots")
    assert trusted.returncode == 0, trusted.stderr
    assert [r["status"] for r in cli.export(tmp_path / "ca.db")] == [200, 200]
    insecure = cli.in_process("crawl", tls_site.url("/"), "--db", tmp_path / "in.db", "--insecure", "--no-robots")
    assert insecure.returncode == 0, insecure.stderr
    assert "certificates were not verified (--insecure)" in insecure.stdout
    assert "ca_bundle" in cli.fails(2, "crawl", tls_site.url("/"), "--db", tmp_path / "x.db", "--ca-bundle",
                                    tmp_path / "missing.pem")
