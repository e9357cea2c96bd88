"""The ``monitor:`` section of ``mlops.yaml``, validated into frozen records.

::

    monitor:
      model: iris@production        # NAME@ALIAS (NAME alone means NAME@production)
      batches: incoming/*.csv       # a file, a folder of files, or a glob
      reference: lineage            # or a data file; lineage: what production was trained on
      label: target                 # the label column, when labels arrive with the batches
      features: [a, b]              # default: the columns the model was fitted on
      categorical: [colour]         # numeric columns to compare as categories
      ignore: [id]                  # batch columns that are neither features nor the label
      thresholds:
        psi: 0.2                    # any of DriftThresholds' keys
        ks_pvalue: 0.01
        chi2_pvalue: 0.01
        share: 0.5
        prediction: true            # alert on prediction drift too
        metrics: ["accuracy >= 0.85"]
      on_alert: report              # or retrain
      retrain:
        append_to: data/train.csv   # or replace: data/train.csv
        stages: [train, evaluate]   # default: the whole pipeline
        holdout: 0.3                # share of the batch kept out to judge the candidate
        compare: {accuracy: higher} # default: the first metric floor
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.core.sections import Invalid, read_document
from mlops.core.yamlio import parsed_cache_dir
from mlops.errors import ConfigError, RegistryError
from mlops.monitor.drift import DriftThresholds

PIPELINE_FILE = "mlops.yaml"
SECTION = "monitor"
MONITOR_KEYS = (
    "model",
    "batches",
    "reference",
    "label",
    "features",
    "categorical",
    "ignore",
    "thresholds",
    "on_alert",
    "retrain",
)
RETRAIN_KEYS = ("append_to", "replace", "stages", "holdout", "compare")
ON_ALERT = ("report", "retrain")
LINEAGE = "lineage"
DEFAULT_ALIAS = "production"
DEFAULT_HOLDOUT = 0.3
_FLOOR_OPERATORS = (">=", "<=")
_DIRECTIONS = ("higher", "lower")
_THRESHOLD_EXTRAS = ("prediction", "metrics")
_DRIFT_KEY = re.compile(r"monitor\.thresholds\.(\w+):")


@dataclass(frozen=True)
class MetricFloor:
    """A live metric limit such as ``accuracy >= 0.85`` (or ``log_loss <= 0.4``)."""

    metric: str
    op: str  # ">=" or "<="
    value: float

    def holds(self, observed: float) -> bool:
        return observed >= self.value if self.op == ">=" else observed <= self.value

    @property
    def direction(self) -> str:
        """Which way is better for this metric: ``higher`` for a floor, ``lower`` for a cap."""
        return "higher" if self.op == ">=" else "lower"

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


@dataclass(frozen=True)
class RetrainConfig:
    """How an alerting batch joins the training data, and what to run and compare."""

    mode: str  # "append" or "replace"
    path: str  # the training data file, relative to the repository root
    stages: tuple[str, ...] = ()  # pipeline targets; empty: the whole pipeline
    holdout: float = DEFAULT_HOLDOUT
    metric: str = "accuracy"
    direction: str = "higher"

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "path": self.path,
            "stages": list(self.stages),
            "holdout": self.holdout,
            "compare": {self.metric: self.direction},
        }


@dataclass(frozen=True)
class MonitorConfig:
    """The validated ``monitor:`` section."""

    model: str
    alias: str
    batches: str | None = None
    reference: str | None = None  # None: the production model's training data (lineage)
    label: str | None = None
    features: tuple[str, ...] | None = None
    categorical: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)
    prediction_drift: bool = True
    metrics: tuple[MetricFloor, ...] = ()
    on_alert: str = "report"
    retrain: RetrainConfig | None = None

    @property
    def reference_model(self) -> str:
        """``NAME@ALIAS`` as the registry resolves it."""
        return f"{self.model}@{self.alias}"


def load_monitor_config(root: Path) -> MonitorConfig:
    """The ``monitor:`` section of ``root/mlops.yaml``; a missing one is an error saying how."""
    document = read_document(
        root / PIPELINE_FILE, PIPELINE_FILE, ConfigError, parsed_cache_dir(root)
    )
    if document is None:
        raise ConfigError(
            f"no {PIPELINE_FILE} in {root}: declare a monitor: section there "
            "(at least `monitor: {model: NAME@production}`)"
        )
    section = document.section(SECTION)
    if section is None:
        raise ConfigError(
            f"{PIPELINE_FILE}: no monitor: section; declare at least "
            "`monitor: {model: NAME@production}`"
        )
    try:
        return _Parser(section).config()
    except Invalid as exc:
        raise document.error(exc, ConfigError, dotted=True) from None


class _Parser:
    """Reads one ``monitor:`` mapping; every problem names its key."""

    def __init__(self, section: Any) -> None:
        if not isinstance(section, Mapping):
            raise Invalid((SECTION,), "must be a mapping (at least {model: NAME@production})")
        self.section = section
        _known(section, MONITOR_KEYS, (SECTION,))

    def config(self) -> MonitorConfig:
        from mlops.registry.records import check_name

        s = self.section
        if "model" not in s:
            raise Invalid((SECTION,), "the model to watch is missing: add model: NAME@production")
        model = _string(s["model"], (SECTION, "model"))
        name, _, alias = model.partition("@")
        try:
            check_name(name, "model")
            check_name(alias if "@" in model else DEFAULT_ALIAS, "alias")
        except RegistryError as exc:
            raise Invalid((SECTION, "model"), f"expected NAME@ALIAS: {exc.message}") from None
        label = _optional_string(s.get("label"), (SECTION, "label"))
        features = s.get("features")
        thresholds, prediction, metrics = self._thresholds(label)
        on_alert = s.get("on_alert", "report")
        if on_alert not in ON_ALERT:
            raise Invalid(
                (SECTION, "on_alert"), f"expected one of {', '.join(ON_ALERT)}, got {on_alert!r}"
            )
        retrain = self._retrain(metrics) if s.get("retrain") is not None else None
        if on_alert == "retrain" and retrain is None:
            raise Invalid(
                (SECTION, "on_alert"),
                "retrain needs a retrain: section saying how a batch joins the training data "
                "(e.g. retrain: {append_to: data/train.csv})",
            )
        if retrain is not None and label is None:
            raise Invalid(
                (SECTION, "retrain"),
                "retraining needs labelled batches: name the label column with monitor.label",
            )
        reference = _optional_string(s.get("reference"), (SECTION, "reference"))
        batches = _optional_string(s.get("batches"), (SECTION, "batches"))
        for key, value in (("reference", reference), ("batches", batches)):
            if value is not None and value != LINEAGE:
                _repo_path(value, (SECTION, key), allow_glob=key == "batches")
        return MonitorConfig(
            model=name,
            alias=alias or DEFAULT_ALIAS,
            batches=batches,
            reference=None if reference in (None, LINEAGE) else reference,
            label=label,
            features=None if features is None else _names(features, (SECTION, "features")),
            categorical=_names(s.get("categorical", []), (SECTION, "categorical")),
            ignore=_names(s.get("ignore", []), (SECTION, "ignore")),
            thresholds=thresholds,
            prediction_drift=prediction,
            metrics=metrics,
            on_alert=on_alert,
            retrain=retrain,
        )

    def _thresholds(
        self, label: str | None
    ) -> tuple[DriftThresholds, bool, tuple[MetricFloor, ...]]:
        keys = (SECTION, "thresholds")
        raw = self.section.get("thresholds")
        if raw is None:
            return DriftThresholds(), True, ()
        if not isinstance(raw, Mapping):
            raise Invalid(keys, "must be a mapping of threshold names to values")
        _known(raw, (*DriftThresholds().to_dict(), *_THRESHOLD_EXTRAS), keys)
        drift = {k: v for k, v in raw.items() if k not in _THRESHOLD_EXTRAS}
        try:
            thresholds = DriftThresholds.from_mapping(drift, where="monitor.thresholds")
        except ConfigError as exc:
            found = _DRIFT_KEY.match(exc.message)
            at = (*keys, found.group(1)) if found else keys
            message = exc.message[found.end() :].strip() if found else exc.message
            raise Invalid(at, message) from None
        prediction = raw.get("prediction", True)
        if not isinstance(prediction, bool):
            raise Invalid((*keys, "prediction"), f"expected true or false, got {prediction!r}")
        metrics = _floors(raw.get("metrics"), (*keys, "metrics"))
        if metrics and label is None:
            raise Invalid(
                (*keys, "metrics"),
                f"{metrics[0]} needs labels: name the label column with monitor.label",
            )
        return thresholds, prediction, metrics

    def _retrain(self, floors: tuple[MetricFloor, ...]) -> RetrainConfig:
        keys = (SECTION, "retrain")
        raw = self.section["retrain"]
        if not isinstance(raw, Mapping):
            raise Invalid(keys, "must be a mapping such as {append_to: data/train.csv}")
        _known(raw, RETRAIN_KEYS, keys)
        modes = [m for m in ("append_to", "replace") if m in raw]
        if len(modes) != 1:
            raise Invalid(
                keys,
                "say how the batch joins the training data with exactly one of "
                "append_to: PATH or replace: PATH",
            )
        mode = modes[0]
        path = _repo_path(_string(raw[mode], (*keys, mode)), (*keys, mode), allow_glob=False)
        holdout = raw.get("holdout", DEFAULT_HOLDOUT)
        if (
            isinstance(holdout, bool)
            or not isinstance(holdout, int | float)
            or not 0 <= holdout < 1
        ):
            raise Invalid((*keys, "holdout"), f"expected a share in [0, 1), got {holdout!r}")
        metric, direction = (
            (floors[0].metric, floors[0].direction) if floors else ("accuracy", "higher")
        )
        if "compare" in raw:
            compare = raw["compare"]
            if not isinstance(compare, Mapping) or len(compare) != 1:
                raise Invalid(
                    (*keys, "compare"),
                    "expected one metric and its better direction, e.g. {accuracy: higher}",
                )
            ((metric, direction),) = compare.items()
            if not isinstance(metric, str) or direction not in _DIRECTIONS:
                raise Invalid(
                    (*keys, "compare", str(metric)),
                    f"expected 'higher' or 'lower' (which is better), got {direction!r}",
                )
        return RetrainConfig(
            mode="append" if mode == "append_to" else "replace",
            path=path,
            stages=_names(raw.get("stages", []), (*keys, "stages")),
            holdout=float(holdout),
            metric=metric,
            direction=direction,
        )


def _known(mapping: Mapping[Any, Any], known: tuple[str, ...], keys: tuple[Any, ...]) -> None:
    import difflib

    for key in mapping:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
            raise Invalid((*keys, key), f"unknown key ({hint})")


def _string(value: Any, keys: tuple[Any, ...]) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(keys, f"expected a non-empty string, got {value!r}")
    return value.strip()


def _optional_string(value: Any, keys: tuple[Any, ...]) -> str | None:
    return None if value is None else _string(value, keys)


def _names(value: Any, keys: tuple[Any, ...]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise Invalid(keys, f"expected a list of names, got {value!r}")
    if len(set(value)) != len(value):
        raise Invalid(keys, "a name is listed twice")
    return tuple(value)


def _repo_path(value: str, keys: tuple[Any, ...], allow_glob: bool) -> str:
    """A path relative to the repository root, inside it and outside ``.git``/``.mlops``."""
    if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value):
        raise Invalid(keys, f"{value!r} must be relative to the repository root")
    path = posixpath.normpath(value)
    if path == ".." or path.startswith("../"):
        raise Invalid(keys, f"{value!r} is outside the repository")
    if path.split("/")[0] in (".git", ".mlops"):
        raise Invalid(keys, f"{value!r} is inside {path.split('/')[0]}/")
    if not allow_glob and any(c in path for c in "*?["):
        raise Invalid(keys, f"{value!r} must name one file, not a pattern")
    return path


def _floors(value: Any, keys: tuple[Any, ...]) -> tuple[MetricFloor, ...]:
    from mlops.checks.spec import parse_condition

    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise Invalid(keys, "expected a list of limits such as ['accuracy >= 0.85']")
    floors = []
    for i, item in enumerate(items):
        condition = parse_condition(item) if isinstance(item, str) else None
        if condition is None or condition.op not in _FLOOR_OPERATORS:
            raise Invalid(
                (*keys, i), f"expected 'METRIC >= NUMBER' or 'METRIC <= NUMBER', got {item!r}"
            )
        floors.append(MetricFloor(condition.name, condition.op, condition.threshold))
    names = [f.metric for f in floors]
    if len(set(names)) != len(names):
        raise Invalid(keys, "a metric has two limits")
    return tuple(floors)
