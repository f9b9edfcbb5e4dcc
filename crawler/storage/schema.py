"""The job file's schema, its versions and the migrations between them; the pragmas of every connection.

A job file is one SQLite database. ``prepare`` brings any job file to ``SCHEMA_VERSION`` (creating
it when new, migrating it when older, refusing it when newer or not a job) with a plain ``sqlite3``
connection, before the crawl opens its own. Each migration runs in one transaction, so a job file is
either all old or all new, never half migrated.

    meta           key/value: schema_version, job_settings, seed_hosts, state, pass
    urls           every URL the job has seen: the SQLite frontier's queue (state) and the id pages use
    hosts          the frontier's state of each host: fetched this pass, parked, budget reached
    pages          the latest fetch of each URL
    history        earlier versions of pages that a recrawl found changed
    links          the link graph: source page id, target canonical URL (in scope or not)
    simhash_bands  16-bit bands of each page's simhash, to find near-duplicates
    extracted      what extraction made of each page: built-in fields, the rules' data, structured data
    bodies         bodies too big to hold in memory (non-HTML files), in pieces (``storage.bodies``)
    (links.kind, urls.fetch_as, pages.fetched_as: references, checks and requisites, issue 24)
"""

from __future__ import annotations

import functools
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from crawler.errors import StorageError

SCHEMA_VERSION = 11

# The states of a row of ``urls``; the SQLite frontier's queue is this column.
PENDING, LEASED, DONE, EXCLUDED = 0, 1, 2, 3
# The exclusion code of URLs past a host's --max-pages-per-host.
HOST_BUDGET = "host_budget"

CACHE_SIZE = "PRAGMA cache_size=-16384"   # 16 MiB page cache: the url index stays hot without unbounded growth
# Set once for every connection, reader or writer.
PRAGMAS = (
    "PRAGMA journal_mode=WAL",      # readers (stats, export) never block the crawl, and vice versa
    "PRAGMA synchronous=NORMAL",    # with WAL: durable up to the last checkpointed commits, never corrupt
    "PRAGMA busy_timeout=5000",     # wait out a reader's short lock instead of failing
    "PRAGMA temp_store=MEMORY",
    CACHE_SIZE,
    # Deleted rows are zeroed in their pages, but freed pages are not overwritten. Debian's SQLite
    # overwrites them (secure_delete on): a DROP or DELETE in a transaction then keeps a statement
    # journal of every freed page, in memory with temp_store=MEMORY (crawler extract --db's staging
    # table: 82 MB at 20,000 pages, growing with the job).
    "PRAGMA secure_delete=FAST",
)

# The extraction table (issue 21): in a new job, and added to a job of schema 5.
_EXTRACTED = """
CREATE TABLE extracted (           -- no row: nothing was extracted (a job of schema 5 or before, a non-HTML page)
    url_id INTEGER PRIMARY KEY,      -- the page's (pages.url_id)
    h1 TEXT,                         -- built-in fields: the first <h1>'s text,
    lang TEXT,                       -- the page's language,
    word_count INTEGER,              -- the words of its main text
    page_type TEXT,                  -- the [[page]] of the rules that applied
    data TEXT,                       -- JSON object: field -> value (null where nothing matched)
    empty TEXT,                      -- JSON array: the fields that matched nothing (NULL: none)
    bad_type TEXT,                   -- JSON array: the fields whose value did not convert (NULL: none)
    jsonld TEXT,                     -- JSON array: every JSON-LD block that parsed
    jsonld_error TEXT,               -- the first block that did not, in words
    opengraph TEXT,                  -- JSON object: og:* and twitter:* meta
    microdata TEXT                   -- JSON array: microdata items
);
"""

# Bodies streamed to the job file in pieces (issue 24, crawler.storage.bodies): in a new job, and
# added to a job of schema 7.
_BODIES = """
CREATE TABLE bodies (              -- a page whose body is here has pages.body NULL
    url_id INTEGER NOT NULL,         -- the page's (pages.url_id)
    seq INTEGER NOT NULL,            -- the piece's place in the body, from 0
    data BLOB NOT NULL               -- up to 1 MiB of the body as received (after Content-Encoding), not compressed
);
CREATE UNIQUE INDEX bodies_piece ON bodies(url_id, seq);
"""

