"""Inline SVG charts, drawn on the server (no script): a rollout's new version against its
old one over the rollout, with the gate thresholds and the step changes drawn.

Two panels share the time axis: the error rate (new, old, and `max_error_rate` as a
horizontal line; `max_error_ratio` as old x ratio, dashed) and the mean latency in ms
(new, old, and old x `max_latency_ratio`, dashed). Colours are presentation attributes,
so the page's Content-Security-Policy needs no inline styles.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

from controller.web.reader import GatePoint

WIDTH, PANEL, LEFT, RIGHT, TOP, BOTTOM = 760, 170, 64, 16, 22, 26
NEW, OLD, LIMIT, MARK = "#1f6feb", "#8b949e", "#d1242f", "#9a6700"


@dataclass(frozen=True, slots=True)
class Marker:
    t: float
    label: str


@dataclass(frozen=True, slots=True)
class _Series:
    name: str
    colour: str
    points: list[tuple[float, float]]
    dashed: bool = False


def rollout_chart(
    points: Sequence[GatePoint], markers: Sequence[Marker], start: float, end: float
) -> Markup:
    """Both panels as one <svg>, or a short note when there is nothing measured yet."""
    if not points:
        return Markup('<p class="note">no gate numbers measured yet for this rollout</p>')
    end = max(end, start + 1.0, *(p.t for p in points))
    rate = [
        _Series("new error rate", NEW, _xy(points, "new_error_rate")),
        _Series("old error rate", OLD, _xy(points, "old_error_rate")),
        _Series("old x max_error_ratio", LIMIT, _product(points, "old_error_rate",
                                                          "max_error_ratio"), dashed=True),
    ]  # fmt: skip
    latency = [
        _Series("new latency ms", NEW, _xy(points, "new_latency_ms")),
        _Series("old latency ms", OLD, _xy(points, "old_latency_ms")),
        _Series("old x max_latency_ratio", LIMIT,
                _product(points, "old_latency_ms", "max_latency_ratio"), dashed=True),
    ]  # fmt: skip
    max_rate = _last(points, "max_error_rate")
    height = 2 * (PANEL + TOP + BOTTOM)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'aria-label="error rate and latency of the new and old versions">'
    ]
    parts += _panel(0, "error rate", rate, max_rate, markers, start, end, percent=True)
    parts += _panel(PANEL + TOP + BOTTOM, "latency (ms)", latency, None, markers, start, end)
    parts.append("</svg>")
    return Markup("".join(parts))


def _xy(points: Sequence[GatePoint], key: str) -> list[tuple[float, float]]:
    return [(p.t, p.numbers[key]) for p in points if key in p.numbers]


def _product(points: Sequence[GatePoint], key: str, factor: str) -> list[tuple[float, float]]:
    return [
        (p.t, p.numbers[key] * p.numbers[factor])
        for p in points
        if key in p.numbers and factor in p.numbers
    ]


def _last(points: Sequence[GatePoint], key: str) -> float | None:
    values = [p.numbers[key] for p in points if key in p.numbers]
    return values[-1] if values else None


def _panel(
    y0: float,
    title: str,
    series: list[_Series],
    limit: float | None,
    markers: Sequence[Marker],
    start: float,
    end: float,
    *,
    percent: bool = False,
) -> list[str]:
    top, bottom = y0 + TOP, y0 + TOP + PANEL
    values = [v for s in series for _, v in s.points] + ([limit] if limit is not None else [])
    high = max(values, default=0.0) * 1.15 or 1.0

    def x(t: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (t - start) / (end - start)

    def y(v: float) -> float:
        return bottom - PANEL * min(v, high) / high

    def label(v: float) -> str:
        return f"{v * 100:.1f}%" if percent else f"{v:.0f}"

    out = [
        f'<text x="{LEFT}" y="{y0 + 14}" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" stroke="#57606a"/>',
        f'<line x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{bottom}" stroke="#57606a"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        v = high * frac
        out.append(
            f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end">'
            f"{label(v)}</text>"
        )
    out.append(
        f'<text x="{WIDTH - RIGHT}" y="{bottom + 16}" font-size="10" text-anchor="end">'
        f"{time.strftime('%H:%M:%S', time.gmtime(end))} UTC</text>"
    )
    out.append(
        f'<text x="{LEFT}" y="{bottom + 16}" font-size="10">'
        f"{time.strftime('%H:%M:%S', time.gmtime(start))}</text>"
    )
    for m in markers:
        if start <= m.t <= end:
            mx = x(m.t)
            out.append(
                f'<line class="step" x1="{mx:.1f}" y1="{top}" x2="{mx:.1f}" y2="{bottom}" '
                f'stroke="{MARK}" stroke-dasharray="2 3"/>'
                f'<text x="{mx + 2:.1f}" y="{top + 10}" font-size="9" fill="{MARK}">'
                f"{escape(m.label)}</text>"
            )
    if limit is not None:
        out.append(
            f'<line class="threshold" x1="{LEFT}" y1="{y(limit):.1f}" x2="{WIDTH - RIGHT}" '
            f'y2="{y(limit):.1f}" stroke="{LIMIT}" stroke-width="1.5"/>'
            f'<text x="{WIDTH - RIGHT - 2}" y="{y(limit) - 3:.1f}" font-size="10" '
            f'text-anchor="end" fill="{LIMIT}">max {label(limit)}</text>'
        )
    legend_x = LEFT + 120
    for s in series:
        if not s.points:
            continue
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in s.points)
        out.append(
            f'<polyline class="series" data-series="{escape(s.name)}" points="{coords}" '
            f'fill="none" stroke="{s.colour}" stroke-width="2"{dash}/>'
        )
        if not s.dashed:
            out += [
                f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5" fill="{s.colour}"/>'
                for t, v in s.points
            ]
        out.append(
            f'<line x1="{legend_x}" y1="{y0 + 10}" x2="{legend_x + 18}" y2="{y0 + 10}" '
            f'stroke="{s.colour}" stroke-width="2"{dash}/>'
            f'<text x="{legend_x + 22}" y="{y0 + 14}" font-size="10">{escape(s.name)}</text>'
        )
        legend_x += 40 + 6 * len(s.name)
    return out


__all__ = ["Marker", "rollout_chart"]
