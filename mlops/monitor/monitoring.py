"""Scoring a batch against the production model and its reference data.

A batch is the file given with ``--data`` or the newest batch under ``monitor.batches`` that
the history has not seen (by content). The production model is loaded through the registry
(its hash checked); the reference is the data it was trained on, found through its lineage,
unless ``monitor.reference`` names a file. Each result is appended to the monitoring history
and stored as an object (``save_record``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.core.repo import Repo
from mlops.errors import CheckError, ConfigError, InputError, MonitorError, TableError
from mlops.monitor.config import MonitorConfig
from mlops.monitor.history import MonitorRecord, append_record, list_records
from mlops.monitor.predlog import DEFAULT_LABEL, PREDICTION, is_prediction_log, log_columns
from mlops.registry.records import ModelVersion
from mlops.storage.hashing import DIR_SUFFIX
from mlops.storage.store import Store, load_manifest, open_store
from mlops.tables.read import TABLE_SUFFIXES

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Batch:
    """A batch file to score: where it is, how it is shown, its content hash."""

    path: Path
    shown: str
    hash: str


@dataclass(frozen=True)
class Scored:
    """A scored batch, and what retraining needs from it."""

    record: MonitorRecord
    version: ModelVersion
    model: Any
    batch: Batch
    frame: pd.DataFrame
    features: tuple[str, ...]


def save_record(repo: Repo, record: MonitorRecord) -> str:
    """Append ``record`` to the history and store it as an object; return its id."""
    data = append_record(repo.mlops_dir, record)
    with open_store(repo) as store:
        return store.cache.add_bytes(data)


def monitor_objects(repo: Repo) -> set[str]:
    """The object ids of every monitoring record in the history (kept by gc, pushed)."""
    return {record.record_id for record in list_records(repo.mlops_dir)}


# Finding the batch ---------------------------------------------------------------------


def find_batch(
    repo: Repo, store: Store, config: MonitorConfig, data: str | None
) -> tuple[Batch | None, str]:
    """The batch to score, or (None, why) when every batch was scored already."""
    if data is not None:
        path = Path(os.path.abspath(data))
        if path.is_dir():
            raise InputError(f"{data}: a folder; --data takes one batch file")
        if not path.is_file():
            raise InputError(f"{data}: no such batch file")
        return Batch(path, _shown(repo, path), store.state.hash(path)), ""
    if config.batches is None:
        raise ConfigError(
            "mlops.yaml: monitor.batches: not set; say where batches arrive "
            "(a file, a folder or a glob), or give one with --data PATH"
        )
    files = _batch_files(repo.root, config.batches)
    if not files:
        return None, f"no batch files in {config.batches}"
    seen = {r.batch_hash for r in list_records(repo.mlops_dir, model=config.model)}
    newest_first = sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
    for path in newest_first:
        oid = store.state.hash(path)
        if oid not in seen:
            return Batch(path, _shown(repo, path), oid), ""
    return None, (
        f"no new batch in {config.batches}: all {len(files)} were scored already "
        "(score one again with --data PATH)"
    )


def _batch_files(root: Path, spec: str) -> list[Path]:
    path = root / spec
    if any(c in spec for c in "*?["):
        found = [Path(p) for p in glob.glob(str(path), recursive=True)]
    elif path.is_dir():
        found = [p for p in path.iterdir() if p.name.lower().endswith(TABLE_SUFFIXES)]
    elif path.exists():
        found = [path]
    else:
        raise InputError(f"mlops.yaml: monitor.batches: {spec} does not exist")
    return [p for p in found if p.is_file() and not p.name.startswith(".")]


def _shown(repo: Repo, path: Path) -> str:
    """A batch as the history names it: relative to the repository when inside it."""
    if repo.root in path.parents:
        return repo.relpath(path)
    return str(path)


# Scoring -----------------------------------------------------------------------------


def score_batch(repo: Repo, store: Store, config: MonitorConfig, batch: Batch) -> Scored:
    """Drift, prediction drift and live metrics of ``batch``; the record is not stored yet."""
    from mlops.monitor.drift import detect_drift
    from mlops.registry.content import load_model
    from mlops.registry.tags import resolve

    version = resolve(repo, config.reference_model)
    model = load_model(f"{version.model}:{version.label}", repo)
    frame = read_frame(batch.path, batch.shown)
    logged = is_prediction_log(frame.columns)
    fitted = fitted_features(model)
    wanted = config.features or fitted
    ref_path, ref_hash, source, reference = _reference(repo, store, config, version, wanted)
    label_ignored = {config.label} if config.label else set()
    # A prediction log's ids, times and answers are neither features nor the label.
    added = set(log_columns(frame.columns)) | {DEFAULT_LABEL} if logged else set()
    ignored = label_ignored | set(config.ignore) | added
    features = wanted or tuple(str(c) for c in reference.columns if c not in ignored)
    options: dict[str, Any] = {
        "features": features,
        "categorical": config.categorical,
        "ignore": ignored,
        "thresholds": config.thresholds,
        "source": batch.shown,
    }
    if config.prediction_drift and hasattr(model, "predict"):
        try:
            options["reference_predictions"] = predict(model, reference, features, ref_path)
            # What production answered, as logged; else what the model says now.
            options["batch_predictions"] = (
                frame[PREDICTION].to_numpy()
                if logged
                else predict(model, frame, features, batch.shown)
            )
        except MonitorError:
            # A batch that does not fit the model: the drift engine names what is wrong.
            detect_drift(reference, frame, **{k: v for k, v in options.items() if "pred" not in k})
            raise
    drift = detect_drift(reference, frame, **options)
    metrics: dict[str, float] = {}
    alerts = list(drift.alerts)
    labels = _labelled_rows(frame, config.label)
    labelled = labels is not None and bool(labels.any())
    if logged:
        keep = [*features, *([config.label] if config.label in frame.columns else [])]
        frame = frame.loc[labels, keep] if labelled else frame[list(features)]
    if labelled:
        judged = frame if logged else frame.loc[labels]
        names = [f.metric for f in config.metrics]
        if config.retrain is not None and config.retrain.metric not in names:
            names.append(config.retrain.metric)
        for name in names:
            metrics[name] = score_model(model, judged, features, str(config.label), name)
        for floor in config.metrics:
            if not floor.holds(metrics[floor.metric]):
                alerts.append(
                    f"{floor.metric} {metrics[floor.metric]:.4g} breaks the limit {floor}"
                )
    not_judged = [] if labelled else [str(f) for f in config.metrics]
    record = MonitorRecord(
        model=version.model,
        version=version.label,
        batch_path=batch.shown,
        batch_hash=batch.hash,
        drift=drift.to_dict(),
        alerts=tuple(alerts),
        metrics=metrics,
        limits={f.metric: (f.op, f.value) for f in config.metrics},
        links={
            "model": {"ref": version.ref, "id": version.id, "alias": config.alias},
            "reference": {"path": ref_path, "hash": ref_hash, "source": source},
            "labelled": labelled,
            "labels": {"rows": int(labels.sum()) if labels is not None else 0, "of": len(labels)}
            if labels is not None
            else None,
            "not_judged": not_judged,
            "prediction_log": logged,
        },
    )
    return Scored(record, version, model, batch, frame, features)


def _labelled_rows(frame: pd.DataFrame, label: str | None) -> pd.Series | None:
    """Which rows have a label (labels arrive later for prediction logs); None: no column."""
    if label is None or label not in frame.columns:
        return None
    return frame[label].notna()


def fitted_features(model: Any) -> tuple[str, ...] | None:
    """The columns a scikit-learn model was fitted on, when it recorded them."""
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else tuple(str(n) for n in names)


def model_input(model: Any, frame: pd.DataFrame, features: tuple[str, ...]) -> Any:
    """What to give the model: the columns it was fitted on, or a bare array of ``features``."""
    fitted = fitted_features(model)
    if fitted is not None:
        return frame[list(fitted)]
    return frame[list(features)].to_numpy()


def predict(model: Any, frame: pd.DataFrame, features: tuple[str, ...], shown: str) -> Any:
    """The model's predictions on ``frame``; a model that cannot score it is an error."""
    try:
        return model.predict(model_input(model, frame, features))
    except Exception as exc:  # the model's own library raises anything
        raise MonitorError(
            f"{shown}: the model cannot predict on it: {type(exc).__name__}: {exc}"
        ) from exc


