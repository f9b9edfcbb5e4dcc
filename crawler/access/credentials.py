"""``--auth USER``: the password and how it is sent.

The password never comes from the command line (a shell's history keeps it): it is read from the
environment variable ``--auth-password-env VAR`` names, or asked for on the terminal (``getpass``,
which does not echo it). Without either, the crawl stops before it starts: one line, exit code 2.
It lives in ``Settings.auth_password``, which no config file, variable or flag sets and no job
file keeps; worker processes get it with the rest of the settings, over their socket.

``basic`` (the default) sends ``Authorization: Basic ...`` with every request to an origin that
gets the credentials, without waiting for a 401 (one request per page). ``digest`` uses
``httpx2.DigestAuth``: httpx's auth flow answers the server's 401 challenge and keeps the nonce
for the next requests, at the client level, so it works the same on either transport.
"""

from __future__ import annotations

import base64
import getpass
import os
import sys
from dataclasses import replace

import httpx2

from crawler.access.headers import AccessError
from crawler.config import Settings

SCHEMES = ("basic", "digest")


def with_password(settings: Settings, *, prompt: bool | None = None) -> Settings:
    """``settings`` with the password of ``--auth`` read (from the variable, else the terminal);
    unchanged without ``--auth``. ``prompt`` overrides whether standard input is a terminal."""
    if not settings.auth:
        if settings.auth_password_env:
            raise AccessError("--auth-password-env needs --auth USER")
        return settings
    if settings.auth_password_env:
        password = os.environ.get(settings.auth_password_env)
        if password is None:
            raise AccessError(f"--auth-password-env {settings.auth_password_env}: no such environment variable")
        return replace(settings, auth_password=password)
    if not (sys.stdin.isatty() if prompt is None else prompt):
        raise AccessError("--auth needs a password: give --auth-password-env VAR (no terminal to ask on)")
    try:
        password = getpass.getpass(f"password for {settings.auth}: ")
    except (EOFError, KeyboardInterrupt):
        raise AccessError("--auth: no password given") from None
    return replace(settings, auth_password=password)


def check_scheme(settings: Settings) -> None:
    if settings.auth_scheme not in SCHEMES:
        raise AccessError(f"--auth-scheme must be basic or digest, got {settings.auth_scheme!r}")
    if settings.auth and ":" in settings.auth and settings.auth_scheme == "basic":
        raise AccessError("--auth USER: a Basic user name cannot hold a colon")


def basic_header(user: str, password: str) -> str:
    """The ``Authorization`` value of HTTP Basic (RFC 7617: UTF-8)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def digest(user: str, password: str) -> httpx2.Auth:
    """An ``httpx2.DigestAuth`` for one origin: it keeps that origin's last challenge."""
    return httpx2.DigestAuth(user, password)
