"""A site built by JavaScript, for the rendering tests (``tests/test_render*.py``) and the bench.

Every page is an empty shell (``<div id="app"></div>``) and a script that sets the title, fetches
its content from the same origin with ``fetch()`` and adds its links; the home page also calls
``fetch()`` on a private stand-in address (``private``: a server on 127.0.0.2) that the crawler must
refuse. ``/static`` is a plain HTML page (with a harmless script) that ``--render auto`` leaves
alone; ``/busy`` polls forever, so it never settles.
"""

from __future__ import annotations

import json

from site_server import Reply, Route, html, reply


def shell(script: str) -> Reply:
    """An empty application root and ``script``."""
    return reply(200, f'<!doctype html><html><head><title>Loading</title></head><body><div id="app"></div>'
                      f"<script>{script}</script></body></html>", "text/html; charset=utf-8")


def page_script(number: int, private: str | None = None) -> str:
    """Title set by script, content and links fetched from the same origin."""
    leak = f"fetch({json.dumps(private + '/secret')}).catch(() => null);" if private else ""
    return (f"document.title = 'Page {number} (by script)'; {leak}"
            f"fetch('/api/{number}.json').then(r => r.json()).then(data => {{"
            " const app = document.getElementById('app');"
            " app.innerHTML = '<h1>' + data.heading + '</h1>' + data.links.map("
            "   href => '<a href=\"' + href + '\">' + href + '</a>').join(' ');"
            "});")


def js_site(pages: int, private: str | None = None) -> dict[str, Route]:
    """Routes of a site of ``pages`` script-built pages: / (page 0) links to /p/1, each /p/N to the
    next two; ``private`` is the origin the home page's script tries to reach."""
    routes: dict[str, Route] = {"/robots.txt": reply(200, "User-agent: *\nAllow: /\n", "text/plain")}
    for number in range(pages):
        path = "/" if number == 0 else f"/p/{number}"
        links = [f"/p/{n}" for n in (number + 1, number * 2 + 1) if 0 < n < pages]
        routes[path] = shell(page_script(number, private if number == 0 else None))
        routes[f"/api/{number}.json"] = reply(200, json.dumps({"heading": f"Heading {number}", "links": links}),
                                              "application/json")
    return routes


STATIC = html("A static page", "/", extra="<p>" + "plain words for reading " * 40 + "</p>"
              "<script>console.log('analytics')</script>")
BUSY = shell("document.title = 'Busy'; setInterval(() => fetch('/api/0.json'), 100);")
