"""One exception tree for the whole crawler.

    CrawlError                      base of everything the crawler raises on purpose
    ├── UsageError                  bad input from the user: a one-line message, exit code 2
    │   ├── InvalidURL              a seed that is not an absolute http(s) URL
    │   ├── ConfigError             an unknown key or a bad value in config, environment or flags
    │   ├── RulesError              an extraction rules file that cannot be used (file, page type, field)
    │   ├── PluginError             an extraction plugin (--plugin module:function) that cannot be loaded
    │   ├── JobLocked               another live process is crawling the same job file
    │   └── RenderUnavailable       --render without Playwright for Python or without a browser
    ├── StorageError                the job file cannot be opened, read or written: exit code 1
    ├── SessionLost                 --login: the login failed, or a page stayed logged out after
    │                               logging in again; exit code 1, the job file intact
    ├── InternalError               a bug: an exception the crawler did not expect, raised in a
    │                               visit or the writer; exit code 1, the job file intact
    └── PageError                   one page failed: recorded on it with a short code, never fatal
        ├── ParseFailed             the parse stage could not handle it (its worker died)
        └── FetchError              its request failed
            ├── retryable = True:  Timeout, ConnectFailed (and its DnsFailed), ServerBusy (429 / 5xx),
            │                      WorkerDied, RobotsUnavailable, RenderFailed
            └── retryable = False: TlsFailed, TooLarge, HeaderTooLarge, TooManyRedirects, BlockedScheme,
                                   BlockedAddress, OutOfScope, RobotsDisallowed, ProtocolFailed,
                                   TypeRejected (no failure: the URL is recorded as excluded)

Foreign errors (httpx2, aiohttp, sqlite3) are translated into this tree in exactly one place each:
``fetch_errors.translate_transport_error`` and ``storage.jobfile.sqlite_errors``. A ``PageError`` carries the URL and the short
error code that INTERFACE.md lists for exported records.

Two page error codes are no exception: extraction records them on a page that was fetched (a 200
page stays a 200 page; never fatal, never retried, not counted against its host), where the page has
no error of its own: ``extract_missing`` (a field the rules mark required has no value) and
``extract_failed`` (the ``--plugin`` raised or returned no dict, or the rules failed on the page),
with the message. ``crawler stats``, ``explain`` and the report count and explain them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for annotations only: errors imports nothing of the package at run time
    from crawler.models import PageRecord, Response


class CrawlError(Exception):
    """Base class of every error the crawler raises on purpose."""


class UsageError(CrawlError):
    """The user asked for something that cannot be done as asked (exit code 2)."""


class InvalidURL(UsageError):
    """A seed URL that is not an absolute http or https URL."""


class ConfigError(UsageError):
    """An unknown configuration key or a value of the wrong type or range."""


class RulesError(UsageError):
    """An extraction rules file (``--extract``, ``--rules``) that cannot be used: missing, not TOML, or
    a mistake in it. The message names the file, the page type and the field."""


class PluginError(UsageError):
    """An extraction plugin (``--plugin module:function``) that cannot be imported or is not callable."""


class JobLocked(UsageError):
    """The job file is being crawled by another live process."""


class RenderUnavailable(UsageError):
    """``--render auto|always`` cannot run here: Playwright for Python or the browser is missing."""


class StorageError(CrawlError):
    """The job file cannot be opened, read or written (exit code 1)."""


class SessionLost(CrawlError):
    """The crawl cannot be logged in (``--login``): the login did not work, or a page was still served
    logged out after logging in once more. The crawl stops rather than go on anonymously (exit 1)."""


class InternalError(CrawlError):
    """A bug: an unexpected exception inside the crawl. Its ``__cause__`` is the original error."""


class PageError(CrawlError):
    """One page failed: recorded on the page with the short error ``code``, never fatal."""

    code = "page_error"
    retryable = False

    def __init__(self, url: str, message: str = "") -> None:
        super().__init__(f"{self.code}: {url}" + (f": {message}" if message else ""))
        self.url = url
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        # A worker process sends its page errors back pickled: rebuild them from their fields
        # (the default would call the constructor with the formatted message alone).
        return _rebuild, (type(self), self.args, self.__dict__)


class ParseFailed(PageError):
    """The parse stage failed on one page (its worker died, or the parser raised)."""

    code = "parse_failed"


class FetchError(PageError):
    """One request failed. ``code`` is the short error code stored on the page. ``responded``: the
    server did answer (a status line came), so its host is up even though this URL failed."""

    code = "fetch_error"
    responded = False


class Timeout(FetchError):
    """The whole-request deadline (connect to last byte) ran out."""

    code = "timeout"
    retryable = True


class ConnectFailed(FetchError):
    """The connection could not be made, or was reset before the response ended."""

    code = "connect"
    retryable = True


class DnsFailed(ConnectFailed):
    """The host's name does not resolve (no such name, or the resolver failed): no connection was
    tried. A ``ConnectFailed``, so it is retried and parks its host as a refused connection does."""

    code = "dns"


class ServerBusy(FetchError):
    """A 429 or 5xx answer; ``retry_after`` is the server's Retry-After in seconds, if any. The
    answer rides along: ``response`` as the fetcher got it, and ``record``, its page record, which
    the visitor makes (as it makes every answer's) when the retry policy gives up on the URL."""

    code = "http_error"
    responded = True
    retryable = True

    def __init__(self, url: str, status: int, retry_after: float | None = None,
                 response: Response | None = None) -> None:
        super().__init__(url, f"status {status}")
        self.status = status
        self.retry_after = retry_after
        self.response = response
        self.record: PageRecord | None = None   # the page to store: the URL's last attempt


class TlsFailed(FetchError):
    """The TLS handshake failed: a certificate the crawler does not trust (the verifier's reason is
    the message), or no protocol or cipher in common."""

    code = "tls"


class TooLarge(FetchError):
    """The body, after decompression, is larger than ``max_bytes``."""

    code = "too_large"
    responded = True


class HeaderTooLarge(FetchError):
    """The response's header is more than the HTTP client reads (a line too long, too many fields,
    or too many bytes in all); the message names the limit. Not a status: none was read."""

    code = "header_too_large"
    responded = True


class TooManyRedirects(FetchError):
    """More redirect hops than allowed, or a redirect loop."""

    code = "too_many_redirects"
    responded = True


class BlockedScheme(FetchError):
    """A redirect to a scheme other than http or https."""

    code = "blocked_scheme"
    responded = True


class BlockedAddress(FetchError):
    """The SSRF guard: the URL (or a redirect hop) names or resolves to a private, loopback,
    link-local or reserved address that the seeds did not name, and ``--allow-private`` is off."""

    code = "blocked_address"


class OutOfScope(FetchError):
    """A redirect that leaves the job's scope."""

    code = "out_of_scope"
    responded = True


class TypeRejected(FetchError):
    """The response's media type is not wanted (--accept-type, --reject-type): the request was
    abandoned before its body was read. Not a failure: the URL is recorded as excluded, its
    ``code`` ``type_rejected`` or ``type_not_accepted``, its message what decided it."""

    code = "type_rejected"
    responded = True

    def __init__(self, url: str, message: str = "", code: str = "type_rejected") -> None:
        self.code = code
        super().__init__(url, message)


class RobotsDisallowed(FetchError):
    """robots.txt disallows the URL for our user agent."""

    code = "robots_disallowed"


class RobotsUnavailable(FetchError):
    """robots.txt answered 5xx (or an answer that is no HTTP): the host is off limits for now (RFC 9309).
    A robots.txt that could not be fetched because its host could not be reached is that failure
    instead (``ConnectFailed``, ``DnsFailed``, ``TlsFailed``, ``Timeout``: see ``robots.unreachable``).
    Retried like a failed request: each retry reads robots.txt again, so one reset or one 503 does
    not put a host off limits for the run."""

    code = "robots_unavailable"
    retryable = True


class WorkerDied(FetchError):
    """The worker process fetching the URL died (``--workers``): the URL is tried again."""

    code = "worker_died"
    retryable = True


class ProtocolFailed(FetchError):
    """The server broke HTTP: a malformed response, a bad encoding, a redirect without Location."""

    code = "protocol"


class RenderFailed(FetchError):
    """The browser rendering the page crashed, hung or missed the deadline (``--timeout``): the page
    is tried again, by a fresh browser where this one was broken."""

    code = "render_failed"
    retryable = True


def _rebuild(cls: type[PageError], args: tuple[object, ...], fields: dict[str, object]) -> PageError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(fields)
    return error
