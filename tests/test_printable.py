"""What a server sent reaches the terminal with its control characters escaped: the pure function,
and the commands that print network text (explain, stats --hosts, the one-line errors)."""

from __future__ import annotations

import sqlite3
import unicodedata

from conftest import CLI
from hypothesis import given
from hypothesis import strategies as st
from job_files import hosts_job
from site_server import Site, html, redirect

from crawler.printable import printable

# Set the window title, then ring; clear the screen; a C1 CSI; a right-to-left override.
HOSTILE = "javascript:\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eexe.txt"
ESCAPED = "javascript:\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202eexe.txt"


def test_control_characters_are_escaped_and_nothing_else_changes() -> None:
    assert printable(HOSTILE) == ESCAPED
    assert printable("line\nbreak\r\tand DEL\x7f") == "line\\x0abreak\\x0d\\x09and DEL\\x7f"
    assert printable("café 東京 🙂 [bold] \\x1b as text") == "café 東京 🙂 [bold] \\x1b as text"


@given(st.text())
def test_what_is_printed_holds_no_control_character_and_keeps_every_other_one(text: str) -> None:
    shown = printable(text)
    assert not any(unicodedata.category(c) == "Cc" for c in shown)
    assert "\u202e" not in shown
    kept = [c for c in text if unicodedata.category(c) != "Cc" and c not in "\u061c\u200e\u200f\u202a\u202b\u202c"
            "\u202d\u202e\u2066\u2067\u2068\u2069"]
    assert all(c in shown for c in kept)


def test_explain_shows_a_redirect_target_with_its_escapes_escaped(site: Site, cli: CLI) -> None:
    location = "javascript:\x1b]0;pwned\x07\x1b[2J"   # what an HTTP header can carry (Latin-1)
    site.routes.update({"/": html("Home", "/evil"), "/evil": redirect(location)})
    done = cli.in_process("crawl", site.url("/"), "--db", "job.db", "--timeout", "2", "--retries", "0")
    assert done.returncode == 0, done.stderr
    done = cli.in_process("explain", site.url("/evil"), "--db", "job.db")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    assert "\x07" not in done.stdout
    assert "verdict  fetched, and it failed: blocked_scheme (redirect to javascript:\\x1b]0;pwned\\x07\\x1b[2J)" \
        in done.stdout.splitlines()


def test_stats_hosts_escapes_what_a_host_did_and_keeps_its_columns(cli: CLI) -> None:
    db = hosts_job(cli.cwd / "job.db")
    conn = sqlite3.connect(db)
    conn.execute("UPDATE hosts SET error = ? WHERE host = 'dead.test:8080'", (f"connect: {HOSTILE}",))
    conn.commit()
    conn.close()
    done = cli.in_process("stats", "--hosts", "--db", db)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    (dead,) = [line for line in done.stdout.splitlines() if line.startswith("dead.test")]
    assert dead.endswith(f"(connect: {ESCAPED})")


def test_an_error_line_carries_no_control_character_even_from_a_file_name(cli: CLI) -> None:
    line = cli.fails(2, "stats", "--db", "job\x1b[2J.db")
    assert line == "crawler: error: no job file at job\\x1b[2J.db"