def score_model(
    model: Any, frame: pd.DataFrame, features: tuple[str, ...], label: str, metric: str
) -> float:
    """A scikit-learn metric of ``model`` on the labelled ``frame``."""
    import math

    from mlops.checks.model_checks import resolve_metric

    try:
        scorer = resolve_metric(metric)
    except CheckError as exc:
        raise ConfigError(f"mlops.yaml: monitor: metric {metric!r}: {exc.message}") from None
    try:
        value = scorer(model, model_input(model, frame, features), frame[label])
    except Exception as exc:  # scikit-learn raises ValueError, TypeError...
        raise MonitorError(
            f"cannot compute {metric} on the batch: {type(exc).__name__}: {exc}"
        ) from exc
    if not math.isfinite(value):
        raise MonitorError(f"{metric} on the batch is not a finite number ({value})")
    return value


def read_frame(path: Path, shown: str, name: str | None = None) -> pd.DataFrame:
    """Read a CSV, Parquet or JSON-lines file; ``name`` gives the format of a nameless file."""
    from mlops.tables.read import read_table

    try:
        if name is None:
            return read_table(path, shown, "data", None).frame
        with tempfile.TemporaryDirectory(prefix="mlops-monitor-") as tmp:
            alias = Path(tmp) / Path(name).name
            alias.symlink_to(path)
            return read_table(alias, shown, "data", None).frame
    except TableError as exc:
        raise MonitorError(exc.message) from None


