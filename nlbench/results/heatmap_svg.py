"""The per-run accuracy heatmap as SVG text.

Why: a run's heatmap was a matplotlib PNG, about 0.1 s per run (a third of a small tracked run). The SVG is the
same picture (viridis cells, values written in, a colour bar) made by string formatting in well under a
millisecond; the MLflow UI shows SVG artifacts like PNGs, and it stays sharp at any zoom. The suite report's
figures (`nlbench report`) are still matplotlib's.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from html import escape

CELL_W, CELL_H = 46, 26  # px
LEFT, TOP, BOTTOM, BAR = 78, 34, 48, 74  # margins: y labels, title, x labels, colour bar and its ticks
FONT = 'font-family="DejaVu Sans, Arial, sans-serif"'


def viridis(v: float) -> str:
    """`#rrggbb` of matplotlib's viridis at v in [0, 1]: the entry of its 256-colour table matplotlib picks."""
    r, g, b = _viridis_table()[min(max(int(v * 256), 0), 255)]
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


@functools.cache
def _viridis_table() -> tuple[tuple[float, float, float], ...]:
    from matplotlib import colormaps

    return tuple(tuple(c[:3]) for c in colormaps["viridis"].colors)


def accuracy_heatmap_svg(R: Sequence[Sequence[float]], b: Sequence[float] | None = None, title: str = "") -> str:
    """R as an SVG heatmap: rows = after training on experience i (b first, as `init`), columns = evaluated on
    experience j; a cell that is not a number is left empty."""
    rows = ([list(b)] if b is not None else []) + [list(r) for r in R]
    labels = (["init"] if b is not None else []) + [str(i) for i in range(len(R))]
    n_cols = max((len(r) for r in rows), default=0)
    width = max(LEFT + n_cols * CELL_W + BAR, 7 * len(title) + 24)  # a long title widens the picture
    height = TOP + len(rows) * CELL_H + BOTTOM
    grid_bottom = TOP + len(rows) * CELL_H
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" {FONT} font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2:.0f}" y="18" text-anchor="middle" font-size="12">{escape(title)}</text>']
    for i, (label, row) in enumerate(zip(labels, rows, strict=True)):
        y = TOP + i * CELL_H
        out.append(f'<text x="{LEFT - 6}" y="{y + CELL_H / 2 + 4:.0f}" text-anchor="end">{escape(label)}</text>')
        for j, v in enumerate(row):
            x = LEFT + j * CELL_W
            if not (isinstance(v, int | float) and math.isfinite(v)):
                continue
            out.append(f'<rect x="{x}" y="{y}" width="{CELL_W}" height="{CELL_H}" fill="{viridis(v)}"/>')
            out.append(f'<text x="{x + CELL_W / 2:.0f}" y="{y + CELL_H / 2 + 4:.0f}" text-anchor="middle" '
                       f'font-size="10" fill="{"black" if v > 0.6 else "white"}">{v:.2f}</text>')
    out += [f'<text x="{LEFT + j * CELL_W + CELL_W / 2:.0f}" y="{grid_bottom + 15}" text-anchor="middle">{j}</text>'
            for j in range(n_cols)]
    out.append(f'<text x="{LEFT + n_cols * CELL_W / 2:.0f}" y="{grid_bottom + 36}" text-anchor="middle">'
               'evaluated on experience</text>')
    out.append(f'<text transform="translate(22 {TOP + len(rows) * CELL_H / 2:.0f}) rotate(-90)" '
               'text-anchor="middle">after training on</text>')
    out += colour_bar(LEFT + n_cols * CELL_W + 12, TOP, len(rows) * CELL_H)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def colour_bar(x: int, y: int, h: int) -> list[str]:
    """A vertical viridis bar from 0 (bottom) to 1 (top), ticked every 0.2."""
    stops = "".join(f'<stop offset="{k / 10:.1f}" stop-color="{viridis(1 - k / 10)}"/>' for k in range(11))
    ticks = [f'<text x="{x + 16}" y="{y + h * (1 - t / 5) + 4:.0f}">{t / 5:.1f}</text>' for t in range(6)]
    return [f'<defs><linearGradient id="viridis" x1="0" y1="0" x2="0" y2="1">{stops}</linearGradient></defs>',
            f'<rect x="{x}" y="{y}" width="12" height="{h}" fill="url(#viridis)" stroke="#444" stroke-width="0.5"/>',
            *ticks,
            f'<text transform="translate({x + 50} {y + h / 2:.0f}) rotate(-90)" text-anchor="middle">accuracy</text>']
