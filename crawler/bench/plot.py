"""The chart of a ``crawler bench`` run, drawn from its JSON document (matplotlib, ``crawler[plot]``).

    parse modes, I/O-bound │ parse modes, CPU-bound │ CPU use of the parse modes
    fetch models: pages/s  │ fetch models: memory   │ worker processes: pages/s
      by concurrency (log) │   and OS threads (log) │   on both workloads
"""

from __future__ import annotations

import platform
from typing import Any

PARSE_MODES = ("async", "thread", "process")
COLOURS = {"async": "#4C72B0", "thread": "#DD8452", "process": "#55A868",
           "asyncio": "#4C72B0", "threads": "#DD8452", "sequential": "#8C8C8C"}


def can_plot() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def plot(doc: dict[str, Any], path: str) -> None:
    """A PNG of every panel that the document has rows for."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = doc["results"]
    parse = [r for r in rows if r["mode"] in PARSE_MODES]
    fetch = [r for r in rows if r["mode"] == "fetch"]
    workers = [r for r in rows if r["mode"] == "workers"]
    fig, axes = plt.subplots(2, 3, figsize=(14.5, 10), layout="constrained")
    names = list(dict.fromkeys(r["workload"] for r in parse))
    for ax, name in zip(axes[0][:2], names, strict=False):
        _parse_panel(ax, doc, parse, name)
    _cpu_panel(axes[0][2], doc, parse, names)
    _fetch_rate_panel(axes[1][0], fetch)
    _fetch_cost_panel(axes[1][1], fetch)
    _workers_panel(axes[1][2], doc, workers)
    for ax in axes.flat:
        if not ax.has_data():
            ax.set_axis_off()
    info = doc["machine"]
    cores = info.get("cpu_count") or 1
    fig.suptitle(f"crawler {info.get('crawler')} bench on {cores} cores "
                 f"({info.get('cpu_model') or platform.machine()}, Python {info.get('python')})", fontsize=12)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _parse_panel(ax: Any, doc: dict[str, Any], parse: list[dict[str, Any]], name: str) -> None:
    by = {r["mode"]: r for r in parse if r["workload"] == name}
    present = [m for m in PARSE_MODES if m in by]
    values = [by[m]["pages_per_s"] for m in present]
    bars = ax.bar(present, values, color=[COLOURS[m] for m in present])
    labels = [_rate(v) for v in values]
    if "async" in present:
        labels = [f"{text}\n{by[m].get('speedup_vs_async', 0):.2f}× async" for text, m in zip(labels, present, strict=True)]
    ax.bar_label(bars, labels, padding=3, fontsize=9)
    ax.set_ylim(0, max(values) * 1.25)
    title = doc["workloads"].get(name, {}).get("title", name)
    ax.set_title("parse modes, " + title.replace(": ", ":\n", 1), fontsize=10)
    ax.set_xlabel("parse mode (asyncio fetch)")
    ax.set_ylabel("pages per second (higher is better)")


def _cpu_panel(ax: Any, doc: dict[str, Any], parse: list[dict[str, Any]], names: list[str]) -> None:
    by = {(r["workload"], r["mode"]): r for r in parse}
    modes = [m for m in PARSE_MODES if any(mode == m for _, mode in by)]
    if not modes:
        return
    width = 0.8 / len(modes)
    for k, mode in enumerate(modes):
        xs = [i + (k - (len(modes) - 1) / 2) * width for i, name in enumerate(names) if (name, mode) in by]
        values = [by[name, mode]["cpu_percent"] for name in names if (name, mode) in by]
        bars = ax.bar(xs, values, width, label=mode, color=COLOURS[mode])
        ax.bar_label(bars, [f"{v:.0f}%" for v in values], padding=2, fontsize=8)
    cores = doc["machine"].get("cpu_count") or 1
    ax.axhline(100 * cores, color="grey", linestyle="--", linewidth=1)
    ax.text(0.98, 100 * cores, f"all {cores} cores", transform=ax.get_yaxis_transform(), ha="right", va="bottom",
            fontsize=8, color="grey")
    ax.set_ylim(0, 100 * cores * 1.4)
    ax.set_xticks(range(len(names)), [f"{n} workload" for n in names])
    ax.set_ylabel("CPU of the crawler's processes (%)")
    ax.set_title("parse modes: CPU use (100% = one core)", fontsize=10)
    ax.legend(title="parse mode", fontsize=8, title_fontsize=8, loc="upper left", ncols=len(modes))


def _log_axes(ax: Any, levels: list[int]) -> None:
    """Log scales with plain numbers: 1, 8, 64 and 10, 100, 1,000 rather than 10^1."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(levels, [f"{c:,}" for c in levels])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _models(fetch: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(fetch, key=lambda r: r["concurrency"]):
        found.setdefault(r["fetch"], []).append(r)
    return found


