"""The experiments table: recorded runs (or commits) as rows, params and metrics as columns.

Everything comes from ``runs.db`` in one query; SQLite extracts each stage's
params and metrics from its JSON, so no run record object is opened.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from mlops.core.git import git, has_commits
from mlops.core.repo import Repo
from mlops.errors import InputError
from mlops.pipeline.runs import open_runs

# Stage statuses that mean the stage's command was started in that run.
_EXECUTED = ("ran", "failed", "interrupted")
# Columns every row has, which --sort-by may name besides params and metrics.
BASE_COLUMNS = ("id", "started", "duration", "status", "commit", "runs")


class RunStatus(StrEnum):
    """How a whole run ended."""

    SUCCESS = "success"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"


@dataclass(frozen=True)
class TableQuery:
    """What to show. ``stages``: only runs in which one of these stages was executed."""

    statuses: tuple[RunStatus, ...] = ()
    stages: tuple[str, ...] = ()
    per_commit: bool = False
    all_commits: bool = False
    only_changed: bool = False
    sort_by: str | None = None
    order: SortOrder = SortOrder.ASC
    limit: int | None = None


@dataclass(frozen=True)
class TableRow:
    """One run, or the newest run of a commit (``runs`` counts the runs it stands for)."""

    id: str
    started: float
    duration: float
    status: str
    commit: str | None
    dirty: bool
    executed: tuple[str, ...]  # stages whose command was started
    params: dict[str, Any] = field(default_factory=dict)  # column name -> value
    metrics: dict[str, Any] = field(default_factory=dict)
    runs: int = 1

    def value(self, column: str) -> Any:
        """The value in ``column`` (a base column, a param or a metric), None if absent."""
        if column in self.params:
            return self.params[column]
        if column in self.metrics:
            return self.metrics[column]
        base: dict[str, Any] = {
            "id": self.id,
            "started": self.started,
            "duration": self.duration,
            "status": self.status,
            "commit": self.commit,
            "runs": self.runs,
        }
        return base.get(column)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started": self.started,
            "duration": round(self.duration, 6),
            "status": self.status,
            "commit": self.commit,
            "dirty": self.dirty,
            "executed": list(self.executed),
            "runs": self.runs,
            "params": self.params,
            "metrics": self.metrics,
        }


@dataclass(frozen=True)
class RunsTable:
    """Rows with the param and metric columns they use (``file:key`` names)."""

    params: tuple[str, ...]
    metrics: tuple[str, ...]
    rows: tuple[TableRow, ...]
    per_commit: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "per_commit": self.per_commit,
            "params": list(self.params),
            "metrics": list(self.metrics),
            "rows": [r.to_dict() for r in self.rows],
        }


def runs_table(repo: Repo, query: TableQuery) -> RunsTable:
    """The experiments table for ``query``, newest run first unless sorted."""
    if query.sort_by is not None and not query.sort_by:
        raise InputError("--sort-by needs a column name")
    rows = _read_rows(repo, query)
    if not query.all_commits:
        rows = _on_current_branch(repo, rows)
    if query.per_commit:
        rows = _per_commit(rows)
    if query.sort_by:
        every = _columns(r.params for r in rows) + _columns(r.metrics for r in rows)
        rows = _sorted(rows, _sort_column(query.sort_by, every), query.order)
    if query.limit is not None:
        rows = rows[: query.limit]
    # The columns of the rows shown (so --only-changed compares what is on screen).
    params = _columns(r.params for r in rows)
    metrics = _columns(r.metrics for r in rows)
    if query.only_changed:
        params = tuple(c for c in params if _changes(rows, c))
        metrics = tuple(c for c in metrics if _changes(rows, c))
    return RunsTable(params, metrics, tuple(rows), query.per_commit)


def _read_rows(repo: Repo, query: TableQuery) -> list[TableRow]:
    db = open_runs(repo)
    try:
        found = db.stage_values([str(s) for s in query.statuses], query.stages, _EXECUTED)
    finally:
        db.close()
    rows = []
    for run_id, started, ended, status, commit, dirty, stages in found:
        params: dict[str, Any] = {}
        metrics: dict[str, Any] = {}
        for _, _, _, stage_params, stage_metrics in stages:
            if stage_params:
                _merge(params, stage_params)
            if stage_metrics:
                _merge(metrics, stage_metrics)
        executed = tuple(
            name for _, name, stage_status, _, _ in stages if stage_status in _EXECUTED
        )
        rows.append(
            TableRow(
                run_id,
                started,
                ended - started,
                status,
                commit,
                bool(dirty),
                executed,
                params,
                metrics,
            )
        )
    return rows


def _merge(into: dict[str, Any], values_of: dict[str, Any]) -> None:
    """Add a stage's ``{file: {key: value}}`` to a row's ``file:key`` columns."""
    for file, values in values_of.items():
        if isinstance(values, dict):
            prefix = file + ":"
            into.update({prefix + key: value for key, value in values.items()})
        else:
            into[file] = values


def _on_current_branch(repo: Repo, rows: list[TableRow]) -> list[TableRow]:
    """Runs made on a commit in HEAD's history, or before the first commit."""
    if not has_commits(repo.root):
        return rows
    history = set(git(repo.root, "rev-list", "HEAD").decode().split())
    return [r for r in rows if r.commit is None or r.commit in history]


