"""The certificate timeline of a change as inline SVG: each certificate an Edge held across the
runs, its validity against the runs' times (no JavaScript, no network: viewable offline)."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable
from dataclasses import dataclass

WIDTH, ROW, LABEL, TOP = 960, 22, 330, 34


@dataclass(frozen=True)
class Bar:
    """One certificate: its label, validity and whether the Edge uses it for a service."""

    label: str
    not_before: dt.datetime
    not_after: dt.datetime
    services: str = ""


@dataclass(frozen=True)
class Mark:
    """A moment on the timeline (a run), labelled."""

    label: str
    at: dt.datetime


def parse_time(text: object) -> dt.datetime | None:
    """An ISO-8601 time from a record, None when absent or malformed."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def svg(bars: Iterable[Bar], marks: Iterable[Mark], now: dt.datetime, warning_days: int) -> str:
    """The timeline: one bar per certificate, a line per run, the warning window shaded."""
    bars, marks = sorted(bars, key=lambda b: b.not_after), sorted(marks, key=lambda m: m.at)
    if not bars:
        return "<p>No certificate facts were recorded.</p>"
    warning_end = now + dt.timedelta(days=warning_days)
    start = min([b.not_before for b in bars] + [m.at for m in marks] + [now])
    end = max([b.not_after for b in bars] + [warning_end])
    span = (end - start).total_seconds() or 1.0
    height = TOP + ROW * len(bars) + 20

    def x(moment: dt.datetime) -> float:
        return LABEL + (WIDTH - LABEL - 10) * (moment - start).total_seconds() / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="sans-serif" font-size="11" role="img">',
        f'<rect x="{x(now):.1f}" y="{TOP - 4}" width="{x(warning_end) - x(now):.1f}" '
        f'height="{ROW * len(bars) + 4}" fill="#f90" opacity="0.15"/>',
    ]
    for row, bar in enumerate(bars):
        y = TOP + row * ROW
        expired = bar.not_after <= now
        colour = "#c00" if expired else "#e80" if bar.not_after <= warning_end else "#36c"
        left, right = x(bar.not_before), x(bar.not_after)
        title = f"{bar.label} {bar.not_before:%Y-%m-%d} – {bar.not_after:%Y-%m-%d} {bar.services}"
        parts.append(
            f'<rect x="{left:.1f}" y="{y}" width="{max(right - left, 1):.1f}" height="{ROW - 6}" '
            f'fill="{colour}" opacity="0.8"><title>{html.escape(title)}</title></rect>'
        )
        text = bar.label + (f"  [{bar.services}]" if bar.services else "")
        parts.append(f'<text x="4" y="{y + ROW - 10}">{html.escape(text[:58])}</text>')
    for mark in marks:
        left = x(mark.at)
        parts.append(
            f'<line x1="{left:.1f}" y1="{TOP - 8}" x2="{left:.1f}" y2="{height - 16}" '
            f'stroke="#000" stroke-dasharray="2,2"><title>{html.escape(mark.label)} '
            f"{mark.at:%Y-%m-%d %H:%M}Z</title></line>"
        )
    parts.append(
        f'<line x1="{x(now):.1f}" y1="{TOP - 8}" x2="{x(now):.1f}" y2="{height - 16}" '
        'stroke="#000" stroke-width="2"/>'
    )
    parts.append(f'<text x="{x(now) + 3:.1f}" y="{TOP - 12}">now {now:%Y-%m-%d}</text>')
    parts.append(f'<text x="{LABEL}" y="{height - 4}">{start:%Y-%m-%d}</text>')
    parts.append(f'<text x="{WIDTH - 80}" y="{height - 4}">{end:%Y-%m-%d}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
