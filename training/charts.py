"""Line charts as standalone SVG documents, with the standard library only (Django-free).

Benchmarks such as the flywheel simulation write their curves next to their JSON reports.
matplotlib is not a dependency of the project, and an SVG file opens in any browser and diffs
as text. The output is deterministic: the same input always gives the same string.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

# Okabe-Ito: told apart with the common colour-vision deficiencies (yellow last: faint on white).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
_LEFT, _RIGHT, _TOP, _BOTTOM = 72, 190, 44, 40  # document margins (px); the legend sits right
_PANEL_TOP, _PANEL_BOTTOM = 30, 26  # inside a panel: room for its title and its x tick labels
_DASH, _END = ' stroke-dasharray="6 4"', ' text-anchor="end"'


@dataclass(frozen=True)
class Line:
    """One series; ``None`` (or nan/inf) where it has no value for that x breaks the line."""

    label: str
    values: Sequence[float | None]
    dashed: bool = False


@dataclass(frozen=True)
class Panel:
    """One chart of the stack. Bounds left as ``None`` come from the data; ``percent`` panels
    hold fractions (0..1) and label their ticks 0%..100%."""

    title: str
    y_label: str
    lines: Sequence[Line]
    y_min: float | None = None
    y_max: float | None = None
    percent: bool = False


def _finite(value: float | None) -> float | None:
    """nan and inf cannot be placed on an axis: they count as missing."""
    return float(value) if value is not None and math.isfinite(value) else None


def _n(value: float) -> str:
    """Coordinates with one decimal keep files small; a pixel needs no more."""
    return f"{value:.1f}".removesuffix(".0")


def _ticks(
    lo: float, hi: float, *, free_lo: bool, free_hi: bool, most: int, integer: bool = False
) -> tuple[float, float, list[float], float]:
    """Round steps (1, 2, 2.5 or 5 times a power of ten), the finest giving at most ``most``
    ticks, so that labels read easily; free ends move out to the next tick. Needs ``hi > lo``.
    Returns the (possibly widened) bounds, the ticks and the step."""
    exponent = math.floor(math.log10(hi - lo)) - 2
    while True:
        for mantissa in (1.0, 2.0, 2.5, 5.0):
            step = mantissa * 10.0**exponent
            if integer and (step < 1 or step % 1):
                continue
            a = math.floor(lo / step + 1e-9) * step if free_lo else lo
            b = math.ceil(hi / step - 1e-9) * step if free_hi else hi
            first, last = math.ceil(a / step - 1e-9), math.floor(b / step + 1e-9)
            if last - first + 1 <= most:
                return a, b, [k * step for k in range(first, last + 1)], step
        exponent += 1


def _label(value: float, step: float, percent: bool) -> str:
    """As many decimals as the step needs (0.25 needs two), and never "-0"."""
    if percent:
        value, step = value * 100, step * 100
    decimals = next((d for d in range(7) if abs(round(step, d) - step) < step * 1e-6), 6)
    text = f"{value:.{decimals}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text + ("%" if percent else "")


def _y_range(panel: Panel) -> tuple[float, float, list[float], float]:
    """The panel's y bounds and ticks: given bounds are kept, the others follow the data."""
    values = [v for line in panel.lines for v in map(_finite, line.values) if v is not None]
    data_lo, data_hi = (min(values), max(values)) if values else (0.0, 1.0)
    lo = panel.y_min if panel.y_min is not None else min(data_lo, 0.0)
    hi = panel.y_max if panel.y_max is not None else data_hi
    if hi <= lo:  # constant values, or given bounds that leave no room
        pad = max(abs(lo), abs(hi)) * 0.1 or 1.0
        if panel.y_max is None:
            hi = lo + pad
        elif panel.y_min is None:
            lo = hi - pad
        else:
            lo, hi = min(lo, hi) - pad, max(lo, hi) + pad
    span = hi - lo
    if panel.y_max is None:
        hi += span * 0.05  # headroom, but shares of at most 100% stop at 100%
        if panel.percent and data_hi <= 1 < hi and lo < 1:
            hi = 1.0
    if panel.y_min is None and lo < 0:
        lo -= span * 0.05
    return _ticks(lo, hi, free_lo=panel.y_min is None, free_hi=panel.y_max is None, most=6)


def _text(x: float, y: float, text: str, extra: str = "") -> str:
    return f'<text x="{_n(x)}" y="{_n(y)}"{extra}>{escape(text)}</text>'


