"""The crawl's session: cookies kept in a jar for every request, a form login, and what keeps both.

    recipe (--login FILE, checked) ─► keeper.start: stored session, --cookies FILE, login
    login.Session (one per process that makes requests): the fetcher's cookie jar, "served logged
        out?" on every page, one login more when it was
    keeper.Keeper: the jar sealed in the job file (store: encrypted, its key outside the job file)
    guard: links that could end the session (logout, delete, ...) excluded as ``session_guard``
    jar: cookies as plain values, a Netscape cookies.txt, cookie values taken out of stored headers

Why ``http.cookiejar``: it is the jar httpx (and so the fetcher's client) keeps and applies to every
request and response, redirect hops included, with either transport; aiohttp's ``CookieJar`` would
serve the aiohttp transport only (it is turned off there: ``transport.py``), and no maintained
RFC 6265 library for Python plugs into httpx. ``MozillaCookieJar`` reads a Netscape cookies.txt.
"""
