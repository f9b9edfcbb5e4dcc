"""``crawler export --format mirror``: crawled from a loopback server, exported, read back from the folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from site_server import Behaviour, Hit, Reply, Site, html, redirect, reply

# Paths a hostile server links to: traversal, encoded slashes and dots, Windows device names, a
# query, two cases of one name, a name too long for any file system.
HOSTILE = ["/..%2f..%2fetc/passwd", "/%2e%2e/x", "/" + "a" * 3000, "/CON", "/aux.txt", "/a?b=1", "/a?b=2",
           "/Page", "/page", "/dir%5c..%5c..%5cwin", "/nul%00byte", "/trail.", "/x/", "/x"]


class AnyPath(dict[str, Any]):
    """Routes that answer every path: a page that names the path it was asked for."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key) or _Echo()


class _Echo(Behaviour):
    def respond(self, site: Site, hit: Hit) -> Reply:
        kind = "text/plain" if hit.path.endswith(".txt") else "text/html"
        return reply(200, f"<p>served {hit.path}</p>", kind)


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}


def test_hostile_names_land_inside_the_folder_each_in_its_own_file(tmp_path: Path, cli: Any, site: Site) -> None:
    site.routes = AnyPath({"/": html("Home", *HOSTILE)})
    crawled = cli.in_process("crawl", site.url("/"), "--db", "job.db", env={"CRAWLER_TRAP_MAX_URL_LENGTH": "5000"})
    assert crawled.returncode == 0, crawled.stderr
    (tmp_path / "outside").mkdir()
    done = cli.in_process("export", "--db", "job.db", "--format", "mirror", "--out", "mirror")
    assert done.returncode == 0, done.stderr
    files = _files(tmp_path / "mirror")
    served = sorted(text.removeprefix("<p>served ").removesuffix("</p>") for text in files.values()
                    if text.startswith("<p>served "))
    asked = sorted(h.path for h in site.hits if h.path not in ("/", "/robots.txt"))
    assert served == asked   # every page its own file, with its own content
    assert len(asked) == len(HOSTILE) - 1   # /%2e%2e/x is /x, canonicalized before it is fetched
    assert f"{len(files)} files written to mirror" in done.stderr
    assert not list((tmp_path / "outside").iterdir())
    assert sorted(os.listdir(tmp_path)) == ["job.db", "mirror", "outside"]   # no ../etc/passwd beside it
    for name in files:
        assert len(name.encode()) <= 240
        for part in name.split("/"):
            assert part not in ("", ".", "..")
            assert "\\" not in part
            assert not part.endswith((".", " "))
            assert part.split(".")[0].upper() not in ("CON", "AUX", "NUL", "PRN")
            assert not set('<>:"|?*\0') & set(part)
    assert len({name.lower() for name in files}) == len(files)   # also on a file system that folds case


def test_links_between_archived_pages_are_relative_and_others_stay_absolute(tmp_path: Path, cli: Any,
                                                                          site: Site) -> None:
    site.routes = {
        "/": html("Home", "/docs/", "/docs/intro", "/gone", "/old", "http://127.0.0.1:9/elsewhere", "/docs/intro?sid=s1",
                  extra='<img srcset="/logo.png 1x, /missing.png 2x"><a href="/docs/intro#part">part</a>'),
        "/docs/": html("Docs", "../", "intro"),
        "/docs/intro": html("Intro", "/", extra='<div style="background: url(/logo.png)">x</div>'),
        "/old": redirect("/docs/intro"),
        "/logo.png": reply(200, b"\x89PNG fake", "image/png"),
        "/gone": reply(404, "gone", "text/html"),
    }
    crawled = cli.in_process("crawl", site.url("/"), site.url("/logo.png"), "--db", "job.db")
    assert crawled.returncode == 0, crawled.stderr
    done = cli.in_process("export", "--db", "job.db", "--format", "mirror", "--out", "out/")
    assert done.returncode == 0, done.stderr
    host = f"127.0.0.1+{site.port}"
    home = (tmp_path / "out" / host / "index.html").read_text()
    assert 'href="docs/index.html"' in home
    assert 'href="docs/intro.html"' in home
    assert 'href="docs/intro.html#part"' in home
    assert f'href="{site.url("/gone")}"' in home
    assert 'href="http://127.0.0.1:9/elsewhere"' in home
    assert f'srcset="logo.png 1x, {site.url("/missing.png")} 2x"' in home
    assert 'href="docs/intro.html">/old<' in home   # a redirect opens its target's copy
    assert 'href="docs/intro.html">/docs/intro?sid=s1<' in home   # the crawl dropped the session parameter
    docs = (tmp_path / "out" / host / "docs" / "index.html").read_text()
    assert 'href="../index.html"' in docs
    assert 'href="intro.html"' in docs
    intro = (tmp_path / "out" / host / "docs" / "intro.html").read_text()
    assert 'url(&quot;../logo.png&quot;)' in intro
    assert (tmp_path / "out" / host / "logo.png").read_bytes() == b"\x89PNG fake"