# The reference -------------------------------------------------------------------------


def _reference(
    repo: Repo,
    store: Store,
    config: MonitorConfig,
    version: ModelVersion,
    wanted: tuple[str, ...] | None,
) -> tuple[str, str, str, pd.DataFrame]:
    """(path, hash, where from, frame) of the data to compare batches with."""
    if config.reference is not None:
        path = repo.root / config.reference
        if not path.is_file():
            raise InputError(f"mlops.yaml: monitor.reference: {config.reference} does not exist")
        frame = read_frame(path, config.reference)
        return config.reference, store.state.hash(path), "monitor.reference", frame
    needed = set(wanted) if wanted else ({config.label} if config.label else set())
    tried: list[str] = []
    for rel, oid in _training_files(store, version):
        with _training_file(repo, store, version, rel, oid) as found:
            if found is None:
                tried.append(f"{rel} (content {oid[:12]} not found: run `mlops pull`)")
                continue
            frame = read_frame(found, f"{rel} ({oid[:12]})", name=rel)
        if needed <= {str(c) for c in frame.columns}:
            return rel, oid, f"lineage of {version.ref}", frame
        tried.append(f"{rel} (lacks {', '.join(sorted(needed - set(map(str, frame.columns))))})")
    inputs = "; ".join(tried) or "none of its recorded inputs is a data file"
    if version.run is None:
        inputs = "it was registered without a run, so its training data is unknown"
    raise MonitorError(
        f"reference: cannot find the data {version.ref} was trained on ({inputs}); "
        "set monitor.reference in mlops.yaml to a data file"
    )


def _training_files(store: Store, version: ModelVersion) -> list[tuple[str, str]]:
    """The data files among a version's recorded inputs (folders looked into)."""
    found = []
    for path, oid in sorted(version.data.items()):
        if oid.endswith(DIR_SUFFIX):
            if store.cache.exists(oid):
                manifest = load_manifest(store.cache, oid, path)
                found += [
                    (f"{path}/{e.path}", e.oid)
                    for e in manifest.entries
                    if e.path.lower().endswith(TABLE_SUFFIXES)
                ]
        elif path.lower().endswith(TABLE_SUFFIXES):
            found.append((path, oid))
    return found


@contextlib.contextmanager
def _training_file(
    repo: Repo, store: Store, version: ModelVersion, path: str, oid: str
) -> Iterator[Path | None]:
    """A file holding content ``oid`` of ``path``: the cache object, the workspace file if
    unchanged, or the file in Git at the version's commit; None when none has it."""
    from mlops.core.git import read_file_at
    from mlops.storage.hashing import hash_bytes

    if store.cache.exists(oid):
        yield Path(store.cache.path(oid))
        return
    workspace = repo.root / path
    if workspace.is_file() and store.state.hash(workspace) == oid:
        yield workspace
        return
    data = read_file_at(repo.root, version.commit, path) if version.commit else None
    if data is None or hash_bytes(data) != oid:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="mlops-monitor-") as tmp:
        copy = Path(tmp) / "data"
        copy.write_bytes(data)
        yield copy
