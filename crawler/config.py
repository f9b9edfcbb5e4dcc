"""Settings: one frozen object, loaded once as defaults < TOML file < CRAWLER_* environment < flags.

Every key is a field of ``Settings`` and appears, commented, in ``config/default.toml``. Values are
checked once here, so the rest of the crawler can trust them; a bad key or value is a ``ConfigError``
with a one-line message that names where it came from.
"""

from __future__ import annotations

import importlib.util
import math
import operator
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_args

from crawler import __version__
from crawler.errors import ConfigError
from crawler.models import EventLoopKind, ParseMode, RenderMode, ScopeMode, TransportKind
from crawler.revisit import Bounds
from crawler.user_files import read_toml

DEFAULT_USER_AGENT = f"crawler/{__version__} (+https://github.com/crawler/crawler)"

_CHOICES: dict[str, tuple[str, ...]] = {
    "scope": get_args(ScopeMode),
    "parse_mode": get_args(ParseMode),
    "transport": get_args(TransportKind),
    "event_loop": get_args(EventLoopKind),
    "render": get_args(RenderMode),
}
# What --render-block may name: Playwright's resource types (request.resource_type).
RESOURCE_KINDS = ("document", "stylesheet", "image", "media", "font", "script", "texttrack", "xhr", "fetch",
                  "eventsource", "websocket", "manifest", "other")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a crawl job can be told. Field comments are in config/default.toml."""

    db: str = "data/crawl.db"
    max_pages: int = 0
    max_pages_per_host: int = 0
    max_depth: int = -1
    concurrency: int = 32
    per_host: int = 8
    delay: float = 0.0
    scope: ScopeMode = "host"
    allow_domains: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    parse_mode: ParseMode = "async"
    parse_workers: int = 0
    workers: int = 0            # processes that fetch and parse (0: "auto", one per core)
    frontier: str = ""          # "" the job file's own; redis://HOST:PORT/N a shared one
    job: str = ""               # the job's name in a shared frontier
    lease: float = 60.0         # seconds a shared frontier's lease lasts unless renewed
    timeout: float = 30.0
    retries: int = 2
    retry_backoff: float = 0.5
    retry_after_max: float = 60.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 10
    user_agent: str = DEFAULT_USER_AGENT
    robots: bool = True
    crawl_delay_max: float = 10.0
    robots_retry_after: float = 300.0
    bodies: bool = True
    extract_text: bool = False
    extract: str = ""           # an extraction rules file (TOML); "" none
    plugin: str = ""            # an extraction plugin, module:function; "" none
    structured_data: bool = True
    microdata: bool = False
    sort_query: bool = False
    follow_nofollow: bool = False
    transport: TransportKind = "aiohttp"
    event_loop: EventLoopKind = "auto"
    grace_period: float = 10.0
    progress_every: float = 60.0   # seconds between two progress lines on stderr when it is no terminal
    quiet: bool = False            # no progress shown at all
    recrawl: bool = False
    older_than: float = 0.0
    # the hostile web
    sitemaps: bool = False
    allow_private: bool = False
    trap_max_url_length: int = 2083
    trap_max_segment_repeats: int = 2
    trap_max_query_variants: int = 50
    trap_max_pattern_chain: int = 15
    session_params: tuple[str, ...] = ("jsessionid", "phpsessid", "sid", "sessionid", "session_id", "session")
    host_backoff_max: float = 60.0
    host_park_after: int = 5
    host_park_time: float = 120.0
    ca_bundle: str = ""
    insecure: bool = False
    # pages built by JavaScript (crawler.render)
    render: RenderMode = "never"
    browser: str = ""              # "" finds chromium, chromium-browser or google-chrome on PATH
    render_concurrency: int = 0    # pages open in the browser at once (0: one per core)
    render_block: tuple[str, ...] = ("image", "media", "font")
    # requests as the user needs them: headers, credentials, proxies (crawler.access)
    header: tuple[str, ...] = ()   # "Name: value", sent to the seeds' origins only
    auth: str = ""                 # a user name for HTTP authentication at the seeds' origins
    auth_password_env: str = ""    # the environment variable holding its password ("": prompt on a terminal)
    auth_scheme: str = "basic"     # "basic" or "digest"
    auth_origin: tuple[str, ...] = ()   # more origins that get the credentials and headers
    proxy: str = ""                # every request through this proxy (http, https, socks5)
    proxies: str = ""              # a file of proxy URLs, one a line: each host keeps one
    proxy_rest: float = 60.0       # seconds a proxy that failed to connect is left alone
    auth_password: str = field(default="", repr=False, compare=False)   # no key: read by crawler.access, never stored
    # watching a crawl (crawler.observe): a Prometheus endpoint and a stream of JSON events
    metrics: str = ""              # HOST:PORT to serve /metrics on while the crawl runs; "" none
    events: str = ""               # a file the events are appended to, "-" for stdout; "" none
    # the session: cookies and a login (crawler.session)
    login: str = ""                # a login recipe (TOML); "" none
    cookies: str = ""              # a Netscape cookies.txt loaded into the jar; "" none
    # recrawls that follow how often pages change (crawler.revisit)
    due: bool = False              # with recrawl: only the pages whose next visit is due
    revisit_start: float = 86_400.0
    revisit_min: float = 3_600.0
    revisit_max: float = 2_592_000.0
    wait: bool = False             # a job another process crawls: wait for it instead of exit 2
    # content types (crawler.content_types): the media types wanted; no pattern, every type
    accept_type: tuple[str, ...] = ()
    reject_type: tuple[str, ...] = ()
    # references: stylesheets, scripts, images... (crawler.references, issue 24)
    check_references: bool = True    # one request each (HEAD) for its status
    check_external: bool = False     # off-scope link targets checked once, not crawled
    page_requisites: bool = False    # what a page needs to display, fetched from any host and stored

    @property
    def session_names(self) -> frozenset[str]:
        """``session_params`` as ``urls.strip_params`` takes them: a set of lower-case names."""
        return frozenset(name.lower() for name in self.session_params)

    @property
    def processes(self) -> int:
        """Processes that fetch and parse: ``workers``, with auto (0) one per core; one with a
        shared frontier (there each crawl is one worker)."""
        if self.frontier:
            return 1
        return self.workers or os.cpu_count() or 1

    def problem(self) -> tuple[str, str] | None:
        """The first bad value as (key, message), or None when every value is in range."""
        for name in ("delay", "timeout", "retry_backoff", "retry_after_max", "crawl_delay_max", "robots_retry_after",
                     "grace_period", "progress_every", "older_than", "host_backoff_max", "host_park_time", "proxy_rest",
                     "revisit_start", "revisit_min", "revisit_max"):
            value = getattr(self, name)
            if not math.isfinite(value):
                return name, f"{name} must be a finite number, got {value}"
            if value < 0 and name != "timeout":
                return name, f"{name} must not be negative, got {value}"
        for name in ("concurrency", "per_host", "max_redirects", "max_bytes"):
            if getattr(self, name) < 1:
                return name, f"{name} must be at least 1, got {getattr(self, name)}"
        for name in ("max_pages", "max_pages_per_host", "retries", "parse_workers", "workers", "trap_max_url_length",
                     "trap_max_segment_repeats", "trap_max_query_variants", "trap_max_pattern_chain",
                     "host_park_after", "render_concurrency"):
            if getattr(self, name) < 0:
                return name, f"{name} must not be negative, got {getattr(self, name)}"
        if self.timeout <= 0:
            return "timeout", f"timeout must be positive, got {self.timeout}"
        if self.max_depth < -1:
            return "max_depth", f"max_depth must be -1 (no limit) or more, got {self.max_depth}"
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                return name, f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}"
        if unknown := [k for k in self.render_block if k not in RESOURCE_KINDS]:
            return "render_block", f"render_block takes {', '.join(RESOURCE_KINDS)}; got {unknown[0]!r}"
        if not self.user_agent.strip():
            return "user_agent", "user_agent must not be empty"
        if self.ca_bundle and not Path(self.ca_bundle).is_file():
            return "ca_bundle", f"ca_bundle file not found: {self.ca_bundle}"
        for name in self.session_params:
            if not name or any(c in name for c in "&=?#;/ "):
                return "session_params", f"session_params must be parameter names, got {name!r}"
        if self.frontier:
            if not self.frontier.startswith(("redis://", "rediss://", "unix://")):
                return "frontier", f"frontier must be a redis://HOST:PORT/N URL, got {self.frontier!r}"
            if not self.job.strip():
                return "job", "a shared frontier needs a job name: --job NAME"
            if self.workers > 1:
                return "workers", "--workers is for one machine's job file; with --frontier, start one crawl per worker"
            if self.recrawl:   # refused here, before the job file or the Redis job is touched
                return "recrawl", ("--recrawl is not supported with a shared frontier: Redis keeps only fingerprints "
                                   "of done URLs; start a new --job name to crawl again")
        if self.microdata and self.structured_data and importlib.util.find_spec("extruct") is None:
            return "microdata", "microdata needs extruct, which is not installed: pip install 'crawler[microdata]'"
        if self.lease <= 0 or not math.isfinite(self.lease):
            return "lease", f"lease must be a positive number of seconds, got {self.lease}"
        if self.due and not self.recrawl:
            return "due", "--due chooses the pages of a recrawl: give it with --recrawl"
        if bad := self.revisit.problem():
            return "revisit_min", bad
        return None

    @property
    def revisit(self) -> Bounds:
        """The revisit interval rule's bounds (crawler.revisit)."""
        return Bounds(self.revisit_start, self.revisit_min, self.revisit_max)

    def validated(self) -> Settings:
        """Return self after checking ranges and choices; raise ConfigError naming the key."""
        found = self.problem()
        if found is not None:
            raise ConfigError(found[1])
        return self


