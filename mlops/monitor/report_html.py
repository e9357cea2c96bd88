"""A self-contained HTML monitoring report: inline SVG drawn by hand, no scripts, no network.

The page is well-formed XML as well as HTML, so tests can parse it strictly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from html import escape
from pathlib import Path

from mlops.core.fsutil import atomic_write_text
from mlops.monitor.drift import DriftReport, FeatureDrift, Histogram
from mlops.monitor.history import MonitorRecord, series

REFERENCE_COLOUR = "#1f77b4"
BATCH_COLOUR = "#ff7f0e"
ALERT_COLOUR = "#c62828"
HEALTHY_COLOUR = "#2e7d32"

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 24px;
       color: #222; background: #fff; }
h1 { margin: 0 0 8px 0; font-size: 24px; }
h2 { margin: 28px 0 10px 0; font-size: 19px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.badge { display: inline-block; padding: 3px 12px; border-radius: 12px; color: #fff;
         font-weight: 600; font-size: 14px; vertical-align: middle; margin-left: 10px; }
.healthy { background: #2e7d32; }
.alert { background: #c62828; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 12px 0; }
dl.facts dt { color: #666; }
dl.facts dd { margin: 0; font-family: ui-monospace, monospace; }
ul.alerts li { color: #c62828; }
table { border-collapse: collapse; font-size: 14px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e5e5e5; text-align: right; }
th { background: #f5f5f5; }
td.name, th.name, td.left, th.left { text-align: left; }
td.name, th.name { font-family: ui-monospace, monospace; }
tr.drifted td { background: #fde4e4; color: #8e0000; font-weight: 600; }
.grid { display: flex; flex-wrap: wrap; gap: 14px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px; }
.card.drifted { border-color: #c62828; box-shadow: 0 0 0 1px #c62828; }
.card h3 { margin: 0 0 4px 0; font-size: 14px; font-family: ui-monospace, monospace; }
.card p { margin: 0; font-size: 12px; color: #555; }
.legend span { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px;
               vertical-align: middle; }
svg text { font-family: system-ui, sans-serif; }
"""


def render_html_report(
    record: MonitorRecord, history: Sequence[MonitorRecord] = (), title: str | None = None
) -> str:
    """The report of ``record`` as one HTML page, with ``history`` drawn over time.

    Everything comes from the records (the drift dict holds the plot histograms), so a past
    result can be drawn again from the monitoring history alone.
    """
    drift = DriftReport.from_dict(record.drift)
    heading = title or f"Monitoring report: {record.model} version {record.version}"
    status = "healthy" if record.healthy else "alert"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8" />',
        f"<title>{escape(heading)}</title><style>{_CSS}</style></head><body>",
        f'<h1>{escape(heading)}<span class="badge {status}">{status.upper()}</span></h1>',
        _facts(record, drift),
        _alerts(record),
        _metrics_table(record),
        "<h2>Drift scores</h2>",
        _scores_table(drift),
        "<h2>Distributions: reference against batch</h2>",
        '<p class="legend">',
        f'<span style="background:{REFERENCE_COLOUR};opacity:0.6"></span>reference',
        f'<span style="background:{BATCH_COLOUR};opacity:0.6"></span>batch</p>',
        '<div class="grid">',
        *(_feature_card(f) for f in _all_scores(drift)),
        "</div>",
        "<h2>History</h2>",
        _history(record, history, drift),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_html_report(
    path: Path,
    record: MonitorRecord,
    history: Sequence[MonitorRecord] = (),
    title: str | None = None,
) -> None:
    """Write :func:`render_html_report` to ``path`` atomically."""
    atomic_write_text(path, render_html_report(record, history, title))


def _all_scores(drift: DriftReport) -> list[FeatureDrift]:
    return [*drift.features, *([drift.prediction] if drift.prediction else [])]


def _facts(record: MonitorRecord, drift: DriftReport) -> str:
    rows = [
        ("time", _short_time(record.time) + " UTC"),
        ("model", f"{record.model} version {record.version}"),
        ("batch", record.batch_path),
        ("batch hash", record.batch_hash),
        ("rows", f"{drift.batch_rows:,} in the batch, {drift.reference_rows:,} in the reference"),
        (
            "drifted features",
            f"{len(drift.drifted_features)} of {len(drift.features)} "
            f"({drift.drifted_share:.0%}; alert at {drift.thresholds.share:.0%})",
        ),
    ]
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    return f'<dl class="facts">{items}</dl>'


def _alerts(record: MonitorRecord) -> str:
    if not record.alerts:
        return ""
    items = "".join(f"<li>{escape(a)}</li>" for a in record.alerts)
    return f'<ul class="alerts">{items}</ul>'


def _metrics_table(record: MonitorRecord) -> str:
    if not record.metrics:
        return ""
    rows = []
    for name, value in sorted(record.metrics.items()):
        limit = record.limits.get(name)
        ok = limit is None or (value >= limit[1] if limit[0] == ">=" else value <= limit[1])
        rows.append(
            f'<tr class="{"" if ok else "drifted"}"><td class="name">{escape(name)}</td>'
            f"<td>{_fmt(value)}</td>"
            f"<td>{escape(f'{limit[0]} {_fmt(limit[1])}') if limit else ''}</td></tr>"
        )
    head = '<tr><th class="name">metric</th><th>value</th><th>limit</th></tr>'
    return f"<h2>Live metrics</h2><table>{head}{''.join(rows)}</table>"


