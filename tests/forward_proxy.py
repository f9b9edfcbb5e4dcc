"""A forward HTTP proxy on loopback that counts what it carries, for the proxy tests.

    with ForwardProxy("p1") as proxy:      # ThreadingHTTPServer on 127.0.0.1, port 0
        proxy.url                           # http://127.0.0.1:PORT
        proxy.carried                       # requests it forwarded
        proxy.die()                         # stops listening and drops every connection it holds

It takes absolute-form requests (``GET http://host:port/path``), forwards each in origin form with
``Via: 1.1 NAME`` (so the origin server can tell a proxied request from a direct one) and relays
the answer byte for byte (a gzip body stays compressed). ``die_after`` N: it dies on its own once
it has carried N requests, mid-crawl. ``user``/``password``: it answers 407 without them.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization", "transfer-encoding", "te",
                  "upgrade", "content-length"})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.proxy.lock:
            self.server.proxy.connections.append(self.connection)

    def do_GET(self) -> None:
        proxy = self.server.proxy
        if proxy.dead:
            self.close_connection = True
            return
        if proxy.credentials is not None and self.headers.get("Proxy-Authorization") != proxy.credentials:
            proxy.refused += 1
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="proxy"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        target = urlsplit(self.path)
        host = target.hostname or ""
        upstream = http.client.HTTPConnection(proxy.names.get(host, host), target.port or 80, timeout=10)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP and k.lower() != "host"}
        headers["Host"] = target.netloc
        headers["Via"] = f"1.1 {proxy.name}"
        headers["Connection"] = "close"
        upstream.request("GET", (target.path or "/") + (f"?{target.query}" if target.query else ""), headers=headers)
        answer = upstream.getresponse()
        body = answer.read()
        upstream.close()
        with proxy.lock:
            proxy.carried += 1
            dies = proxy.die_after and proxy.carried >= proxy.die_after
        self.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in _HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if dies:
            threading.Thread(target=proxy.die, daemon=True).start()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True
    block_on_close = False
    proxy: ForwardProxy

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class ForwardProxy:
    """See the module docstring."""

    def __init__(self, name: str = "test-proxy", *, die_after: int = 0, user: str = "", password: str = "",
                 host: str = "127.0.0.1", names: dict[str, str] | None = None) -> None:
        self.name = name
        self.names = names or {}   # test names it resolves itself (no DNS), as the crawl's StubResolver
        self.host = host
        self.die_after = die_after
        self.credentials = ("Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()) if user else None
        self.carried = 0
        self.refused = 0
        self.dead = False
        self.lock = threading.Lock()
        self.connections: list[socket.socket] = []
        self._server: _Server | None = None

    def __enter__(self) -> ForwardProxy:
        server = _Server((self.host, 0), _Handler)
        server.proxy = self
        self._server = server
        self.port = int(server.server_address[1])
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.die()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def die(self) -> None:
        """Stop listening (a new connection is refused) and drop every connection held."""
        self.dead = True
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self.lock:
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed): a proxy that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Socks5Proxy:
    """A SOCKS5 proxy on loopback (no authentication, CONNECT only) that counts the connections it
    carried: ``with Socks5Proxy() as proxy: proxy.url`` is ``socks5://127.0.0.1:PORT``."""

    def __init__(self) -> None:
        self.carried = 0
        self.lock = threading.Lock()
        self._server: socketserver.ThreadingTCPServer | None = None

    def __enter__(self) -> Socks5Proxy:
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                client: socket.socket = self.request
                reader = client.makefile("rb")
                _version, methods = reader.read(2)
                reader.read(methods)
                client.sendall(b"\x05\x00")                      # no authentication
                _version, _command, _reserved, kind = reader.read(4)
                # a name (resolved here: loopback only) or an IPv4 address
                host = reader.read(reader.read(1)[0]).decode() if kind == 3 else socket.inet_ntoa(reader.read(4))
                port = int.from_bytes(reader.read(2), "big")
                with socket.create_connection((host, port), timeout=10) as upstream:
                    with proxy.lock:
                        proxy.carried += 1
                    client.sendall(b"\x05\x00\x00\x01" + bytes(4) + bytes(2))
                    pump = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
                    pump.start()
                    _pump(client, upstream)
                    pump.join(10)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self.port = int(server.server_address[1])
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        return f"socks5://127.0.0.1:{self.port}"


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy bytes until ``source`` ends, then end ``sink``'s writing side."""
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