def _fetch_rate_panel(ax: Any, fetch: list[dict[str, Any]]) -> None:
    if not fetch:
        return
    for model, series in _models(fetch).items():
        xs = [r["concurrency"] for r in series]
        ys = [r["pages_per_s"] for r in series]
        ax.plot(xs, ys, marker="D" if model == "sequential" else "o", markersize=8 if model == "sequential" else 6,
                label=model, color=COLOURS.get(model, "grey"), zorder=3 if model == "sequential" else 2)
        ax.annotate(_rate(ys[-1]), (xs[-1], ys[-1]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    levels = sorted({r["concurrency"] for r in fetch})
    ideal = [c / 0.05 for c in levels]   # one request per 50 ms per slot: the latency's ceiling
    ax.plot(levels, ideal, linestyle=":", color="grey", label="in flight / 50 ms latency")
    _log_axes(ax, levels)
    ax.set_xlabel("requests in flight (threads for the thread pool)")
    ax.set_ylabel("pages per second (log)")
    ax.set_title("fetch models, I/O-bound pages (50 ms latency):\npages/s by concurrency", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")


def _fetch_cost_panel(ax: Any, fetch: list[dict[str, Any]]) -> None:
    if not fetch:
        return
    for model, series in _models(fetch).items():
        xs = [r["concurrency"] for r in series]
        colour = COLOURS.get(model, "grey")
        ax.plot(xs, [r["peak_rss_mb"] for r in series], marker="o", color=colour, label=f"{model}: peak RSS (MB)")
        ax.plot(xs, [r["threads"] for r in series], marker="s", linestyle="--", color=colour,
                label=f"{model}: OS threads")
    levels = sorted({r["concurrency"] for r in fetch})
    _log_axes(ax, levels)
    ax.set_xlabel("requests in flight")
    ax.set_ylabel("peak RSS in MB, OS threads (log)")
    ax.set_title("fetch models: memory and OS threads by concurrency", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")


def _workers_panel(ax: Any, doc: dict[str, Any], workers: list[dict[str, Any]]) -> None:
    if not workers:
        return
    names = list(dict.fromkeys(r["workload"] for r in workers))
    counts = sorted({r["workers"] for r in workers})
    by = {(r["workload"], r["workers"]): r for r in workers}
    width = 0.8 / len(counts)
    shades = ["#4C72B0", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974"]
    for k, count in enumerate(counts):
        present = [i for i, name in enumerate(names) if (name, count) in by]
        xs = [i + (k - (len(counts) - 1) / 2) * width for i in present]
        # Each workload on its own scale: its rate over 1 worker's.
        values = [by[names[i], count].get("speedup_vs_1_worker", 0.0) for i in present]
        bars = ax.bar(xs, values, width, color=shades[k % len(shades)], label=f"{count} worker{'s' if count > 1 else ''}")
        labels = [f"{_rate(by[names[i], count]['pages_per_s'])}/s\n{by[names[i], count]['cpu_percent']:.0f}% CPU"
                  for i in present]
        ax.bar_label(bars, labels, padding=2, fontsize=8)
    ax.axhline(1.0, color="grey", linewidth=1)
    ax.set_ylim(0, max(2.0, max(r.get("speedup_vs_1_worker", 0.0) for r in workers) * 1.35))
    ax.set_xticks(range(len(names)), [f"{n} workload" for n in names])
    ax.set_ylabel("pages/s over 1 worker's")
    ax.set_title("worker processes, each asyncio\n(the concurrency shared among them)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", ncols=len(counts))
