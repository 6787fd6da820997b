"""Inline SVG line charts (no plotting dependency): a report page stays one self-contained file."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

__all__ = ["line_chart"]

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf")


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    start = math.ceil(lo / step) * step
    return [start + k * step for k in range(int((hi - start) / step + 1e-9) + 1)]


def line_chart(series: Sequence[tuple[str, Sequence[float], Sequence[float | None]]], *, title: str,
               xlabel: str, ylabel: str, width: int = 560, height: int = 300) -> str:
    """``series``: (label, xs, ys); a y of None or non-finite is left out. Returns an <svg> element."""
    pts = [[(float(x), float(y)) for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
           for _, xs, ys in series]
    allp = [p for ps in pts for p in ps]
    left, right, top, bottom = 60, 150, 30, 45
    w, h = width - left - right, height - top - bottom
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'role="img" aria-label="{escape(title)}" style="font:11px sans-serif">',
           f'<text x="{left}" y="18" style="font-weight:bold;font-size:13px">{escape(title)}</text>']
    if not allp:
        out.append(f'<text x="{left}" y="{top + h / 2}">no finite values</text></svg>')
        return "".join(out)
    x0, x1 = min(p[0] for p in allp), max(p[0] for p in allp)
    y0, y1 = min(0.0, min(p[1] for p in allp)), max(p[1] for p in allp)
    if x1 == x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    if y1 == y0:
        y1 = y0 + 1.0
    y1 += 0.05 * (y1 - y0)

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * w

    def sy(y: float) -> float:
        return top + h - (y - y0) / (y1 - y0) * h

    out.append(f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#999"/>')
    for t in _ticks(y0, y1):
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#eee"/>'
                   f'<text x="{left - 5}" y="{sy(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    for t in _ticks(x0, x1):
        out.append(f'<text x="{sx(t):.1f}" y="{top + h + 15}" text-anchor="middle">{t:g}</text>')
    out.append(f'<text x="{left + w / 2}" y="{height - 8}" text-anchor="middle">{escape(xlabel)}</text>'
               f'<text x="14" y="{top + h / 2}" transform="rotate(-90 14 {top + h / 2})" '
               f'text-anchor="middle">{escape(ylabel)}</text>')
    for k, ((label, _, _), ps) in enumerate(zip(series, pts)):
        c = _COLOURS[k % len(_COLOURS)]
        if ps:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in ps)
            out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{path}"/>')
            out.extend(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{c}"/>' for x, y in ps)
        ly = top + 12 + 15 * k
        out.append(f'<rect x="{left + w + 10}" y="{ly - 8}" width="10" height="10" fill="{c}"/>'
                   f'<text x="{left + w + 25}" y="{ly + 1}">{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)
