"""Plots drawn with plotly into one self-contained HTML page: plotly.js is inlined, images
are data URIs, nothing is fetched from a network.

The page marks itself when drawn: ``<body data-mlops-plots="ready N">`` once its N
charts are on screen, or ``"error: ..."`` if a script failed, for tests and scripts.
"""

from __future__ import annotations

import base64
from collections import Counter
from html import escape
from pathlib import Path
from typing import Any

from mlops.core.fsutil import atomic_write_text
from mlops.errors import MlopsError, WorkspaceConflict
from mlops.plots.data import PlotData, Series
from mlops.plots.spec import PlotSpec, Source, Template

MARKER = "mlops-plots-report"  # in every page, so that a later run may replace it
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
_LINES = {Template.LINEAR, Template.SIMPLE, Template.SMOOTH, Template.LINE, Template.ROC,
          Template.PR}  # fmt: skip
_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; margin: 0 0 6px 0; }
h2 { font-size: 17px; margin: 26px 0 6px 0; border-bottom: 1px solid #ddd; padding-bottom: 3px; }
.revs { color: #555; margin: 0 0 12px 0; }
.error { color: #b00020; font-size: 14px; }
.images { display: flex; flex-wrap: wrap; gap: 16px; }
.images figure { margin: 0; } .images img { max-width: 480px; border: 1px solid #ddd; }
.images figcaption { font-size: 13px; color: #555; }
"""
_ON_LOAD = """
window.addEventListener('error', function (e) {
  document.body.setAttribute('data-mlops-plots', 'error: ' + e.message);
});
window.addEventListener('load', function () {
  if ((document.body.getAttribute('data-mlops-plots') || '').indexOf('error') === 0) return;
  var drawn = document.querySelectorAll('.js-plotly-plot .main-svg').length > 0
    ? document.querySelectorAll('.js-plotly-plot').length : 0;
  document.body.setAttribute('data-mlops-plots', 'ready ' + drawn);
});
"""


def render_page(plots: list[PlotData], revs: list[str], title: str = "mlops plots") -> str:
    """The HTML page of ``plots`` at ``revs`` (see the module's docstring)."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise MlopsError("drawing plots needs plotly: pip install 'mlops[plots]'") from None
    sections = []
    for i, plot in enumerate(plots):
        heading = f"<h2>{escape(plot.spec.title or plot.spec.id)}</h2>"
        errors = "".join(
            f'<p class="error">{escape(s.rev)}: {escape(s.path)}: {escape(s.error)}</p>'
            for s in plot.series
            if s.error
        )
        body = _images(plot) if plot.spec.is_image else _chart(plot, i, len(revs) > 1)
        sections.append(f"<section>{heading}{errors}{body}</section>")
    if not plots:
        sections.append("<p>No plots: declare plot files under a stage's <code>plots:</code>.</p>")
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="generator" content="{MARKER}">'
        f"<title>{escape(title)}</title><style>{_CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head>\n'
        f"<body><h1>{escape(title)}</h1>"
        f'<p class="revs">revisions: {escape(", ".join(revs))}</p>'
        + "\n".join(sections)
        + f"<script>{_ON_LOAD}</script></body></html>\n"
    )


def _images(plot: PlotData) -> str:
    figures = []
    for s in plot.series:
        if not s.image:
            continue
        kind = _mime(s.path)
        data = base64.b64encode(s.image).decode()
        figures.append(
            f'<figure><img alt="{escape(s.path)}" src="data:{kind};base64,{data}">'
            f"<figcaption>{escape(s.rev)}: {escape(s.path)}</figcaption></figure>"
        )
    return f'<div class="images">{"".join(figures)}</div>'


def _mime(path: str) -> str:
    suffix = path.lower().rsplit(".", 1)[-1]
    return {"svg": "image/svg+xml", "jpg": "image/jpeg"}.get(suffix, f"image/{suffix}")


def _chart(plot: PlotData, index: int, several: bool) -> str:
    spec = plot.spec
    drawn = [s for s in plot.series if not s.error and s.rows]
    if not drawn:
        return ""
    if spec.template in (Template.CONFUSION, Template.CONFUSION_NORMALIZED):
        figure = _confusion(spec, drawn)
    else:
        figure = _xy(spec, drawn, several)
    html: str = figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"plot-{index}",
        config={"displaylogo": False, "responsive": True},
    )
    return html


def _source(spec: PlotSpec, path: str) -> Source:
    return next(s for s in spec.sources if s.path == path)


def _fields(source: Source, rows: tuple[dict[str, Any], ...]) -> tuple[str | None, list[str]]:
    """The x field (None: the row number) and the y fields (default: the last field)."""
    if source.y:
        return source.x, list(source.y)
    names = [n for n in rows[0] if n != source.x]
    return source.x, names[-1:]


def _xy(spec: PlotSpec, series: list[Series], several: bool) -> Any:
    import plotly.graph_objects as go

    figure = go.Figure()
    colour = 0
    horizontal = spec.template in (Template.BAR_HORIZONTAL, Template.BAR_HORIZONTAL_SORTED)
    for s in series:
        source = _source(spec, s.path)
        x_name, y_names = _fields(source, s.rows)
        for y_name in y_names:
            points = [
                (row.get(x_name) if x_name else i, row.get(y_name))
                for i, row in enumerate(s.rows)
                if row.get(y_name) is not None
            ]
            if spec.template is Template.BAR_HORIZONTAL_SORTED:
                points.sort(key=lambda p: (not isinstance(p[1], int | float), p[1]))
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            name = " ".join(part for part in (s.rev if several else "", s.path, y_name) if part)
            style = {"color": _COLOURS[colour % len(_COLOURS)]}
            colour += 1
            if horizontal:
                figure.add_trace(go.Bar(x=ys, y=xs, orientation="h", name=name, marker=style))
            elif spec.template is Template.BAR:
                figure.add_trace(go.Bar(x=xs, y=ys, name=name, marker=style))
            elif spec.template is Template.SCATTER:
                figure.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=name, marker=style))
            else:
                shape = "spline" if spec.template is Template.SMOOTH else "linear"
                figure.add_trace(
                    go.Scatter(x=xs, y=ys, mode="lines+markers", name=name, line=style,
                               line_shape=shape)
                )  # fmt: skip
    x_title = spec.x_label or _first(s.x for s in spec.sources) or "step"
    y_title = spec.y_label or ", ".join(dict.fromkeys(y for s in spec.sources for y in s.y))
    if horizontal:
        x_title, y_title = y_title, x_title
    figure.update_layout(
        xaxis_title=x_title,
        yaxis_title=y_title,
        barmode="group",
        margin={"l": 60, "r": 20, "t": 30, "b": 50},
        height=420,
        legend={"orientation": "h", "y": -0.2},
    )
    if spec.template in (Template.ROC, Template.PR):
        figure.update_xaxes(range=[0, 1])
        figure.update_yaxes(range=[0, 1.02])
        if spec.template is Template.ROC:
            figure.add_trace(
                go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance",
                           line={"dash": "dash", "color": "#999"})
            )  # fmt: skip
    return figure


def _confusion(spec: PlotSpec, series: list[Series]) -> Any:
    """One heat map per revision and file: counts of (actual, predicted) pairs."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    panels = []
    for s in series:
        source = _source(spec, s.path)
        actual = source.x or "actual"
        predicted = source.y[0] if source.y else "predicted"
        pairs = Counter((str(r.get(actual)), str(r.get(predicted))) for r in s.rows)
        labels = sorted({a for a, _ in pairs} | {p for _, p in pairs}, key=_label_order)
        grid: list[list[float]] = [[pairs.get((a, p), 0) for p in labels] for a in labels]
        if spec.template is Template.CONFUSION_NORMALIZED:
            grid = [[v / (sum(row) or 1) for v in row] for row in grid]
        panels.append((f"{s.rev}: {s.path}", labels, grid, actual, predicted))
    figure = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[0] for p in panels])
    for col, (_, labels, grid, actual, predicted) in enumerate(panels, 1):
        text = [[f"{v:.2f}" if isinstance(v, float) else str(v) for v in row] for row in grid]
        figure.add_trace(
            go.Heatmap(z=grid, x=labels, y=labels, text=text, texttemplate="%{text}",
                       colorscale="Blues", showscale=False),
            row=1, col=col,
        )  # fmt: skip
        figure.update_xaxes(title_text=spec.x_label or predicted, type="category", row=1, col=col)
        figure.update_yaxes(title_text=spec.y_label or actual, type="category", row=1, col=col)
    figure.update_layout(height=420, margin={"l": 60, "r": 20, "t": 40, "b": 50})
    return figure


def _label_order(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)


def _first(values: Any) -> str:
    return next((v for v in values if v), "")


def write_page(path: Path, page: str, force: bool = False) -> None:
    """Write the page atomically; a file there that is not an mlops plots page is kept
    unless ``force``."""
    if path.exists() and not force:
        with open(path, "rb") as handle:
            head = handle.read(4096)
        if MARKER.encode() not in head:
            raise WorkspaceConflict(
                f"{path} exists and is not an mlops plots page; pass --force to replace it"
            )
    atomic_write_text(path, page)
