"""Small charts as inline SVG strings: line, scatter, horizontal bars, histogram, heatmap.

Hand-written rather than matplotlib: a report needs five plain chart types, and a plotting
library would be a large dependency for them. Every text is escaped; the output has no
script, no link and no external reference, so a report is one self-contained file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

WIDTH, HEIGHT = 560, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 34, 46
COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


@dataclass(frozen=True)
class Series:
    name: str
    xs: Sequence[float]
    ys: Sequence[float]


def fmt(value: float) -> str:
    return f"{value:.3g}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (steps of 1, 2 or 5 times a power of ten)."""
    span = high - low
    raw = span / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


def _extent(values: Sequence[float], pad: float = 0.0) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if high == low:
        delta = abs(low) * 0.1 or 0.5
        return low - delta, high + delta
    margin = (high - low) * pad
    return low - margin, high + margin


class _Frame:
    """Maps data to pixels inside the plot area, and draws the axes and title around it."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float]) -> None:
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range

    def x(self, value: float) -> float:
        return LEFT + (value - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return HEIGHT - BOTTOM - (value - self.y0) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)

    def axes(self, x_label: str, y_label: str, x_ticks: bool = True) -> list[str]:
        bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
        parts = [
            f'<rect x="{LEFT}" y="{TOP}" width="{right - LEFT}" height="{bottom - TOP}" '
            'fill="none" stroke="#999"/>'
        ]
        for tick in nice_ticks(self.y0, self.y1):
            y = self.y(tick)
            parts.append(
                f'<line x1="{LEFT - 4}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#eee"/>'
            )
            parts.append(
                f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{fmt(tick)}</text>'
            )
        if x_ticks:
            for tick in nice_ticks(self.x0, self.x1):
                x = self.x(tick)
                parts.append(
                    f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" '
                    'stroke="#999"/>'
                )
                parts.append(
                    f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{fmt(tick)}</text>'
                )
        parts.append(
            f'<text x="{(LEFT + right) / 2:.1f}" y="{HEIGHT - 8}" '
            f'text-anchor="middle">{escape(x_label)}</text>'
        )
        middle = (TOP + bottom) / 2
        parts.append(
            f'<text x="14" y="{middle:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 14 {middle:.1f})">{escape(y_label)}</text>'
        )
        return parts


def _svg(title: str, body: list[str], height: int = HEIGHT) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="{escape(title)}" '
        'font-family="sans-serif" font-size="11">'
        f"<title>{escape(title)}</title>"
        f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="13" '
        f'font-weight="bold">{escape(title)}</text>' + "".join(body) + "</svg>"
    )


def _legend(names: Sequence[str], corner: str = "top-right") -> list[str]:
    """Swatches and names inside the plot area, in the corner the data leaves free."""
    x = WIDTH - RIGHT - 150 if corner.endswith("right") else LEFT + 10
    first = TOP + 10 if corner.startswith("top") else HEIGHT - BOTTOM - 14 * len(names)
    parts = []
    for i, name in enumerate(names):
        y = first + 14 * i
        color = COLORS[i % len(COLORS)]
        parts.append(f'<rect x="{x}" y="{y - 8}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{x + 14}" y="{y + 1}">{escape(name[:24])}</text>')
    return parts


def line_chart(
    title: str,
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    *,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    diagonal: bool = False,
    legend: str = "top-right",
) -> str:
    frame = _Frame(
        x_range or _extent([x for s in series for x in s.xs]),
        y_range or _extent([y for s in series for y in s.ys], pad=0.05),
    )
    body = frame.axes(x_label, y_label)
    if diagonal:
        body.append(
            f'<line x1="{frame.x(frame.x0):.1f}" y1="{frame.y(frame.y0):.1f}" '
            f'x2="{frame.x(frame.x1):.1f}" y2="{frame.y(frame.y1):.1f}" '
            'stroke="#bbb" stroke-dasharray="4 3"/>'
        )
    for i, s in enumerate(series):
        points = " ".join(
            f"{frame.x(x):.1f},{frame.y(y):.1f}"
            for x, y in zip(s.xs, s.ys, strict=True)
            if math.isfinite(x) and math.isfinite(y)
        )
        body.append(
            f'<polyline points="{points}" fill="none" stroke-width="1.8" '
            f'stroke="{COLORS[i % len(COLORS)]}"/>'
        )
    return _svg(title, body + _legend([s.name for s in series], legend))


def scatter_chart(
    title: str,
    xs: Sequence[float],
    ys: Sequence[float],
    x_label: str,
    y_label: str,
    *,
    diagonal: bool = False,
) -> str:
    both = _extent([*xs, *ys], pad=0.05)
    frame = _Frame(both, both) if diagonal else _Frame(_extent(xs, 0.05), _extent(ys, 0.05))
    body = frame.axes(x_label, y_label)
    if diagonal:
        body.append(
            f'<line x1="{frame.x(both[0]):.1f}" y1="{frame.y(both[0]):.1f}" '
            f'x2="{frame.x(both[1]):.1f}" y2="{frame.y(both[1]):.1f}" '
            'stroke="#bbb" stroke-dasharray="4 3"/>'
        )
    body += [
        f'<circle cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="2" fill="{COLORS[0]}" '
        'fill-opacity="0.5"/>'
        for x, y in zip(xs, ys, strict=True)
    ]
    return _svg(title, body)


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], x_label: str) -> str:
    """Horizontal bars, first label on top; the height grows with the number of bars."""
    row = 18
    height = TOP + BOTTOM + row * max(len(labels), 1)
    left = 150
    top_value = max([v for v in values if math.isfinite(v)] + [0.0]) or 1.0
    scale = (WIDTH - left - RIGHT - 50) / top_value
    body = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = TOP + i * row
        width = max(value, 0.0) * scale if math.isfinite(value) else 0.0
        body.append(
            f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{escape(label[:28])}</text>'
        )
        body.append(
            f'<rect x="{left}" y="{y + 3}" width="{width:.1f}" height="{row - 5}" '
            f'fill="{COLORS[0]}"/>'
        )
        body.append(f'<text x="{left + width + 4:.1f}" y="{y + 13}">{fmt(value)}</text>')
    body.append(
        f'<text x="{(left + WIDTH - RIGHT) / 2:.1f}" y="{height - 8}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    return _svg(title, body, height)


def histogram(title: str, values: Sequence[float], x_label: str, bins: int = 30) -> str:
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    low, high = _extent(finite.tolist())
    counts, edges = np.histogram(finite, bins=bins, range=(low, high))
    frame = _Frame((low, high), (0.0, float(max(counts.max(initial=0), 1)) * 1.05))
    body = frame.axes(x_label, "rows")
    for count, a, b in zip(counts, edges[:-1], edges[1:], strict=True):
        x, y = frame.x(float(a)), frame.y(float(count))
        width = max(frame.x(float(b)) - x - 1, 0.5)
        body.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
            f'height="{frame.y(0.0) - y:.1f}" fill="{COLORS[0]}"/>'
        )
    return _svg(title, body)


def heatmap(
    title: str, matrix: Sequence[Sequence[int]], labels: Sequence[str], x_label: str, y_label: str
) -> str:
    """A square count matrix (rows: y_label, columns: x_label) with the counts written in."""
    n = max(len(labels), 1)
    size = min(28 * n, HEIGHT - TOP - BOTTOM, 400)
    cell = size / n
    left = LEFT + 60
    height = TOP + size + BOTTOM + 20
    top_count = max((max(r) for r in matrix if len(r)), default=0) or 1
    body = []
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            shade = 0.08 + 0.92 * count / top_count
            body.append(
                f'<rect x="{left + j * cell:.1f}" y="{TOP + i * cell:.1f}" '
                f'width="{cell:.1f}" height="{cell:.1f}" fill="{COLORS[0]}" '
                f'fill-opacity="{shade:.2f}" stroke="#fff"/>'
            )
            if cell >= 14:
                color = "#fff" if shade > 0.55 else "#000"
                body.append(
                    f'<text x="{left + (j + 0.5) * cell:.1f}" '
                    f'y="{TOP + (i + 0.5) * cell + 4:.1f}" text-anchor="middle" '
                    f'fill="{color}">{count}</text>'
                )
    for i, label in enumerate(labels):
        body.append(
            f'<text x="{left - 4}" y="{TOP + (i + 0.5) * cell + 4:.1f}" '
            f'text-anchor="end">{escape(label[:16])}</text>'
        )
        body.append(
            f'<text x="{left + (i + 0.5) * cell:.1f}" y="{TOP + size + 14:.1f}" '
            f'text-anchor="middle">{escape(label[:8])}</text>'
        )
    body.append(
        f'<text x="{left + size / 2:.1f}" y="{TOP + size + 32:.1f}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    body.append(f'<text x="{left - 4}" y="{TOP - 6}" text-anchor="end">{escape(y_label)}</text>')
    return _svg(title, body, int(height))
