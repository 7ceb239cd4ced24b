"""The dashboard's charts, drawn by matplotlib's SVG backend on the server.

Why matplotlib, server-side: the pages' Content-Security-Policy allows scripts from this server
only and no ``eval`` (which Vega's expression parser needs), and a chart drawn on the server
needs nothing from the internet nor any script at all. Each chart is an SVG image in a
``data:`` URL (the CSP allows ``img-src data:``): an image is rendered apart from the page, so
the styles matplotlib writes inside it are the image's own. Colour is never the only signal:
each chart has a text alternative on the page (a table of the same numbers).

Charts are cached by their numbers: the same report drawn twice is drawn once.
"""

from __future__ import annotations

import base64
import io
import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# The pages' palette (carepath.css :root), for the images that cannot read CSS variables.
INK, INK_3, LINE = "#1b2430", "#5d6776", "#dde2e8"
BRAND, BRAND_2 = "#0f3b5f", "#1d5f91"
RED, AMBER, GREEN = "#b42318", "#b54708", "#067647"
WIDTH = 5.2  # inches at 96 dpi: fits a card of the two-column grid


def _figure(height: float, left: float, bottom: float, top: float = 0.12, right: float = 0.45):  # type: ignore[no-untyped-def]
    """A figure with one axes and margins in inches (a fixed layout: matplotlib's layout
    engines would triple the time a chart takes)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH, height), dpi=96)
    figure.subplots_adjust(
        left=left / WIDTH, right=1 - right / WIDTH, bottom=bottom / height, top=1 - top / height
    )
    ax = figure.add_subplot()
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(INK_3)
    ax.tick_params(colors=INK, labelsize=8)
    return figure, ax


def _data_url(figure) -> str:  # type: ignore[no-untyped-def]
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "carepath"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    encoded = base64.b64encode(buffer.getvalue().encode()).decode()
    return f"data:image/svg+xml;base64,{encoded}"


@dataclass
class _RunFigure:
    """A drawn run chart's axes for one run of months, redrawn per measure: the measures of a
    pathway share their months, and building the axes and their ticks is most of a chart's
    cost. The lock keeps two requests from drawing on it at once."""

    figure: Any
    line: Any
    median: Any
    lock: threading.Lock


@lru_cache(maxsize=16)
def _run_figure(months: tuple[str, ...]) -> _RunFigure:
    figure, ax = _figure(1.9, left=0.5, bottom=0.3)
    xs = list(range(len(months)))
    ax.axhspan(0, 50, color=RED, alpha=0.06, lw=0)
    ax.axhspan(50, 80, color=AMBER, alpha=0.06, lw=0)
    ax.axhspan(80, 100, color=GREEN, alpha=0.06, lw=0)
    for level, colour, label in ((50, RED, "50 %"), (80, GREEN, "80 %")):
        ax.axhline(level, color=colour, lw=1, ls="--")
        ax.annotate(label, (1, level), xycoords=("axes fraction", "data"), xytext=(2, -3),
                    textcoords="offset points", color=colour, fontsize=7)  # fmt: skip
    median = ax.axhline(0, color=INK_3, lw=0.8, ls=":")
    (line,) = ax.plot(xs, [math.nan] * len(xs), color=BRAND_2, lw=1.8, marker="o", ms=4)
    ax.set_ylim(0, 104)  # a point at 100 % stays whole
    ax.set_yticks([0, 50, 80, 100], ["0", "50", "80", "100 %"])
    ax.set_xlim(-0.5, max(len(months) - 0.5, 0.5))
    step = max(1, math.ceil(len(months) / 8))
    ax.set_xticks(xs[::step], [m for m in months[::step]])
    ax.grid(axis="y", color=LINE, lw=0.5)
    return _RunFigure(figure, line, median, threading.Lock())


@lru_cache(maxsize=512)
def run_chart(months: tuple[str, ...], shares: tuple[float | None, ...]) -> str:
    """Share by month (a gap where a month has no denominator), the 50 % and 80 % band lines
    and the median of the months' shares (a run chart's centre line)."""
    ys = [math.nan if s is None else 100 * s for s in shares]
    known = sorted(y for y in ys if not math.isnan(y))
    drawn = _run_figure(months)
    with drawn.lock:
        drawn.line.set_ydata(ys)
        if known:
            mid = len(known) // 2
            median = known[mid] if len(known) % 2 else (known[mid - 1] + known[mid]) / 2
            drawn.median.set_ydata([median, median])
        drawn.median.set_visible(bool(known))
        return _data_url(drawn.figure)


@lru_cache(maxsize=64)
def bar_chart(labels: tuple[str, ...], series: tuple[tuple[str, tuple[float, ...]], ...],
              unit: str) -> str:  # fmt: skip
    """Horizontal bars, one group per label and one bar per series (e.g. median and 90th
    percentile days)."""
    height = min(0.9 + 0.3 * max(len(labels), 1) * max(len(series), 1) ** 0.5, 6.0)
    widest = max((len(label) for label in labels), default=4)
    top = 0.35 if len(series) > 1 else 0.12
    figure, ax = _figure(height, left=0.2 + 0.065 * widest, bottom=0.5, top=top, right=0.3)
    colours = (BRAND_2, BRAND, INK_3)
    band = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series):
        ys = [n + i * band - 0.4 + band / 2 for n in range(len(labels))]
        ax.barh(ys, values, height=band * 0.9, color=colours[i % 3], label=name)
        for y, v in zip(ys, values, strict=True):
            ax.annotate(f"{v:g}", (v, y), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=7, color=INK)  # fmt: skip
    ax.set_axisbelow(True)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(unit, fontsize=8, color=INK)
    ax.grid(axis="x", color=LINE, lw=0.5)
    ax.margins(x=0.15)
    if len(series) > 1:
        figure.legend(fontsize=7, frameon=False, loc="upper right", ncols=len(series))
    return _data_url(figure)
