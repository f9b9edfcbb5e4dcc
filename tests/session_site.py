"""A site behind a login, on loopback, for the session tests (``site_server.Site`` answers GET with
fixed routes; this one has state: a form login with a CSRF token, sessions that expire, cookies).

    with LoginSite(password="s3cret", pages=6, expire_after=0) as site:
        site.url("/home")     # http://127.0.0.1:PORT/home
        site.logins           # successful POSTs to /login
        site.hits["/logout"]  # requests seen per path

- ``GET /login``: a form (``form#login``) with a hidden ``csrf`` input, a new token each time.
- ``POST /login``: user ``alice``, the password and a token it handed out: sets ``sid`` (a new
  random value each login; ``cookie_values`` lists them) and redirects (303) to ``/home``;
  else the form again, 200, with "wrong".
- ``/home`` links ``/p1`` ... ``/pN``, ``/logout`` and ``/item/1/delete``; each ``/pK`` links the next.
  A page asked for without a live session redirects (302) to ``/login?next=...``.
- ``expire_after`` N > 0: a session serves N pages, then it has expired.
- ``/logout`` and ``/item/1/delete`` end the session.
- ``/open`` (no login needed) sets ``visitor`` (``open_cookie``) and links ``/members``, which
  answers 403 without that cookie.
"""

from __future__ import annotations

import secrets
import threading
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class LoginSite:
    def __init__(self, password: str, pages: int = 5, expire_after: int = 0) -> None:
        self.password = password
        self.pages = pages
        self.expire_after = expire_after
        self.logins = 0
        self.hits: Counter[str] = Counter()
        self.cookie_values: list[str] = []
        self.open_cookie = "visitor-" + secrets.token_hex(8)
        self.lock = threading.Lock()
        self._tokens: set[str] = set()
        self._sessions: dict[str, int] = {}   # sid -> pages it may still serve (-1: no limit)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.site = self   # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def __enter__(self) -> LoginSite:
        self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- state, under the lock --------------------------------------------------------------------

    def token(self) -> str:
        token = secrets.token_hex(8)
        with self.lock:
            self._tokens.add(token)
        return token

    def log_in(self, form: dict[str, str]) -> str | None:
        with self.lock:
            if form.get("user") != "alice" or form.get("password") != self.password or \
                    form.get("csrf") not in self._tokens:
                return None
            self._tokens.discard(form["csrf"])
            sid = "sid-" + secrets.token_hex(12)
            self._sessions[sid] = self.expire_after or -1
            self.cookie_values.append(sid)
            self.logins += 1
            return sid

    def serve(self, sid: str | None) -> bool:
        """Whether the session ``sid`` may have a page (and count it)."""
        with self.lock:
            left = self._sessions.get(sid or "")
            if left is None or left == 0:
                return False
            if left > 0:
                self._sessions[sid or ""] = left - 1
            return True

    def end(self, sid: str | None) -> None:
        with self.lock:
            self._sessions.pop(sid or "", None)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128   # as site_server's: a crawl opens many connections at once


def _page(title: str, *links: str, extra: str = "") -> bytes:
    anchors = "".join(f'<a href="{href}">{href}</a> ' for href in links)
    return f"<!doctype html><html><head><title>{title}</title></head><body>{anchors}{extra}</body></html>".encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    @property
    def site(self) -> LoginSite:
        return self.server.site  # type: ignore[attr-defined,no-any-return]

    def _cookie(self, name: str) -> str | None:
        for pair in (self.headers.get("Cookie") or "").split(";"):
            key, _, value = pair.strip().partition("=")
            if key == name:
                return value
        return None

    def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _form(self) -> bytes:
        return _page("Log in", extra=f'<form id="login" method="post" action="/login"><input name="user">'
                                     f'<input type="password" name="password"><input type="hidden" name="csrf" '
                                     f'value="{self.site.token()}"><button type="submit">Go</button></form>')

    def do_GET(self) -> None:
        site = self.site
        path = self.path
        with site.lock:
            site.hits[path.split("?")[0]] += 1
        sid = self._cookie("sid")
        if path.startswith("/login"):
            self._send(200, self._form())
        elif path == "/open":
            self._send(200, _page("Open", "/members"), Set_Cookie=f"visitor={site.open_cookie}; Path=/; HttpOnly")
        elif path == "/members":
            ok = self._cookie("visitor") == site.open_cookie
            self._send(200 if ok else 403, _page("Members" if ok else "Forbidden"))
        elif path in ("/logout", "/item/1/delete"):
            site.end(sid)
            self._send(200, _page("Bye"))
        elif path == "/robots.txt":
            self._send(404)
        elif not site.serve(sid):
            self._send(302, b"", Location="/login?next=" + urllib.parse.quote(path))
        elif path == "/home":
            self._send(200, _page("Home", *(f"/p{n}" for n in range(1, site.pages + 1)), "/logout", "/item/1/delete",
                                  extra='<a class="me" href="/p1">alice</a>'))
        elif path.startswith("/p") and path[2:].isdigit():
            n = int(path[2:])
            self._send(200, _page(f"Page {n}", *([f"/p{n + 1}"] if n < site.pages else [])))
        else:
            self._send(404, _page("Not found"))

    def do_POST(self) -> None:
        site = self.site
        with site.lock:
            site.hits["POST " + self.path] += 1
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        sid = site.log_in(form) if self.path == "/login" else None
        if sid is None:
            self._send(200, self._form().replace(b"<body>", b"<body><p>wrong</p>"))
        else:
            self._send(303, b"", Location="/home", Set_Cookie=f"sid={sid}; Path=/; HttpOnly")

    def log_message(self, format: str, *args: object) -> None:
        pass