def _per_commit(rows: list[TableRow]) -> list[TableRow]:
    """The newest run of each commit (runs on a dirty work tree apart from clean ones)."""
    groups: dict[tuple[str | None, bool], TableRow] = {}
    counts: dict[tuple[str | None, bool], int] = {}
    for row in rows:  # newest first
        key = (row.commit, row.dirty)
        groups.setdefault(key, row)
        counts[key] = counts.get(key, 0) + 1
    return [replace(row, runs=counts[key]) for key, row in groups.items()]


def _columns(values: Any) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for row_values in values:
        seen.update(dict.fromkeys(row_values))
    return tuple(sorted(seen))


def _changes(rows: Sequence[TableRow], column: str) -> bool:
    values = {json.dumps(r.value(column), sort_keys=True, default=str) for r in rows}
    return len(values) > 1


def _sort_column(name: str, columns: tuple[str, ...]) -> str:
    """``name`` as a column: exact, else the unique column whose key is ``name``, else
    the unique one whose key ends with ``.name``."""
    if name in BASE_COLUMNS or name in columns:
        return name
    matches = [c for c in columns if c.partition(":")[2] == name]
    if not matches:
        matches = [c for c in columns if c.partition(":")[2].endswith("." + name)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise InputError(f"--sort-by {name!r} is ambiguous: {', '.join(matches)}")
    known = ", ".join((*BASE_COLUMNS, *columns))
    raise InputError(f"--sort-by {name!r} is not a column; columns: {known}")


def _sorted(rows: list[TableRow], column: str, order: SortOrder) -> list[TableRow]:
    """Rows by ``column``; numbers apart from other values, rows without a value last."""

    def key(row: TableRow) -> tuple[int, float, str]:
        value = row.value(column)
        if isinstance(value, bool):
            return (0, float(value), "")
        if isinstance(value, int | float):
            return (0, float(value), "")
        return (1, 0.0, json.dumps(value, sort_keys=True, default=str))

    present = [r for r in rows if r.value(column) is not None]
    absent = [r for r in rows if r.value(column) is None]
    present.sort(key=key, reverse=order is SortOrder.DESC)
    return present + absent


def short_names(columns: Sequence[str]) -> dict[str, str]:
    """Column headers: the key alone where no other column shares it, else ``file:key``."""
    keys: dict[str, int] = {}
    for column in columns:
        key = column.partition(":")[2] or column
        keys[key] = keys.get(key, 0) + 1
    return {
        c: (c.partition(":")[2] or c) if keys[c.partition(":")[2] or c] == 1 else c for c in columns
    }


def cell(value: Any, digits: int | None = None) -> str:
    """A value as table text: lists and maps as JSON, floats to ``digits`` significant
    digits when given (in full otherwise), the rest as it is."""
    kind = type(value)
    if kind is float:  # most cells: checked first
        return repr(value) if digits is None else f"{value:.{digits}g}"
    if value is None:
        return ""
    if kind is dict or kind is list:
        return json.dumps(value, sort_keys=True)
    return str(value)


def table_cells(
    table: RunsTable, params: bool = True, metrics: bool = True, digits: int | None = None
) -> tuple[list[str], list[list[str]]]:
    """Header and rows of text for CSV, Markdown or a terminal table (``digits``: see
    ``cell``)."""
    from datetime import datetime

    columns = [*(table.params if params else ()), *(table.metrics if metrics else ())]
    names = short_names(columns)
    per_commit = table.per_commit
    header = ["id", "started", "status", "commit", *(["runs"] if per_commit else [])]
    header += [names[c] for c in columns]
    rows = []
    for r in table.rows:
        commit = (r.commit or "")[:8] + ("*" if r.dirty else "")
        started = datetime.fromtimestamp(r.started).strftime("%Y-%m-%d %H:%M:%S")
        row = [r.id, started, r.status, commit, *([str(r.runs)] if per_commit else [])]
        values = {**r.metrics, **r.params}  # one lookup per cell (params first, as value())
        rows.append(row + [cell(values.get(c), digits) for c in columns])
    return header, rows
