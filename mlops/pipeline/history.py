"""Parameters and metrics across commits, read from Git objects without checking out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops.core.git import branch_commits, has_commits, ignored_by, resolve_revision
from mlops.core.repo import Repo
from mlops.errors import MlopsError
from mlops.pipeline import PIPELINE_FILE
from mlops.pipeline.params import flatten, parse_params, stage_params
from mlops.pipeline.revisions import read_paths_at, reader_at
from mlops.pipeline.schema import DEFAULT_PARAMS_FILE, ParamsRef, Pipeline, Stage
from mlops.pipeline.schema import parse_pipeline as parse_pipeline_text

WORKSPACE = "workspace"

# file -> dotted key -> value
Values = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class ValueChange:
    """One parameter or metric in two places (None where it is absent)."""

    file: str
    key: str
    old: Any
    new: Any

    @property
    def changed(self) -> bool:
        return bool(self.old != self.new or type(self.old) is not type(self.new))

    @property
    def delta(self) -> float | None:
        """``new - old`` when both are numbers."""
        if _is_number(self.old) and _is_number(self.new):
            return float(self.new - self.old)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "key": self.key,
            "old": self.old,
            "new": self.new,
            "change": self.delta,
        }


@dataclass(frozen=True)
class MetricsAt:
    """The metrics at one revision (``workspace`` or a commit id)."""

    rev: str
    metrics: Values
    error: str = ""
    absent: tuple[str, ...] = ()  # declared metrics files not found there

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"rev": self.rev, "metrics": self.metrics}
        if self.error:
            data["error"] = self.error
        return data


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _where(commit: str | None, path: str) -> str:
    return path if commit is None else f"{path} at {commit[:10]}"


def _parse_at(repo: Repo, data: bytes | None, commit: str | None) -> Pipeline | None:
    if data is None:
        return None
    where = _where(commit, PIPELINE_FILE)
    return parse_pipeline_text(data, where, read=reader_at(repo.root, commit))


def params_at(repo: Repo, commit: str | None) -> Values:
    """The parameters the pipeline's stages read, at ``commit`` (None: the workspace).

    Without a pipeline, every key of ``params.yaml``.
    """
    pipeline = _parse_at(
        repo, read_paths_at(repo.root, [(commit, PIPELINE_FILE)])[(commit, PIPELINE_FILE)], commit
    )
    stages = list(pipeline.stages.values()) if pipeline else []
    if not stages:
        stages = [Stage("params", ("",), params=(ParamsRef(DEFAULT_PARAMS_FILE, None),))]
    files = sorted({ref.file for stage in stages for ref in stage.params})
    contents = read_paths_at(repo.root, [(commit, f) for f in files])
    docs = {
        f: None if data is None else parse_params(data, f, where=_where(commit, f))
        for (_, f), data in contents.items()
    }
    values: Values = {}
    for stage in stages:
        for file, found in stage_params(stage, docs.get, strict=False).items():
            values.setdefault(file, {}).update(found)
    return values


def metrics_show(repo: Repo, commits: list[str] | None = None) -> list[MetricsAt]:
    """Metrics in the workspace, then at each of ``commits``.

    A broken pipeline or metrics file at a commit is reported in that entry's
    ``error``; in the workspace it raises.
    """
    revs: list[str | None] = [None, *(commits or [])]
    texts = read_paths_at(repo.root, [(rev, PIPELINE_FILE) for rev in revs])
    pipelines: dict[str | None, Pipeline | None] = {}
    errors: dict[str | None, str] = {}
    for rev in revs:
        try:
            pipelines[rev] = _parse_at(repo, texts[(rev, PIPELINE_FILE)], rev)
        except MlopsError as exc:
            if rev is None:
                raise
            pipelines[rev], errors[rev] = None, exc.message
    wanted = {
        rev: sorted({o.path for s in p.stages.values() for o in s.metrics}) if p else []
        for rev, p in pipelines.items()
    }
    contents = read_paths_at(
        repo.root, [(rev, path) for rev, paths in wanted.items() for path in paths]
    )
    shown = []
    for rev in revs:
        metrics: Values = {}
        absent = []
        for path in wanted[rev]:
            data = contents[(rev, path)]
            if data is None:
                absent.append(path)
                continue
            try:
                metrics[path] = flatten(parse_params(data, path, where=_where(rev, path)))
            except MlopsError as exc:
                if rev is None:
                    raise
                errors[rev] = exc.message
        shown.append(MetricsAt(rev or WORKSPACE, metrics, errors.get(rev, ""), tuple(absent)))
    return shown


def metrics_at(repo: Repo, commit: str | None) -> MetricsAt:
    """The metrics files of the pipeline at ``commit`` (None: the workspace), flattened."""
    if commit is None:
        return metrics_show(repo)[0]
    shown = metrics_show(repo, [commit])[1]
    if shown.error:
        raise MlopsError(shown.error)
    return shown


def all_metrics(repo: Repo) -> list[MetricsAt]:
    """Metrics in the workspace and at every commit reachable from a branch, a tag or HEAD."""
    return metrics_show(repo, branch_commits(repo.root))


def missing_notes(repo: Repo, at: MetricsAt) -> list[str]:
    """Why each declared metrics file is absent at a revision, in a line each."""
    notes = []
    for path in at.absent:
        if at.rev == WORKSPACE:
            notes.append(f"{path} is not in the workspace: run the pipeline to make it")
            continue
        rule = ignored_by(repo.root, path)
        why = (
            f"Git ignores it ({rule}), so commits do not hold it; metrics are read from Git: "
            "un-ignore it and commit it"
            if rule
            else "it was not committed"
        )
        notes.append(f"{path} is not in commit {at.rev[:10]}: {why}")
    return notes


def _revisions(repo: Repo, revs: list[str]) -> tuple[str | None, str | None, bool]:
    """(old commit, new commit or None for the workspace, whether there is an old side)."""
    from mlops.workspace.diff import parse_revisions

    rev_a, rev_b = parse_revisions(revs)
    root = repo.root
    has_old = rev_a is not None or has_commits(root)
    old = resolve_revision(root, rev_a or "HEAD") if has_old else None
    new = None if rev_b is None else resolve_revision(root, rev_b)
    return old, new, has_old


def _compare(old: Values, new: Values, include_same: bool) -> list[ValueChange]:
    changes = []
    for file in sorted(old.keys() | new.keys()):
        before, after = old.get(file, {}), new.get(file, {})
        for key in sorted(before.keys() | after.keys()):
            change = ValueChange(file, key, before.get(key), after.get(key))
            if include_same or change.changed:
                changes.append(change)
    return changes


def params_diff(repo: Repo, revs: list[str], include_same: bool = False) -> list[ValueChange]:
    """Parameters from REV_A (default HEAD) to REV_B (default: the workspace)."""
    old_rev, new_rev, has_old = _revisions(repo, revs)
    old = params_at(repo, old_rev) if has_old else {}
    return _compare(old, params_at(repo, new_rev), include_same)


@dataclass(frozen=True)
class MetricsDiff:
    """Metrics changes between two revisions, and why declared files are absent."""

    changes: list[ValueChange]
    notes: list[str]


def metrics_diff(repo: Repo, revs: list[str], include_same: bool = False) -> MetricsDiff:
    """Metrics from REV_A (default HEAD) to REV_B (default: the workspace)."""
    old_rev, new_rev, has_old = _revisions(repo, revs)
    sides = ([metrics_at(repo, old_rev)] if has_old else []) + [metrics_at(repo, new_rev)]
    old = sides[0].metrics if has_old else {}
    notes = [note for at in sides for note in missing_notes(repo, at)]
    return MetricsDiff(_compare(old, sides[-1].metrics, include_same), notes)