def _scores_table(drift: DriftReport) -> str:
    head = (
        '<tr><th class="name">feature</th><th class="left">type</th><th class="left">test</th>'
        "<th>statistic</th><th>p-value</th><th>PSI</th><th>missing (ref / batch)</th>"
        "<th>drifted</th></tr>"
    )
    rows = []
    for f in _all_scores(drift):
        rows.append(
            f'<tr class="{"drifted" if f.drifted else ""}">'
            f'<td class="name">{escape(f.name)}</td><td class="left">{f.kind}</td>'
            f'<td class="left">{"KS" if f.test == "ks" else "chi-square"}</td>'
            f"<td>{_fmt(f.statistic)}</td><td>{_fmt(f.pvalue)}</td><td>{_fmt(f.psi)}</td>"
            f"<td>{f.reference_missing:.1%} / {f.batch_missing:.1%}</td>"
            f"<td>{'yes: ' + escape(', '.join(f.reasons)) if f.drifted else 'no'}</td></tr>"
        )
    th = drift.thresholds
    note = (
        f"<p>Drift when PSI &#8805; {_fmt(th.psi)}, KS p-value &lt; {_fmt(th.ks_pvalue)}, "
        f"chi-square p-value &lt; {_fmt(th.chi2_pvalue)} (a dash: test off).</p>"
    )
    return f"<table>{head}{''.join(rows)}</table>{note}"


def _feature_card(feature: FeatureDrift) -> str:
    css = "card drifted" if feature.drifted else "card"
    caption = f"{feature.kind}; PSI {_fmt(feature.psi)}; p-value {_fmt(feature.pvalue)}"
    if feature.drifted:
        caption += "; DRIFTED"
    chart = _numeric_svg(feature.histogram) if feature.kind == "numeric" else None
    if chart is None:
        chart = _category_svg(feature.histogram)
    return (
        f'<div class="{css}"><h3>{escape(feature.name)}</h3>{chart}<p>{escape(caption)}</p></div>'
    )


_W, _H = 350, 210
_LEFT, _RIGHT, _TOP, _BOTTOM = 46, 10, 12, 44


def _shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def _frame(ymax: float) -> tuple[list[str], float]:
    """The axes of a histogram panel with percentage grid lines; returns the y-axis top."""
    width, height = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    ticks = _nice_ticks(0.0, ymax)
    top = ticks[-1]
    out = [f'<rect x="{_LEFT}" y="{_TOP}" width="{width}" height="{height}" fill="#fafafa" />']
    for value in ticks:
        y = _TOP + height - height * value / top
        out.append(
            f'<line x1="{_LEFT}" x2="{_LEFT + width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3" />'
            f'<text x="{_LEFT - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
            f"{round(value * 100, 6):g}%</text>"
        )
    out.append(
        f'<text x="10" y="{_TOP + height / 2:.0f}" font-size="10" text-anchor="middle" '
        f'transform="rotate(-90 10 {_TOP + height / 2:.0f})">share of rows</text>'
    )
    return out, top


