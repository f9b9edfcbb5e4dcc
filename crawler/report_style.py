"""The report page's inline style and script, and the Content-Security-Policy that allows those
two blocks (by hash) and nothing else: no image, font, frame or connection, so even markup that
slipped past the escaping could fetch nothing."""

from __future__ import annotations

import base64
import hashlib

CSS = """
:root{color-scheme:light dark;--bg:#fdfdfc;--fg:#1d2126;--muted:#5b6470;--line:#d9dde3;--head:#f1f3f5;
--link:#0b57d0;--ok:#2e7d32;--redirect:#1565c0;--client:#c62828;--server:#8e24aa;--failed:#6d4c41;--area:.18}
@media (prefers-color-scheme:dark){:root{--bg:#15181c;--fg:#e3e6ea;--muted:#9aa3ae;--line:#333a42;--head:#1f242a;
--link:#8ab4f8;--ok:#66bb6a;--redirect:#64b5f6;--client:#ef5350;--server:#ce93d8;--failed:#bcaaa4;--area:.25}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1200px;padding:1rem 1.5rem 4rem;background:var(--bg);color:var(--fg);
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{font-size:1.6rem;margin:.5rem 0 .2rem}h2{font-size:1.25rem;margin:2.2rem 0 .6rem;padding-top:.4rem;
border-top:1px solid var(--line)}h3{font-size:1rem;margin:1.2rem 0 .4rem}
a{color:var(--link)}.muted,.cut,.note{color:var(--muted)}.cut{font-style:italic}
nav{position:sticky;top:0;background:var(--bg);padding:.4rem 0;border-bottom:1px solid var(--line);z-index:1}
nav a{margin-right:.9rem;white-space:nowrap;font-size:.9rem}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:.6rem;margin:1rem 0}
.card{border:1px solid var(--line);border-radius:6px;padding:.5rem .7rem}.card b{display:block;font-size:1.3rem}
.card span{color:var(--muted);font-size:.85rem}
table{border-collapse:collapse;width:100%;margin:.4rem 0;font-size:.9rem}
th,td{border-bottom:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:var(--head);position:relative}td{overflow-wrap:break-word}td.u{overflow-wrap:anywhere}
td.n,th.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
ul.refs{margin:0;padding-left:1.1rem}q{color:var(--muted)}
.chart{width:100%;height:auto;display:block;margin:.4rem 0}
.chart text{fill:var(--muted);font-size:12px}.chart .grid{stroke:var(--line)}
.chart .line{fill:none;stroke-width:2}.chart .area{stroke:none;fill-opacity:var(--area)}
.chart .hit{fill:transparent}.chart .hit:hover{fill:var(--line);fill-opacity:.35}
.s-ok{fill:var(--ok);stroke:var(--ok);color:var(--ok)}.s-redirect{fill:var(--redirect);stroke:var(--redirect)}
.s-client{fill:var(--client);stroke:var(--client);color:var(--client)}.s-server{fill:var(--server);stroke:var(--server)}
.s-failed{fill:var(--failed);stroke:var(--failed)}.chart text.legend{font-weight:600}
.chart text.s-ok{fill:var(--ok);stroke:none}.chart text.s-client{fill:var(--client);stroke:none}
p.legend .key{margin-right:1rem;white-space:nowrap}.bar{stroke:none}
code{font-size:.85rem}
dl.settings{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:.1rem 1.2rem;margin:.3rem 0}
dl.settings div{display:flex;gap:.6rem;border-bottom:1px solid var(--line);padding:.15rem 0}
dt{color:var(--muted);min-width:9.5rem}dd{margin:0;overflow-wrap:anywhere}
@media print{:root{--bg:#fff;--fg:#000;--muted:#444;--line:#bbb;--head:#eee;--link:#000;color-scheme:light}
nav{display:none}body{max-width:none;padding:0;font-size:11px}a{text-decoration:none}
h2{break-after:avoid}tr,.chart,.card{break-inside:avoid}th{position:static}}
"""

# Sortable tables: a click on a heading sorts by that column (numbers by their data-v value), a
# second click reverses; then the page says it is ready (what the browser test waits for).
SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.tabIndex = 0;
    th.addEventListener("click", function () {
      var body = table.tBodies[0], numeric = th.classList.contains("n");
      var current = th.getAttribute("aria-sort");
      var up = current ? (current === "ascending" ? -1 : 1) : (numeric ? -1 : 1);
      function key(row) {
        var cell = row.cells[column];
        return numeric ? parseFloat(cell.dataset.v) : cell.textContent.toLowerCase();
      }
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) { var x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * up; });
      table.querySelectorAll("th").forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up > 0 ? "ascending" : "descending");
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
document.documentElement.setAttribute("data-ready", "yes");
"""


def csp_hash(text: str) -> str:
    """The policy's source for an inline block: its SHA-256, as ``'sha256-...'``."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


# Only the inline style and script above, by hash; nothing from anywhere, not even this file's folder.
CSP = (f"default-src 'none'; style-src {csp_hash(CSS)}; script-src {csp_hash(SCRIPT)}; img-src 'none'; "
       "base-uri 'none'; form-action 'none'")