# auth_password is no key: no file, variable or flag sets it (crawler.access.credentials does).
KEYS: frozenset[str] = frozenset(f.name for f in fields(Settings) if f.name != "auth_password")


def _coerce(key: str, value: Any, source: str, *, text: bool = False) -> Any:
    """Convert ``value`` to the type of ``key``. With ``text`` (the environment) strings are parsed;
    otherwise (TOML, flags) values must already have the right type: ``"false"`` is no boolean."""
    default = getattr(Settings(), key)
    where = f"{key} (from {source})"
    if key == "workers" and value == "auto":
        return 0
    try:
        if isinstance(value, str) and not text and not isinstance(default, str):
            raise ValueError
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return value.lower() in ("1", "true", "yes", "on")
            raise ValueError
        if isinstance(default, int):
            if isinstance(value, bool | float):
                raise ValueError
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if isinstance(default, tuple):
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return tuple(value)
            raise ValueError
        if isinstance(value, str):
            return value
        raise ValueError
    except ValueError:
        kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", tuple: "a list of strings"}
        raise ConfigError(f"bad value for {where}: {value!r} is not {kind[type(default)]}") from None


def from_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file into checked key/value pairs."""
    p = Path(path)
    raw = read_toml(p, "config file")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in KEYS:
            raise ConfigError(f"unknown key {key!r} in config file {p}")
        out[key] = _coerce(key, value, str(p))
    return out


def from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Read CRAWLER_<KEY> variables; an unknown CRAWLER_ variable is an error, like a bad file key."""
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith("CRAWLER_"):
            continue
        key = name.removeprefix("CRAWLER_").lower()
        if key not in KEYS:
            raise ConfigError(f"unknown setting {name} in the environment")
        out[key] = _coerce(key, value, f"environment {name}", text=True)
    return out


