"""A small real project for the monitoring tests: data, a train stage, a registered model.

Machines fail when their vibration passes a limit that falls as they run hotter. A batch
from the "hot" regime drifts (temperature, line) and the base model misjudges it; a model
retrained with part of that batch does much better on the rest.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.helpers.cli import run_cli
from tests.helpers.repos import git, init_git

TRAIN = """\
import sys, time
from pathlib import Path
import joblib, pandas as pd
from sklearn.tree import DecisionTreeClassifier
if Path("slow").exists():  # lets a test hold a retraining run open
    Path("started").write_text("yes")
    time.sleep(float(Path("slow").read_text()))
train = pd.read_csv("data/train.csv")
model = DecisionTreeClassifier(max_depth=6, random_state=0)
model.fit(train.drop(columns="failure"), train["failure"])
Path("models").mkdir(exist_ok=True)
joblib.dump(model, "models/model.joblib")
print(f"trained on {len(train)} rows")
"""

PIPELINE = """\
stages:
  train:
    cmd: {python} train.py
    deps: [train.py, data/train.csv]
    outs: [models/model.joblib]
    checks:
      before: [training_data]
checks:
  training_data:
    data: data/train.csv
    expect:
      - allowed: {{failure: [0, 1]}}
monitor:
  model: sensor@production
  batches: incoming/
  label: failure
  categorical: [line]
  thresholds:
    ks_pvalue: 0.01
    chi2_pvalue: 0.01
    share: 0.5
    metrics: ["accuracy >= 0.9"]
  retrain:
    append_to: data/train.csv
    holdout: 0.3
"""


def frame(rows: int, seed: int, hot: bool = False) -> object:
    """A labelled batch: temperature, vibration, line (a category coded 0-2) and failure."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    temperature = rng.normal(55 if hot else 25, 5, rows).round(2)
    vibration = rng.gamma(2.0, 1.0, rows).round(3)
    line = rng.choice([0, 1, 2], rows, p=[0.2, 0.3, 0.5] if hot else [0.5, 0.3, 0.2])
    failure = (vibration > 4.5 - 0.08 * (temperature - 25)).astype(int)
    return pd.DataFrame(
        {"temperature": temperature, "vibration": vibration, "line": line, "failure": failure}
    )


def write_batch(root: Path, name: str, seed: int, hot: bool = False, rows: int = 300) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    frame(rows, seed, hot).to_csv(path, index=False)  # type: ignore[attr-defined]
    return path


def build_project(root: Path) -> Path:
    """Data (tracked with mlops add), a train stage run once, sensor:1 in production."""
    init_git(root)
    assert run_cli(root, "init").exit_code == 0
    (root / "train.py").write_text(TRAIN)
    (root / "mlops.yaml").write_text(PIPELINE.format(python=sys.executable))
    write_batch(root, "data/train.csv", seed=1, rows=1000)
    assert run_cli(root, "add", "data/train.csv").exit_code == 0
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    result = run_cli(root, "run")
    assert result.exit_code == 0, result.stdout + result.stderr
    result = run_cli(
        root, "model", "register", "sensor", "models/model.joblib", "--promote", "production"
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "model")
    return root


def copy_project(template: Path, root: Path) -> Path:
    """A copy of the built project (its Git tags, cache and history included)."""
    shutil.copytree(template, root, symlinks=True)
    return root


def set_monitor(root: Path, text: str) -> None:
    """Replace the monitor: section of mlops.yaml."""
    path = root / "mlops.yaml"
    head = path.read_text().split("monitor:")[0]
    path.write_text(head + textwrap.dedent(text))


def production(root: Path) -> str:
    """The version label that holds sensor@production."""
    import json

    result = run_cli(root, "model", "show", "sensor@production", "--json")
    assert result.exit_code == 0, result.stderr
    return str(json.loads(result.stdout)["version"])


def log_files(folder: Path) -> list[Path]:
    """The closed prediction logs in ``folder``, oldest first."""
    return sorted(folder.glob("predictions-*.parquet"))


def log_rows(where: Path) -> list[dict[str, Any]]:
    """The rows of one closed prediction log, or of every one in a folder, in order."""
    import pyarrow.parquet as pq

    paths = log_files(where) if where.is_dir() else [where]
    return [row for path in paths for row in pq.read_table(path).to_pylist()]