# References (issue 24): what a link is to its page, and how a URL is (to be) fetched. Columns added
# to a new job's tables as to an old job's: NULL is a page link, a URL fetched as a page.
# links.kind: stylesheet, script, image, iframe, media, font, icon, object; urls.fetch_as: check (its
# status only), requisite (--page-requisites); pages.fetched_as: the same, of the fetch stored.
_REFERENCES = """
ALTER TABLE links ADD COLUMN kind TEXT;
ALTER TABLE urls ADD COLUMN fetch_as TEXT;
ALTER TABLE pages ADD COLUMN fetched_as TEXT;
"""

# --render: the requests of a rendered page the crawler refused, by why (issue 22's report): a JSON
# object, why -> [how many, the first URL refused so]; NULL where none was (or it was not rendered).
_RENDER_BLOCKS = """
ALTER TABLE pages ADD COLUMN render_blocks TEXT;
"""

# The current schema, as a new job file gets it.
SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE urls (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    host TEXT NOT NULL,
    depth INTEGER NOT NULL,
    state INTEGER NOT NULL,          -- {PENDING} pending, {LEASED} leased, {DONE} done, {EXCLUDED} excluded (never fetched)
    exclusion TEXT,                  -- why excluded: off_host, too_deep, nofollow, ...
    source INTEGER,                  -- the id of the page that first linked it (NULL: a seed or a sitemap)
    detail TEXT,                     -- what decided an exclusion, in words (the robots.txt line, ...)
    lastmod TEXT                     -- the <lastmod> a sitemap gave it
);
CREATE INDEX urls_pending ON urls(id) WHERE state = {PENDING};
CREATE INDEX urls_leased ON urls(id) WHERE state = {LEASED};
CREATE INDEX urls_host_pending ON urls(host, id) WHERE state = {PENDING};
CREATE TABLE hosts (                 -- the frontier's per-host state; a row once a host has been fetched from
    host TEXT PRIMARY KEY,
    fetched INTEGER NOT NULL DEFAULT 0,  -- URLs fetched (acknowledged) in this pass, for --max-pages-per-host
    state TEXT NOT NULL DEFAULT 'active',  -- active | parked (unreachable, or failing: a while) | backoff (slowed)
                                     -- | budget (--max-pages-per-host reached)
    until TEXT,                      -- parked: not tried again before this time (ISO 8601 UTC)
    error TEXT                       -- parked: the error code that parked it; backoff: why, and the pace
) WITHOUT ROWID;
CREATE TABLE pages (
    url_id INTEGER PRIMARY KEY REFERENCES urls(id),
    final_url TEXT,
    status INTEGER,
    content_type TEXT,
    title TEXT,
    description TEXT,
    canonical TEXT,
    noindex INTEGER NOT NULL DEFAULT 0,
    nofollow INTEGER NOT NULL DEFAULT 0,
    outlinks INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER,
    elapsed_ms INTEGER,
    fetched_at TEXT NOT NULL,
    error TEXT,                      -- the short error code of INTERFACE.md
    error_message TEXT,              -- what went wrong, in words
    etag TEXT,
    last_modified TEXT,
    content_hash TEXT,
    duplicate_of INTEGER,            -- the first page with the same content hash
    simhash INTEGER,                 -- of the main text, with extract_text on
    near_duplicate_of INTEGER,       -- the first page whose simhash is at most 3 bits away
    http_version TEXT,
    reason_phrase TEXT,              -- the HTTP status line's reason phrase
    pass INTEGER NOT NULL DEFAULT 1, -- the crawl pass that last fetched it (--recrawl starts a new one)
    change TEXT,                     -- in that pass: new, unchanged, changed or gone
    headers BLOB,                    -- zlib-compressed "Name: value\\r\\n" lines, in the order received
    request_headers BLOB,            -- the same, of the request as sent (for WARC request records)
    ip TEXT,                         -- the server's IP address, where the transport told it
    body BLOB,                       -- zlib-compressed raw body (after Content-Encoding), unless --no-bodies
    rendered TEXT,                   -- --render: why a browser rendered the page, and what its requests came to
    render_blocked INTEGER,          -- the rendered page's requests the crawler's rules refused
    response_body BLOB,              -- a rendered page's HTTP body, zlib-compressed (body is then the rendered DOM)
    revisit_interval REAL,           -- seconds between two visits, as what visits saw says (crawler.revisit)
    due_at REAL                      -- when the next visit is due (--recrawl --due), seconds since the epoch
);
CREATE INDEX pages_hash ON pages(content_hash) WHERE content_hash IS NOT NULL;
CREATE TABLE history (
    url_id INTEGER NOT NULL,
    status INTEGER,
    content_hash TEXT,
    fetched_at TEXT NOT NULL,
    pass INTEGER NOT NULL
);
CREATE INDEX history_url ON history(url_id);
CREATE TABLE simhash_bands (  -- near-duplicates share at least one 16-bit band
    band INTEGER NOT NULL,
    value INTEGER NOT NULL,
    url_id INTEGER NOT NULL,
    PRIMARY KEY (band, value, url_id)
) WITHOUT ROWID;
CREATE TABLE links (
    source_id INTEGER NOT NULL,
    target TEXT NOT NULL,            -- canonical URL: a link is stored with its page, whatever the frontier did with it
    nofollow INTEGER NOT NULL,
    anchor TEXT,                     -- the link's anchor text, whitespace collapsed, at most 200 characters
    PRIMARY KEY (source_id, target)
) WITHOUT ROWID;
{_EXTRACTED}{_BODIES}{_REFERENCES}{_RENDER_BLOCKS}INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');
"""

# MIGRATIONS[n] takes a job file from version n to n + 1.
MIGRATIONS: dict[int, str] = {
    # 1 -> 2: one name for one meaning ("reason" was an exclusion code, an HTTP reason phrase and an
    # error message), and links name their target by URL, so pages can be stored before the
    # frontier has heard of their links (the frontier may be remote).
    1: """
