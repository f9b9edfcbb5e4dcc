"""The report's charts as inline SVG: pure functions from numbers to markup, no I/O.

Colours come from the page's stylesheet through classes (``s-ok``, ``s-client``, ...), so a chart
follows the light or dark scheme and prints in the print one. Every chart is an ``<svg role="img">``
with an ``aria-label`` saying what it shows, and a ``<title>`` on each bar or bucket for its exact
numbers. Text from outside (labels) is escaped here too, though the report only passes numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

# The status classes in the order the charts stack them, with their CSS class and legend.
CLASSES = (("ok", "2xx"), ("redirect", "3xx"), ("client", "4xx"), ("server", "5xx"), ("failed", "no answer"))

_W, _H = 900, 240                      # the timeline's drawing box
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 14, 30


def duration_text(seconds: int) -> str:
    """'45 s', '3 min 20 s', '2 h 05 min'."""
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _nice_top(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (an axis' top)."""
    if value <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= value:
        step *= 10
    while step > value:
        step /= 10
    for factor in (1, 2, 5, 10):
        if step * factor >= value:
            return step * factor
    return step * 10


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def timeline(buckets: Sequence[tuple[int, int]], width: int, chart_id: str = "chart-timeline") -> str:
    """Pages per second (an area) and errors per second (a line) over the crawl, ``buckets`` of
    ``width`` seconds each; the x axis in time since the first fetch."""
    if not buckets:
        return f'<svg id="{chart_id}" class="chart" role="img" aria-label="no fetches yet" viewBox="0 0 {_W} 40"></svg>'
    rates = [(pages / width, errors / width) for pages, errors in buckets]
    top = _nice_top(max(max(p, e) for p, e in rates))
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    step = plot_w / len(rates)

    def y(rate: float) -> float:
        return _TOP + plot_h * (1 - rate / top)

    def points(series: int) -> str:
        # a step line: each bucket is flat over its width
        out = []
        for i, rate in enumerate(rates):
            out.append(f"{_LEFT + i * step:.1f},{y(rate[series]):.1f} {_LEFT + (i + 1) * step:.1f},{y(rate[series]):.1f}")
        return " ".join(out)

    base = f"{_LEFT + len(rates) * step:.1f},{_TOP + plot_h:.1f} {_LEFT:.1f},{_TOP + plot_h:.1f}"
    parts = [f'<svg id="{chart_id}" class="chart" role="img" viewBox="0 0 {_W} {_H}" '
             f'aria-label="pages per second and errors per second over {duration_text(len(rates) * width)}">']
    for fraction in (0, 0.5, 1):
        gy = y(top * fraction)
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{gy:.1f}" y2="{gy:.1f}"/>'
                     f'<text class="axis" x="{_LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end">{_number(top * fraction)}</text>')
    total = len(rates) * width
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        gx = _LEFT + plot_w * fraction
        anchor = "start" if fraction == 0 else "end" if fraction == 1 else "middle"
        parts.append(f'<text class="axis" x="{gx:.1f}" y="{_H - 10}" text-anchor="{anchor}">'
                     f'{escape(duration_text(round(total * fraction)))}</text>')
    parts.append(f'<polygon class="area s-ok" points="{points(0)} {base}"/>')
    parts.append(f'<polyline class="line s-ok" points="{points(0)}"/>')
    parts.append(f'<polyline class="line s-client" points="{points(1)}"/>')
    for i, (pages, errors) in enumerate(buckets):   # hover: the exact numbers of each bucket
        start = i * width
        parts.append(f'<rect class="hit" x="{_LEFT + i * step:.1f}" y="{_TOP}" width="{step:.1f}" height="{plot_h}">'
                     f'<title>{escape(duration_text(start))}: {pages:,} pages, {errors:,} errors '
                     f'in {width} s</title></rect>')
    parts.append(f'<text class="legend s-ok" x="{_LEFT + 8}" y="{_TOP + 12}">pages/s</text>'
                 f'<text class="legend s-client" x="{_LEFT + 80}" y="{_TOP + 12}">errors/s</text></svg>')
    return "".join(parts)


def bars(items: Sequence[tuple[str, int, str]], chart_id: str, label: str) -> str:
    """A horizontal bar for each ``(label, value, css class)``, longest value the full width."""
    row, label_w, width = 24, 110, 900
    top = max([value for _, value, _ in items] + [1])
    parts = [f'<svg id="{chart_id}" class="chart" role="img" aria-label="{escape(label)}" '
             f'viewBox="0 0 {width} {max(1, len(items)) * row + 4}">']
    for i, (name, value, css) in enumerate(items):
        y = i * row + 2
        bar = (width - label_w - 90) * value / top
        parts.append(f'<text class="axis" x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(name)}</text>'
                     f'<rect class="bar s-{escape(css)}" x="{label_w}" y="{y + 2}" width="{max(bar, 1 if value else 0):.1f}" '
                     f'height="{row - 6}"><title>{escape(name)}: {value:,}</title></rect>'
                     f'<text class="axis" x="{label_w + bar + 6:.1f}" y="{y + 15}">{value:,}</text>')
    parts.append("</svg>")
    return "".join(parts)


def stacked(columns: Sequence[tuple[str, Sequence[int]]], chart_id: str, label: str) -> str:
    """A vertical bar for each ``(label, counts by CLASSES)``, its parts stacked in that order."""
    width, height, left, bottom, top_pad = 900, 220, 56, 24, 10
    top = _nice_top(max([sum(counts) for _, counts in columns] + [1]))
    plot_w, plot_h = width - left - 12, height - bottom - top_pad
    slot = plot_w / max(1, len(columns))
    parts = [f'<svg id="{chart_id}" class="chart" role="img" aria-label="{escape(label)}" viewBox="0 0 {width} {height}">']
    for fraction in (0, 0.5, 1):
        gy = top_pad + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{left}" x2="{width - 12}" y1="{gy:.1f}" y2="{gy:.1f}"/>'
                     f'<text class="axis" x="{left - 6}" y="{gy + 4:.1f}" text-anchor="end">{_number(top * fraction)}</text>')
    for i, (name, counts) in enumerate(columns):
        x = left + i * slot + slot * 0.15
        floor = float(top_pad + plot_h)
        for (css, legend), count in zip(CLASSES, counts, strict=True):
            if not count:
                continue
            h = plot_h * count / top
            floor -= h
            parts.append(f'<rect class="bar s-{css}" x="{x:.1f}" y="{floor:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}">'
                         f'<title>{escape(name)}: {count:,} {escape(legend)}</title></rect>')
        if len(columns) <= 30:   # the total above the bar, where there is room
            parts.append(f'<text class="axis" x="{x + slot * 0.35:.1f}" y="{floor - 4:.1f}" text-anchor="middle">'
                         f'{sum(counts):,}</text>')
        if len(columns) <= 30 or i % -(-len(columns) // 30) == 0:
            parts.append(f'<text class="axis" x="{x + slot * 0.35:.1f}" y="{height - 8}" text-anchor="middle">'
                         f'{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def legend() -> str:
    """The status classes' colours, as a line of HTML under a chart."""
    return '<p class="legend">' + " ".join(
        f'<span class="key s-{css}"><svg viewBox="0 0 10 10" width="10" height="10"><rect class="bar s-{css}" '
        f'width="10" height="10"/></svg> {escape(text)}</span>' for css, text in CLASSES) + "</p>"