def _nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) covering [low, high]."""
    span = high - low if high > low else abs(high) or 1.0
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step + 1e-9) * step
    ticks = [first]
    while ticks[-1] < high - 1e-12 * span:
        ticks.append(first + len(ticks) * step)
    return ticks if len(ticks) > 1 else [first, first + step]


def _svg(body: list[str], width: int = _W, height: int = _H) -> str:
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img">{"".join(body)}</svg>'
    )


def _numeric_svg(hist: Histogram) -> str:
    if not hist.edges:
        return _svg([f'<text x="{_W / 2}" y="{_H / 2}" text-anchor="middle">no values</text>'])
    ref, cur = _shares(hist.reference), _shares(hist.batch)
    width, height = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    bins = len(ref)
    bar = width / bins
    body, ymax = _frame(max(max(ref), max(cur), 1e-9))
    for shares, colour in ((ref, REFERENCE_COLOUR), (cur, BATCH_COLOUR)):
        for i, share in enumerate(shares):
            h = height * share / ymax
            body.append(
                f'<rect x="{_LEFT + i * bar:.1f}" y="{_TOP + height - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" fill="{colour}" fill-opacity="0.5" />'
            )
    base = _TOP + height
    for i in (0, bins // 2, bins):
        x = _LEFT + i * bar
        anchor = "start" if i == 0 else "end" if i == bins else "middle"
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 4}" stroke="#555" />')
        body.append(
            f'<text x="{x:.1f}" y="{base + 16}" font-size="10" text-anchor="{anchor}">'
            f"{escape(_fmt(hist.edges[i]))}</text>"
        )
    return _svg(body)


def _category_svg(hist: Histogram) -> str:
    ref, cur = _shares(hist.reference), _shares(hist.batch)
    if not ref:
        return _svg([f'<text x="{_W / 2}" y="{_H / 2}" text-anchor="middle">no values</text>'])
    width, height = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    group = width / len(ref)
    bar = group * 0.4
    body, ymax = _frame(max(max(ref), max(cur), 1e-9))
    base = _TOP + height
    for i, label in enumerate(hist.labels):
        x = _LEFT + i * group + group * 0.1
        for j, (share, colour) in enumerate(((ref[i], REFERENCE_COLOUR), (cur[i], BATCH_COLOUR))):
            h = height * share / ymax
            body.append(
                f'<rect x="{x + j * bar:.1f}" y="{base - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}" fill-opacity="0.8" />'
            )
        centre = _LEFT + (i + 0.5) * group
        short = label if len(label) <= 12 else label[:11] + "\u2026"
        body.append(
            f'<text x="{centre:.1f}" y="{base + 12}" font-size="10" text-anchor="end" '
            f'transform="rotate(-35 {centre:.1f} {base + 12})">{escape(short)}</text>'
        )
    return _svg(body)


def _history(record: MonitorRecord, history: Sequence[MonitorRecord], drift: DriftReport) -> str:
    records = {r.record_id: r for r in history}
    records.setdefault(record.record_id, record)
    ordered = sorted(records.values(), key=lambda r: r.time)
    status = {r.time: r.healthy for r in ordered}
    charts = [
        _line_chart(
            "share of drifted features",
            series(ordered, "drifted_share"),
            status,
            (">=", drift.thresholds.share),
        )
    ]
    names = sorted({name for r in ordered for name in r.metrics})
    for name in names:
        limit = record.limits.get(name) or next(
            (r.limits[name] for r in reversed(ordered) if name in r.limits), None
        )
        charts.append(_line_chart(name, series(ordered, name), status, limit))
    return '<div class="grid">' + "".join(charts) + "</div>"


_LW, _LH = 540, 240


def _line_chart(
    name: str,
    points: list[tuple[str, float]],
    healthy: dict[str, bool],
    limit: tuple[str, float] | None,
) -> str:
    """A metric over time (one point per result, evenly spaced), with its limit dashed."""
    left, right, top, bottom = 54, 16, 14, 40
    width, height = _LW - left - right, _LH - top - bottom
    values = [v for _, v in points] + ([limit[1]] if limit else [])
    pad = (max(values) - min(values)) * 0.05  # keep points off the frame
    ticks = _nice_ticks(min(values) - pad, max(values) + pad)
    low, high = ticks[0], ticks[-1]

    def y(value: float) -> float:
        return top + height - height * (value - low) / (high - low)

    def x(index: int) -> float:
        return left + (width * index / (len(points) - 1) if len(points) > 1 else width / 2)

    body = [f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="#fafafa" />']
    for value in ticks:
        body.append(
            f'<line x1="{left}" x2="{left + width}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            f'stroke="#e3e3e3" /><text x="{left - 4}" y="{y(value) + 4:.1f}" font-size="10" '
            f'text-anchor="end">{escape(_fmt(value))}</text>'
        )
    if limit:
        body.append(
            f'<line x1="{left}" x2="{left + width}" y1="{y(limit[1]):.1f}" y2="{y(limit[1]):.1f}" '
            f'stroke="{ALERT_COLOUR}" stroke-width="1.5" stroke-dasharray="6 4" />'
            f'<text x="{left + width - 4}" y="{y(limit[1]) - 5:.1f}" font-size="11" '
            f'text-anchor="end" fill="{ALERT_COLOUR}">'
            f"limit {escape(limit[0])} {escape(_fmt(limit[1]))}</text>"
        )
    path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, (_, v) in enumerate(points))
    body.append(f'<polyline points="{path}" fill="none" stroke="#555" stroke-width="1.5" />')
    for i, (time, value) in enumerate(points):
        colour = HEALTHY_COLOUR if healthy.get(time, True) else ALERT_COLOUR
        body.append(
            f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="4" fill="{colour}">'
            f"<title>{escape(_short_time(time))}: {escape(_fmt(value))}</title></circle>"
        )
    last = len(points) - 1
    for i in sorted({0, last // 2, last}):
        anchor = "middle" if i not in (0, last) or last == 0 else "start" if i == 0 else "end"
        body.append(
            f'<text x="{x(i):.1f}" y="{top + height + 16}" font-size="10" '
            f'text-anchor="{anchor}">{escape(_short_time(points[i][0]))}</text>'
        )
    body.append(
        f'<text x="{left + width / 2}" y="{_LH - 6}" font-size="11" text-anchor="middle">'
        "time of the batch (UTC)</text>"
    )
    return (
        f'<div class="card"><h3>{escape(name)}</h3>'
        + _svg(body, _LW, _LH)
        + "<p>green: healthy result; red: alert</p></div>"
    )


def _short_time(value: str) -> str:
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return value


def _fmt(value: float | None) -> str:
    """Numbers for people: three significant digits, scientific when tiny."""
    if value is None:
        return "\u2013"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.3g}" if abs(value) < 1e3 else f"{value:,.0f}"
