"""Which plots to draw: each stage's ``plots:`` outputs (with their x/y/template options)
and the top-level ``plots:`` section, written as DVC writes its plot definitions."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mlops.errors import PipelineError
from mlops.pipeline import PIPELINE_FILE
from mlops.pipeline.schema import OUTPUT_OPTIONS, PLOT_OPTIONS, OutputKind, Pipeline

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")
DATA_SUFFIXES = (".csv", ".tsv", ".json", ".yaml", ".yml")


class Template(StrEnum):
    """How a plot is drawn. DVC's names, and ``roc``/``pr``/``line``/``bar`` of mlops."""

    LINEAR = "linear"
    SIMPLE = "simple"
    SMOOTH = "smooth"
    LINE = "line"
    SCATTER = "scatter"
    BAR = "bar"
    BAR_HORIZONTAL = "bar_horizontal"
    BAR_HORIZONTAL_SORTED = "bar_horizontal_sorted"
    CONFUSION = "confusion"
    CONFUSION_NORMALIZED = "confusion_normalized"
    ROC = "roc"
    PR = "pr"


@dataclass(frozen=True)
class Source:
    """One file of a plot and the fields drawn from it (``x`` None: the row number)."""

    path: str
    x: str | None
    y: tuple[str, ...]  # empty: the file's last field


@dataclass(frozen=True)
class PlotSpec:
    """One plot: its sources and how to draw them."""

    id: str
    sources: tuple[Source, ...]
    template: Template = Template.LINEAR
    title: str = ""
    x_label: str = ""
    y_label: str = ""
    header: bool = True

    @property
    def is_image(self) -> bool:
        return all(s.path.lower().endswith(IMAGE_SUFFIXES) for s in self.sources)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "template": str(self.template),
            "title": self.title,
            "x_label": self.x_label,
            "y_label": self.y_label,
            "sources": [{"path": s.path, "x": s.x, "y": list(s.y)} for s in self.sources],
        }


def plot_specs(pipeline: Pipeline) -> list[PlotSpec]:
    """Every plot of a pipeline: the stages' plot outputs, then the top-level definitions."""
    specs = []
    for stage in pipeline.stages.values():
        for out in stage.outputs:
            if out.kind != OutputKind.PLOT:
                continue
            options = dict(out.plot)
            specs.append(_spec(out.path, out.path, options, f"stage {stage.name!r}"))
    for i, item in enumerate(_top_level(pipeline)):
        where = f"{pipeline.where}: plots[{i}]"
        if isinstance(item, str):
            specs.append(_spec(item, item, {}, where))
            continue
        if not isinstance(item, dict) or len(item) != 1:
            raise PipelineError(f"{where}: expected a path or {{name: {{x:, y:, ...}}}}")
        ((name, options),) = item.items()
        options = options or {}
        if not isinstance(options, dict):
            raise PipelineError(f"{where}: the options of {name!r} must be a mapping")
        specs.append(_spec(str(name), None, options, f"{where} ({name})"))
    return specs


def _top_level(pipeline: Pipeline) -> list[Any]:
    section = pipeline.sections.get("plots") or []
    if not isinstance(section, list):
        raise PipelineError(f"{PIPELINE_FILE}: 'plots' must be a list of plot definitions")
    return section


def _spec(name: str, path: str | None, options: dict[str, Any], where: str) -> PlotSpec:
    for key in options:
        if key not in PLOT_OPTIONS and key not in OUTPUT_OPTIONS:
            raise PipelineError(f"{where}: unknown plot option {key!r}")
    raw_template = options.get("template", "linear")
    try:
        template = Template(raw_template)
    except ValueError:
        known = ", ".join(t.value for t in Template)
        raise PipelineError(
            f"{where}: unknown template {raw_template!r} (known: {known})"
        ) from None
    x, y = options.get("x"), options.get("y")
    sources: list[Source]
    if isinstance(y, dict):  # {file: field or [fields]}: DVC's several-files form
        sources = [
            Source(str(file), _x_for(x, str(file), where), _fields(fields, where))
            for file, fields in y.items()
        ]
    else:
        file = path or name  # a top-level definition without a y mapping names a file
        sources = [Source(file, _x_for(x, file, where), _fields(y, where))]
    return PlotSpec(
        name,
        tuple(sources),
        template,
        str(options.get("title") or ""),
        str(options.get("x_label") or ""),
        str(options.get("y_label") or ""),
        bool(options.get("header", True)),
    )


def _x_for(x: Any, file: str, where: str) -> str | None:
    if x is None:
        return None
    if isinstance(x, dict):
        found = x.get(file)
        return None if found is None else str(found)
    if isinstance(x, str):
        return x
    raise PipelineError(f"{where}: 'x' must be a field name or {{file: field}}")


def _fields(y: Any, where: str) -> tuple[str, ...]:
    if y is None:
        return ()
    if isinstance(y, str):
        return (y,)
    if isinstance(y, list) and all(isinstance(v, str) for v in y):
        return tuple(y)
    raise PipelineError(f"{where}: 'y' must be a field, a list of fields or {{file: field}}")