def test_an_export_after_a_recrawl_replaces_the_folder_and_a_symlink_in_it_is_not_followed(tmp_path: Path, cli: Any,
                                                                                 site: Site) -> None:
    site.routes = {"/": html("Home", "/a"), "/a": html("A")}
    assert cli.in_process("crawl", site.url("/"), "--db", "job.db").returncode == 0
    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / "mirror").mkdir()
    os.symlink(victim, tmp_path / "mirror" / f"127.0.0.1+{site.port}")
    (tmp_path / "mirror" / "stale.html").write_text("old")
    done = cli.in_process("export", "--db", "job.db", "--format", "mirror", "--out", "mirror")
    assert done.returncode == 0, done.stderr
    assert not list(victim.iterdir())
    host = f"127.0.0.1+{site.port}"
    assert sorted(_files(tmp_path / "mirror")) == [f"{host}/a.html", f"{host}/index.html"]
    site.routes["/a"] = html("A, second edition")
    assert cli.in_process("crawl", site.url("/"), "--db", "job.db", "--recrawl").returncode == 0
    assert cli.in_process("export", "--db", "job.db", "--format", "mirror", "--out", "mirror").returncode == 0
    assert "A, second edition" in (tmp_path / "mirror" / host / "a.html").read_text()


def test_mirror_needs_a_folder(cli: Any, site: Site) -> None:
    site.routes = {"/": html("Home")}
    assert cli.in_process("crawl", site.url("/"), "--db", "job.db").returncode == 0
    assert "--out DIR" in cli.fails(2, "export", "--db", "job.db", "--format", "mirror")


def test_a_job_crawled_without_bodies_cannot_be_mirrored(cli: Any, site: Site) -> None:
    site.routes = {"/": html("Home")}
    assert cli.in_process("crawl", site.url("/"), "--db", "job.db", "--no-bodies").returncode == 0
    assert "--no-bodies" in cli.fails(2, "export", "--db", "job.db", "--format", "mirror", "--out", "mirror")


def test_a_folder_that_cannot_be_written_is_one_line_and_the_old_mirror_stays(tmp_path: Path, cli: Any,
                                                                             site: Site) -> None:
    site.routes = {"/": html("Home")}
    assert cli.in_process("crawl", site.url("/"), "--db", "job.db").returncode == 0
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mirror").mkdir()
    (tmp_path / "full" / "mirror" / "old.html").write_text("old")
    with open("/dev/full", "wb") as full, pytest.MonkeyPatch.context() as patch:
        real_open = os.open
        # every file of the mirror is created on a disk that is full
        patch.setattr(os, "open", lambda path, flags, *a, **k: os.dup(full.fileno()) if flags & os.O_CREAT
                      else real_open(path, flags, *a, **k))
        line = cli.fails(2, "export", "--db", "job.db", "--format", "mirror", "--out", "full/mirror")
    assert "cannot write the mirror to full/mirror: No space left on device" in line
    assert sorted(os.listdir(tmp_path / "full")) == ["mirror"]
    assert (tmp_path / "full" / "mirror" / "old.html").read_text() == "old"


def test_a_file_stored_in_pieces_is_mirrored_byte_for_byte(tmp_path: Path, cli: Any, site: Site) -> None:
    # Over 1 MiB a body that is no page streams into the job file in pieces (storage.bodies).
    pdf = os.urandom(3 * 1024 * 1024 + 17)
    site.routes.update({"/": html("Home", "/doc.pdf"), "/doc.pdf": reply(body=pdf, content_type="application/pdf")})
    assert cli.in_process("crawl", site.url("/"), "--db", "job.db").returncode == 0
    done = cli.in_process("export", "--db", "job.db", "--format", "mirror", "--out", "mirror")
    assert done.returncode == 0, done.stderr
    [copy] = (tmp_path / "mirror").rglob("doc.pdf")
    assert copy.read_bytes() == pdf