def parse_duration(text: str) -> float:
    """'90', '90s', '30m', '12h', '7d', '2w' -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not m:
        raise ConfigError(f"bad duration {text!r}: use a number with s, m, h, d or w (e.g. 7d)")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def _workers_flag(text: str) -> int:
    """``--workers N|auto``: 0, which the settings read as auto, means nothing on a command line."""
    workers: int = _coerce("workers", text, "--workers", text=True)
    if workers == 0 and text.strip() != "auto":
        raise ConfigError(f"--workers must be a number of processes (1 or more) or auto, got {text!r}")
    return workers


# Command-line options that differ from the setting they set: option -> (setting, conversion).
# Every other option of ``crawler crawl`` is named as its setting and passes as given.
_FLAGS: dict[str, tuple[str, Callable[[Any], Any] | None]] = {
    "allow_domain": ("allow_domains", None),
    "no_robots": ("robots", operator.not_),
    "no_check_references": ("check_references", operator.not_),
    "no_bodies": ("bodies", operator.not_),
    "no_structured_data": ("structured_data", operator.not_),
    "older_than": ("older_than", parse_duration),
    "job_name": ("job", None),
    "workers": ("workers", _workers_flag),
    "render_block": ("render_block", lambda kinds: [k.strip() for k in kinds.split(",") if k.strip()]),
}
# Parameters of ``crawler crawl`` that are no settings.
_NOT_SETTINGS = frozenset({"urls", "seeds", "config_file"})


def from_flags(params: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a command line gives, from its parameter values by name (typer's ``ctx.params``).

    An option the user left out holds its default: None, False for a switch, empty for a repeatable
    option. Those set nothing, so the file, the environment or the default decides.
    """
    out: dict[str, Any] = {}
    for name, value in params.items():
        left_out = value is None or value is False or (isinstance(value, list | tuple) and not value)
        if name in _NOT_SETTINGS or left_out:
            continue
        key, convert = _FLAGS.get(name, (name, None))
        out[key] = value if convert is None else convert(value)
    return out


def load(config_file: str | Path | None = None, flags: Mapping[str, Any] | None = None,
         environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults < file < environment < flags. ``flags`` holds only options the user gave (or None)."""
    return load_explicit(config_file, flags, environ)[0]


def load_explicit(config_file: str | Path | None = None, flags: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> tuple[Settings, frozenset[str]]:
    """As ``load``, and the keys that the file, environment or flags set (not left at defaults)."""
    merged: dict[str, Any] = {}
    source: dict[str, str] = {}
    if config_file is not None:
        from_toml = from_file(config_file)
        merged.update(from_toml)
        source.update(dict.fromkeys(from_toml, f"config file {config_file}"))
    for name, value in from_env(os.environ if environ is None else environ).items():
        merged[name] = value
        source[name] = f"environment CRAWLER_{name.upper()}"
    for key, value in (flags or {}).items():
        if key not in KEYS:
            raise ConfigError(f"unknown setting {key!r}")
        if value is not None:
            merged[key] = _coerce(key, value, "command line")
            source[key] = "command line"
    settings = replace(Settings(), **merged)
    found = settings.problem()
    if found is not None:
        key, message = found
        raise ConfigError(f"{message} (from {source.get(key, 'defaults')})")
    return settings, frozenset(merged)