ALTER TABLE urls RENAME COLUMN reason TO exclusion;
ALTER TABLE pages RENAME COLUMN reason TO reason_phrase;
ALTER TABLE pages ADD COLUMN error_message TEXT;
UPDATE pages SET error_message = reason_phrase, reason_phrase = NULL
 WHERE error IS NOT NULL AND error != 'http_error';
CREATE TABLE links_v2 (
    source_id INTEGER NOT NULL,
    target TEXT NOT NULL,
    nofollow INTEGER NOT NULL,
    PRIMARY KEY (source_id, target)
) WITHOUT ROWID;
INSERT INTO links_v2 SELECT l.source_id, u.url, l.nofollow FROM links l JOIN urls u ON u.id = l.target_id;
DROP TABLE links;
ALTER TABLE links_v2 RENAME TO links;
""",
    # 2 -> 3: the frontier is organised by host (a queue per host: the index of pending URLs by
    # host), with a row of state per host.
    2: f"""
CREATE INDEX urls_host_pending ON urls(host, id) WHERE state = {PENDING};
CREATE TABLE hosts (
    host TEXT PRIMARY KEY,
    fetched INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'active',
    until TEXT,
    error TEXT
) WITHOUT ROWID;
INSERT INTO hosts (host, fetched) SELECT host, COUNT(*) FROM urls WHERE state = {DONE} GROUP BY host;
""",
    # 3 -> 4: what exports need that the crawl did not keep: a link's anchor text (the link graph),
    # the request headers sent and the server's address (WARC request records, WARC-IP-Address).
    # Pages crawled before have none of them: empty anchors, no request record, no address.
    3: """
