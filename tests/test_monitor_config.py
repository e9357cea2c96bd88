"""The ``monitor:`` section of mlops.yaml: every key parsed, every mistake named."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mlops.errors import ConfigError
from mlops.monitor.config import MetricFloor, MonitorConfig, load_monitor_config
from mlops.monitor.drift import DriftThresholds
from mlops.pipeline.schema import load_pipeline

FULL = """\
stages:
  train:
    cmd: python train.py
    outs: [model.joblib]
monitor:
  model: iris@champion
  batches: incoming/*.csv
  reference: data/reference.csv
  label: target
  features: [a, b, colour]
  categorical: [colour]
  ignore: [id]
  thresholds:
    psi: 0.3
    ks_pvalue: 0.01
    chi2_pvalue: 0.02
    share: 0.4
    psi_bins: 5
    prediction: false
    metrics: ["accuracy >= 0.85", "log_loss <= 0.4"]
  on_alert: retrain
  retrain:
    replace: data/train.csv
    stages: [train]
    holdout: 0.25
    compare: {f1_macro: higher}
"""


def load(root: Path, text: str) -> MonitorConfig:
    (root / "mlops.yaml").write_text(textwrap.dedent(text))
    return load_monitor_config(root)


def test_every_key(tmp_path: Path) -> None:
    config = load(tmp_path, FULL)
    assert config.model == "iris" and config.alias == "champion"
    assert config.reference_model == "iris@champion"
    assert config.batches == "incoming/*.csv"
    assert config.reference == "data/reference.csv"
    assert config.features == ("a", "b", "colour")
    assert config.categorical == ("colour",) and config.ignore == ("id",)
    assert config.thresholds == DriftThresholds(0.3, 0.01, 0.02, 0.4, 5)
    assert config.prediction_drift is False
    assert config.metrics == (
        MetricFloor("accuracy", ">=", 0.85),
        MetricFloor("log_loss", "<=", 0.4),
    )
    retrain = config.retrain
    assert (retrain.mode, retrain.path, retrain.stages) == ("replace", "data/train.csv", ("train",))
    assert (retrain.holdout, retrain.metric, retrain.direction) == (0.25, "f1_macro", "higher")
    # The pipeline's own schema accepts the section.
    assert "monitor" in load_pipeline(tmp_path).sections


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "monitor:\n  model: iris\n")
    assert config.alias == "production" and config.reference is None
    assert config.thresholds == DriftThresholds()
    assert config.on_alert == "report" and config.retrain is None
    lineage = load(tmp_path, "monitor:\n  model: iris\n  reference: lineage\n")
    assert lineage.reference is None
    # The compared metric follows the first limit, and its direction the operator.
    config = load(
        tmp_path,
        """\
        monitor:
          model: iris
          label: y
          thresholds: {metrics: ["log_loss <= 0.5"]}
          retrain: {append_to: data/train.csv}
        """,
    )
    retrain = config.retrain
    assert (retrain.metric, retrain.direction, retrain.holdout) == ("log_loss", "lower", 0.3)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("monitor: [a]", "mlops.yaml:1: monitor: must be a mapping"),
        ("monitor: {label: y}", "monitor: the model to watch is missing"),
        ("monitor: {model: 'bad name'}", "monitor.model: expected NAME@ALIAS: invalid model name"),
        ("monitor: {model: 'iris@'}", "monitor.model: expected NAME@ALIAS: invalid alias name"),
        ("monitor: {model: iris, colour: red}", "monitor.colour: unknown key (known: model"),
        ("monitor: {model: iris, lable: y}", "monitor.lable: unknown key (did you mean 'label'?)"),
        ("monitor: {model: iris, batches: /data}", "monitor.batches: '/data' must be relative"),
        ("monitor: {model: iris, reference: ../x.csv}", "'../x.csv' is outside the repository"),
        ("monitor: {model: iris, reference: .mlops/x}", "'.mlops/x' is inside .mlops/"),
        ("monitor: {model: iris, features: a}", None),  # one name is a list of one
        ("monitor: {model: iris, features: [a, a]}", "monitor.features: a name is listed twice"),
        ("monitor: {model: iris, ignore: [1]}", "monitor.ignore: expected a list of names"),
        ("monitor: {model: iris, thresholds: 3}", "monitor.thresholds: must be a mapping"),
        ("monitor: {model: iris, thresholds: {psi: -1}}", "thresholds.psi: must be positive"),
        ("monitor: {model: iris, thresholds: {ks_pvalue: 2}}", "ks_pvalue: must be between 0"),
        ("monitor: {model: iris, thresholds: {share: 0}}", "thresholds.share: must be in (0, 1]"),
        ("monitor: {model: iris, thresholds: {psi_bins: 1}}", "psi_bins: must be an integer >= 2"),
        ("monitor: {model: iris, thresholds: {psx: 1}}", "thresholds.psx: unknown key (did you"),
        ("monitor: {model: iris, thresholds: {prediction: 1}}", "prediction: expected true or"),
        (
            "monitor: {model: iris, label: y, thresholds: {metrics: [accuracy > 0.9]}}",
            "monitor.thresholds.metrics.0: expected 'METRIC >= NUMBER'",
        ),
        (
            "monitor: {model: iris, label: y, thresholds: {metrics: [a >= 1, a <= 2]}}",
            "monitor.thresholds.metrics: a metric has two limits",
        ),
        (
            "monitor: {model: iris, thresholds: {metrics: [accuracy >= 0.9]}}",
            "accuracy >= 0.9 needs labels: name the label column with monitor.label",
        ),
        ("monitor: {model: iris, on_alert: heal}", "monitor.on_alert: expected one of report"),
        ("monitor: {model: iris, on_alert: retrain}", "retrain needs a retrain: section"),
        ("monitor: {model: iris, retrain: {append_to: a.csv}}", "retraining needs labelled"),
        ("monitor: {model: iris, label: y, retrain: x}", "monitor.retrain: must be a mapping"),
        (
            "monitor: {model: iris, label: y, retrain: {stages: [a]}}",
            "exactly one of append_to: PATH or replace: PATH",
        ),
        (
            "monitor: {model: iris, label: y, retrain: {append_to: a.csv, replace: a.csv}}",
            "exactly one of append_to: PATH or replace: PATH",
        ),
        (
            "monitor: {model: iris, label: y, retrain: {append_to: 'data/*.csv'}}",
            "monitor.retrain.append_to: 'data/*.csv' must name one file",
        ),
        (
            "monitor: {model: iris, label: y, retrain: {append_to: a.csv, holdout: 1}}",
            "monitor.retrain.holdout: expected a share in [0, 1)",
        ),
        (
            "monitor: {model: iris, label: y, retrain: {append_to: a.csv, compare: {a: up}}}",
            "monitor.retrain.compare.a: expected 'higher' or 'lower'",
        ),
        (
            "monitor: {model: iris, label: y, retrain: {append_to: a.csv, compare: [a]}}",
            "monitor.retrain.compare: expected one metric",
        ),
        (
            "monitor: {model: iris, label: y, retrain: {append_to: a.csv, hold: 0.2}}",
            "monitor.retrain.hold: unknown key (did you mean 'holdout'?)",
        ),
    ],
)
def test_every_mistake_names_its_key(tmp_path: Path, section: str, message: str | None) -> None:
    (tmp_path / "mlops.yaml").write_text(section + "\n")
    if message is None:
        load_monitor_config(tmp_path)
        return
    with pytest.raises(ConfigError) as info:
        load_monitor_config(tmp_path)
    assert message in info.value.message
    assert info.value.message.startswith("mlops.yaml")


def test_errors_carry_the_line(tmp_path: Path) -> None:
    text = "stages: {}\nmonitor:\n  model: iris\n  thresholds:\n    share: 2\n"
    (tmp_path / "mlops.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"^mlops.yaml:5: monitor.thresholds.share: "):
        load_monitor_config(tmp_path)


def test_no_file_no_section_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no mlops\.yaml in"):
        load_monitor_config(tmp_path)
    (tmp_path / "mlops.yaml").write_text("stages: {}\n")
    with pytest.raises(ConfigError, match="no monitor: section"):
        load_monitor_config(tmp_path)
    (tmp_path / "mlops.yaml").write_text("monitor: [\n")
    with pytest.raises(ConfigError, match=r"mlops.yaml:\d+: invalid YAML"):
        load_monitor_config(tmp_path)
