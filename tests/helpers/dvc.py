"""A small copy of DVC's get-started project, run by a real DVC.

Data made by a script, tracked with ``dvc add``; prepare -> train -> evaluate over
params.yaml, with metrics and plots (JSON, CSV, a PNG) as the get-started has them.
Plain Python, no libraries: the stages take milliseconds.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.files import write
from tests.helpers.repos import git, init_git

GENERATE = """\
import csv, os, random, sys
rows = int(sys.argv[2])
rng = random.Random(7)
os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)
with open(sys.argv[1], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["x1", "x2", "label"])
    for i in range(rows):
        label = i % 2
        w.writerow([round(rng.gauss(label, 0.8), 4), round(rng.gauss(-label, 1.0), 4), label])
"""

PREPARE = """\
import csv, os, random, sys, yaml
p = yaml.safe_load(open("params.yaml"))["prepare"]
rows = list(csv.reader(open(sys.argv[1])))
header, body = rows[0], rows[1:]
random.Random(p["seed"]).shuffle(body)
cut = int(len(body) * (1 - p["split"]))
os.makedirs("data/prepared", exist_ok=True)
for name, part in (("train", body[:cut]), ("test", body[cut:])):
    with open(f"data/prepared/{name}.csv", "w", newline="") as f:
        csv.writer(f).writerows([header, *part])
"""

TRAIN = """\
import csv, json, math, yaml
p = yaml.safe_load(open("params.yaml"))["train"]
rows = [[float(v) for v in r] for r in list(csv.reader(open("data/prepared/train.csv")))[1:]]
w = [0.0, 0.0, 0.0]
for _ in range(p["epochs"]):
    for x1, x2, y in rows:
        z = w[0] + w[1] * x1 + w[2] * x2
        g = 1 / (1 + math.exp(-z)) - y
        w = [w[0] - p["lr"] * g, w[1] - p["lr"] * g * x1, w[2] - p["lr"] * g * x2]
json.dump({"weights": w}, open("model.json", "w"))
"""

EVALUATE = """\
import csv, json, math, os, struct, zlib
w = json.load(open("model.json"))["weights"]
rows = [[float(v) for v in r] for r in list(csv.reader(open("data/prepared/test.csv")))[1:]]
scores = [(1 / (1 + math.exp(-(w[0] + w[1] * a + w[2] * b))), int(y)) for a, b, y in rows]
acc = sum((s > 0.5) == y for s, y in scores) / len(scores)
os.makedirs("eval/plots", exist_ok=True)
json.dump({"accuracy": round(acc, 4), "rows": len(scores)}, open("eval/metrics.json", "w"))
pos = sum(y for _, y in scores) or 1
neg = (len(scores) - pos) or 1
roc, prc = [], []
for t in [i / 10 for i in range(11)]:
    tp = sum(1 for s, y in scores if s >= t and y)
    fp = sum(1 for s, y in scores if s >= t and not y)
    roc.append({"threshold": t, "fpr": fp / neg, "tpr": tp / pos})
    prc.append((t, tp / max(tp + fp, 1), tp / pos))
json.dump({"roc": roc}, open("eval/plots/roc.json", "w"))
with open("eval/prc.csv", "w", newline="") as f:
    csv.writer(f).writerows([("threshold", "precision", "recall"), *prc])
cm = [{"actual": y, "predicted": int(s > 0.5)} for s, y in scores]
json.dump(cm, open("eval/plots/confusion.json", "w"))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
raw = b"".join(b"\\0" + bytes([int(255 * abs(v)) % 256] * 3) * 4 for v in w for _ in range(4))
png = b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 12, 8, 2, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open("eval/importance.png", "wb").write(png)
"""

DVC_YAML = """\
stages:
  prepare:
    cmd: {python} src/prepare.py data/data.csv
    deps:
    - src/prepare.py
    - data/data.csv
    params:
    - prepare.seed
    - prepare.split
    outs:
    - data/prepared
  train:
    cmd: {python} src/train.py
    deps:
    - src/train.py
    - data/prepared
    params:
    - train
    outs:
    - model.json
  evaluate:
    cmd: {python} src/evaluate.py
    deps:
    - src/evaluate.py
    - model.json
    - data/prepared
    metrics:
    - eval/metrics.json:
        cache: false
    plots:
    - eval/plots/roc.json:
        cache: false
        x: fpr
        y: tpr
    - eval/prc.csv:
        cache: false
        x: recall
        y: precision
    - eval/plots/confusion.json:
        cache: false
        template: confusion
        x: actual
        y: predicted
    - eval/importance.png:
        cache: false
plots:
- ROC:
    template: simple
    x: fpr
    y:
      eval/plots/roc.json: tpr
- eval/importance.png
"""

PARAMS = """\
prepare:
  split: 0.25
  seed: 20170428
train:
  lr: 0.1
  epochs: 3
"""


def dvc_available() -> bool:
    return importlib.util.find_spec("dvc") is not None


needs_dvc = pytest.mark.skipif(
    not dvc_available(), reason="DVC is not installed (pip install -e '.[test]' brings it)"
)


def dvc_env(home: Path) -> dict[str, str]:
    """DVC without analytics or a user's global config, and nothing from the network."""
    return {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache"),
        "XDG_CONFIG_HOME": str(home / "xdg-config"),
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
    }


def dvc(repo: Path, *args: str) -> str:
    """Run the real DVC in ``repo``; fail the test on error."""
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env=dvc_env(repo.parent),
    )
    assert proc.returncode == 0, f"dvc {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def get_started(path: Path, rows: int = 200) -> Path:
    """The get-started layout, data made, ``dvc add``-ed, ``dvc repro``-ed and committed."""
    repo = init_git(path)
    dvc(repo, "init", "-q")
    for name, text in (
        ("src/generate.py", GENERATE),
        ("src/prepare.py", PREPARE),
        ("src/train.py", TRAIN),
        ("src/evaluate.py", EVALUATE),
        ("params.yaml", PARAMS),
        ("dvc.yaml", DVC_YAML.replace("{python}", sys.executable)),
    ):
        write(repo, name, text)
    subprocess.run(
        [sys.executable, "src/generate.py", "data/data.csv", str(rows)], cwd=repo, check=True
    )
    dvc(repo, "add", "-q", "data/data.csv")
    dvc(repo, "repro", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "get started")
    return repo


def dvc_stage_edges(repo: Path) -> set[tuple[str, str]]:
    """The stage-to-stage edges of ``dvc dag --dot`` (data nodes of .dvc files left out)."""
    import re

    out = dvc(repo, "dag", "--dot")
    edges = set(re.findall(r'"([^"]+)"\s*->\s*"([^"]+)"', out))
    return {(a, b) for a, b in edges if not a.endswith(".dvc") and not b.endswith(".dvc")}