ALTER TABLE links ADD COLUMN anchor TEXT;
ALTER TABLE pages ADD COLUMN request_headers BLOB;
ALTER TABLE pages ADD COLUMN ip TEXT;
""",
    # 4 -> 5: what ``crawler explain`` needs to say why: the page that first linked each URL, what
    # decided an exclusion (the robots.txt line, the trap rule's measure), and a sitemap's lastmod.
    4: """
ALTER TABLE urls ADD COLUMN source INTEGER;
ALTER TABLE urls ADD COLUMN detail TEXT;
ALTER TABLE urls ADD COLUMN lastmod TEXT;
""",
    # 5 -> 6: extraction (issue 21) in a table of its own, so that rules re-run over stored bodies
    # rewrite small rows, and coverage counts scan no page bodies. A job of schema 5 has no row in
    # it: its exports are what they were (no data, jsonld, opengraph, h1, lang or word_count).
    5: _EXTRACTED,
    # 6 -> 7: pages rendered by a browser (--render): why, the requests refused, and the HTTP body
    # kept beside the rendered DOM (a WARC export holds both).
    6: """
ALTER TABLE pages ADD COLUMN rendered TEXT;
ALTER TABLE pages ADD COLUMN render_blocked INTEGER;
ALTER TABLE pages ADD COLUMN response_body BLOB;
""",
    # 7 -> 8: bodies too big to hold in memory, in pieces (--accept-type application/pdf: files).
    7: _BODIES,
    8: """
ALTER TABLE pages ADD COLUMN revisit_interval REAL;
ALTER TABLE pages ADD COLUMN due_at REAL;
""",
    # 9 -> 10: references (issue 24): a link's kind, checks and requisites apart from pages.
    9: _REFERENCES,
    # 10 -> 11: a rendered page's refused requests by why, for the report. Pages rendered before say
    # how many were refused (render_blocked), not why.
    10: _RENDER_BLOCKS,
}


def stored_time(when: datetime | None = None) -> str:
    """ISO 8601 UTC to the second, as ``fetched_at`` holds it (string order is time order)."""
    if when is None:
        return _now_stored(int(time.time()))
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=2)
def _now_stored(second: int) -> str:
    """``stored_time`` of this second: one strftime a second, not one a page."""
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def version_of(conn: sqlite3.Connection, path: Path) -> int | None:
    """The file's schema version; None for an empty file; StorageError if it is not a job file."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return None
    if not {"meta", "urls", "pages"} <= tables:
        raise StorageError(f"{path} is a SQLite file but not a crawler job")
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = _stored_version(row[0], path) if row else 1
    if version > SCHEMA_VERSION:
        raise StorageError(f"{path} was written by a newer crawler (schema {version} > {SCHEMA_VERSION})")
    return version


def _stored_version(value: object, path: Path) -> int:
    """The schema version as meta stores it (the text of a positive integer); StorageError for
    anything else, which no crawler wrote: the file is refused before anything reads or writes it."""
    text = str(value).strip() if isinstance(value, int | str) else ""
    if not (text.isascii() and text.isdigit() and int(text) > 0):
        raise StorageError(f"{path} is a damaged job file: its schema version is {value!r}, not a positive integer")
    return int(text)


def prepare(conn: sqlite3.Connection, path: Path, *, create: bool) -> None:
    """Bring the job file on ``conn`` to the current schema: create it (if ``create``) or migrate it.
    Raises sqlite3 errors as they come: the caller is the boundary that translates them."""
    version = version_of(conn, path)
    if version == SCHEMA_VERSION or (version is None and not create):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = version_of(conn, path)   # again, under the write lock: another process may have done it
        if version is None:
            _run_script(conn, SCHEMA)
        else:
            while version < SCHEMA_VERSION:
                _run_script(conn, MIGRATIONS[version])
                version += 1
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(version),))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run the statements of ``script`` inside the caller's transaction (``executescript`` would
    commit it first)."""
    for statement in script.split(";\n"):
        if statement.strip():
            conn.execute(statement)