def _panel(
    index: int,
    panel: Panel,
    xs: Sequence[float | None],
    top: float,
    height: float,
    plot_w: float,
    sx: Callable[[float], float],
    x_ticks: tuple[list[float], float],
) -> list[str]:
    """One panel's elements: frame, grid and ticks, title, y label, lines and legend."""
    lo, hi, y_ticks, y_step = _y_range(panel)
    y0, y1 = top + _PANEL_TOP, top + height - _PANEL_BOTTOM
    right = _LEFT + plot_w

    def sy(value: float) -> float:
        return y1 - (value - lo) / (hi - lo) * (y1 - y0)

    box = f'x="{_LEFT}" y="{_n(y0)}" width="{_n(plot_w)}" height="{_n(y1 - y0)}"'
    out = [f'<defs><clipPath id="plot-{index}"><rect {box}/></clipPath></defs>']
    out.append(_text(_LEFT, top + 18, panel.title, ' font-size="13" font-weight="bold"'))
    middle = (y0 + y1) / 2
    rotate = f' text-anchor="middle" transform="rotate(-90 16 {_n(middle)})"'
    out.append(_text(16, middle, panel.y_label, rotate))
    for t in y_ticks:
        y = _n(sy(t))
        out.append(f'<line x1="{_LEFT}" y1="{y}" x2="{_n(right)}" y2="{y}" stroke="#e5e5e5"/>')
        out.append(_text(_LEFT - 6, sy(t) + 4, _label(t, y_step, panel.percent), _END))
    ticks, step = x_ticks
    for t in ticks:
        x = _n(sx(t))
        out.append(f'<line x1="{x}" y1="{_n(y1)}" x2="{x}" y2="{_n(y1 + 4)}" stroke="#333333"/>')
        out.append(_text(sx(t), y1 + 16, _label(t, step, False), ' text-anchor="middle"'))
    out.append(f'<rect {box} fill="none" stroke="#333333"/>')
    out.append(f'<g clip-path="url(#plot-{index})" fill="none" stroke-width="1.8">')
    legend: list[str] = []
    for number, line in enumerate(panel.lines):
        colour = quoteattr(PALETTE[number % len(PALETTE)])
        dash = _DASH if line.dashed else ""
        segments: list[list[str]] = [[]]
        for x_value, raw in zip(xs, line.values, strict=True):
            y_value = _finite(raw)
            if x_value is None or y_value is None:
                if segments[-1]:
                    segments.append([])
                continue
            segments[-1].append(f"{_n(sx(x_value))},{_n(sy(y_value))}")
        for points in segments:
            if len(points) == 1:  # an isolated value: a dot, or it would not show at all
                cx, cy = points[0].split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill={colour} stroke="none"/>')
            elif points:
                out.append(f'<polyline points="{" ".join(points)}" stroke={colour}{dash}/>')
        ly = _n(y0 + 8 + number * 16)
        swatch = f'x1="{_n(right + 14)}" y1="{ly}" x2="{_n(right + 36)}" y2="{ly}"'
        legend.append(f'<line {swatch} stroke={colour} stroke-width="2"{dash}/>')
        legend.append(_text(right + 42, y0 + 12 + number * 16, line.label))
    return [*out, "</g>", *legend]


def panels_svg(
    x: Sequence[float],
    panels: Sequence[Panel],
    *,
    title: str,
    x_label: str,
    width: int = 900,
    panel_height: int = 220,
) -> str:
    """Panels stacked vertically sharing the x axis; returns the SVG document text."""
    for panel in panels:
        for line in panel.lines:
            if len(line.values) != len(x):
                raise ValueError(
                    f"line {line.label!r} of panel {panel.title!r} has {len(line.values)} "
                    f"values for {len(x)} x values"
                )
    xs = [_finite(v) for v in x]
    known = [v for v in xs if v is not None]
    x_lo, x_hi = (min(known), max(known)) if known else (0.0, 1.0)
    if x_hi <= x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    integer = all(v == int(v) for v in known)
    x_lo, x_hi, x_ticks, x_step = _ticks(
        x_lo, x_hi, free_lo=False, free_hi=False, most=8, integer=integer
    )
    plot_w = max(width - _LEFT - _RIGHT, 1)

    def sx(value: float) -> float:
        return _LEFT + (value - x_lo) / (x_hi - x_lo) * plot_w

    height = _TOP + len(panels) * panel_height + _BOTTOM
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" '
        'font-size="11" fill="#222222">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        _text(width / 2, 26, title, ' font-size="16" font-weight="bold" text-anchor="middle"'),
    ]
    for index, panel in enumerate(panels):
        top = _TOP + index * panel_height
        out += _panel(index, panel, xs, top, panel_height, plot_w, sx, (x_ticks, x_step))
    out.append(_text(_LEFT + plot_w / 2, height - 12, x_label, ' text-anchor="middle"'))
    out.append("</svg>")
    return "\n".join(out) + "\n"
