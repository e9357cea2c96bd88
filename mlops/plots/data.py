"""The data of each plot at each revision, read from Git objects (or the workspace, or the
cache for a cached plot output) without checking anything out."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from mlops.core.git import resolve_revision
from mlops.core.repo import Repo
from mlops.core.yamlio import YamlProblem, parse_yaml
from mlops.errors import InputError, MlopsError
from mlops.pipeline import PIPELINE_FILE
from mlops.pipeline.lock import LOCK_FILE, parse_lock
from mlops.pipeline.revisions import read_paths_at
from mlops.pipeline.schema import Pipeline, parse_pipeline
from mlops.plots.spec import IMAGE_SUFFIXES, PlotSpec, plot_specs
from mlops.storage.hashing import DIR_SUFFIX
from mlops.storage.paths import unsafe_reason

WORKSPACE = "workspace"
_MAX_ROWS = 100_000  # a plot of more points is unreadable and makes a huge page


@dataclass(frozen=True)
class Series:
    """One plot file at one revision: its rows, or an image's bytes, or why neither."""

    rev: str
    path: str
    rows: tuple[dict[str, Any], ...] = ()
    image: bytes = b""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"rev": self.rev, "path": self.path}
        if self.error:
            data["error"] = self.error
        elif self.image:
            data["image_bytes"] = len(self.image)
        else:
            data["rows"] = list(self.rows)
        return data


@dataclass(frozen=True)
class PlotData:
    """A plot and its files' data at every revision."""

    spec: PlotSpec
    series: tuple[Series, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**self.spec.to_dict(), "data": [s.to_dict() for s in self.series]}


def collect(repo: Repo, revs: list[str]) -> list[PlotData]:
    """Every plot of the pipeline with its data at ``revs`` (``workspace``: the work tree).

    The plots are those defined at any of the revisions, the first definition of an id
    winning; a file that is absent or unreadable at a revision gets an ``error``.
    """
    if not revs:
        raise InputError("name at least one revision (or 'workspace')")
    commits = {rev: None if rev == WORKSPACE else resolve_revision(repo.root, rev) for rev in revs}
    places = [(commit, name) for commit in commits.values() for name in (PIPELINE_FILE, LOCK_FILE)]
    texts = read_paths_at(repo.root, places)
    specs: dict[str, PlotSpec] = {}
    cached: dict[str, dict[str, str]] = {}
    for rev, commit in commits.items():
        where = PIPELINE_FILE if commit is None else f"{PIPELINE_FILE} at {rev}"
        pipeline = _pipeline_at(texts[(commit, PIPELINE_FILE)], where, rev == revs[0])
        for spec in plot_specs(pipeline):
            specs.setdefault(spec.id, spec)
        cached[rev] = _locked_outputs(texts[(commit, LOCK_FILE)], rev)
    for spec in specs.values():
        for source in spec.sources:
            _check_path(source.path, spec.id)
    wanted = [
        (commit, s.path) for commit in commits.values() for p in specs.values() for s in p.sources
    ]
    contents = read_paths_at(repo.root, wanted)
    plots = []
    for spec in specs.values():
        series = []
        for rev, commit in commits.items():
            for source in spec.sources:
                data = contents[(commit, source.path)]
                if data is None:
                    data = _from_cache(repo, cached[rev].get(source.path))
                series.append(_series(rev, source.path, data, spec.header))
        plots.append(PlotData(spec, tuple(series)))
    return plots


def _pipeline_at(data: bytes | None, where: str, strict: bool) -> Pipeline:
    if data is None:
        return Pipeline({}, {})
    try:
        return parse_pipeline(data, where)
    except MlopsError:
        if strict:
            raise
        return Pipeline({}, {})  # a broken pipeline at an old revision draws nothing of its own


def _locked_outputs(data: bytes | None, rev: str) -> dict[str, str]:
    """Output path -> object id in the lock at a revision (for plots kept in the cache)."""
    if data is None:
        return {}
    try:
        lock = parse_lock(data.decode(errors="replace"), f"{LOCK_FILE} at {rev}")
    except MlopsError:
        return {}
    return {o.path: o.oid for entry in lock.stages.values() for o in entry.outs}


def _from_cache(repo: Repo, oid: str | None) -> bytes | None:
    if oid is None or oid.endswith(DIR_SUFFIX):
        return None
    path = repo.cache_dir / oid[:2] / oid[2:]
    try:
        data = path.read_bytes()
    except OSError:
        return None
    from mlops.storage.hashing import hash_bytes

    return data if hash_bytes(data) == oid else None


def _check_path(path: str, plot: str) -> None:
    """Plot paths come from mlops.yaml at any revision: relative, inside the repository."""
    reason = unsafe_reason(path)
    if reason is not None:
        raise InputError(f"plot {plot!r}: path {path!r} is refused: {reason}")


def _series(rev: str, path: str, data: bytes | None, header: bool) -> Series:
    if data is None:
        return Series(rev, path, error="not found")
    if path.lower().endswith(IMAGE_SUFFIXES):
        return Series(rev, path, image=data)
    try:
        rows = parse_rows(path, data, header)
    except ValueError as exc:
        return Series(rev, path, error=str(exc))
    return Series(rev, path, tuple(rows[:_MAX_ROWS]))


def parse_rows(path: str, data: bytes, header: bool = True) -> list[dict[str, Any]]:
    """A plot file's records: CSV/TSV rows (numbers as numbers), or the list of objects a
    JSON/YAML file holds (the first list of objects under a key, as DVC takes it)."""
    lower = path.lower()
    text = data.decode("utf-8", errors="replace")
    if lower.endswith((".csv", ".tsv")):
        reader = csv.reader(io.StringIO(text), delimiter="\t" if lower.endswith(".tsv") else ",")
        lines = [line for line in reader if line]
        if not lines:
            return []
        names = lines[0] if header else [str(i) for i in range(len(lines[0]))]
        body = lines[1:] if header else lines
        return [{n: _number(v) for n, v in zip(names, line, strict=False)} for line in body]
    if lower.endswith(".json"):
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"invalid JSON: {exc}") from None
    elif lower.endswith((".yaml", ".yml")):
        try:
            doc = parse_yaml(text)
        except YamlProblem as exc:
            raise ValueError(exc.located(path)) from None
    else:
        raise ValueError("not a CSV, TSV, JSON, YAML or image file")
    if isinstance(doc, dict):
        doc = next((v for v in doc.values() if _records(v)), None)
    if not _records(doc):
        raise ValueError("no list of records found")
    return [dict(row) for row in doc]


def _records(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(row, dict) for row in value)


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text
