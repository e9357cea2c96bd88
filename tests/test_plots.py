"""`mlops plots show/diff`: plot files across revisions, one self-contained HTML page."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.files import write
from tests.helpers.pipeline import run_ok
from tests.helpers.repos import commit_all

pytest.importorskip("plotly", reason="plotly is not installed (pip install -e '.[plots]')")

PIPELINE = """\
stages:
  evaluate:
    cmd: {python} evaluate.py
    deps: [evaluate.py, params.yaml]
    metrics:
    - metrics.json: {cache: false}
    plots:
    - roc.json:
        cache: false
        x: fpr
        y: tpr
        template: roc
        title: ROC curve
    - loss.tsv:
        cache: false
        x: epoch
        y: loss
    - confusion.csv:
        cache: false
        template: confusion
        x: actual
        y: predicted
    - scores.yaml:
        cache: false
        template: bar_horizontal_sorted
        x: name
        y: score
    - curve.png: {cache: false}
    - kept.csv:
        cache: true
        x: step
        y: value
plots:
- Precision-Recall:
    template: pr
    x: recall
    y:
      pr.json: precision
- roc.json
"""

EVALUATE = """\
import json, struct, zlib, yaml
lr = yaml.safe_load(open("params.yaml"))["lr"]
json.dump({"auc": 0.5 + lr}, open("metrics.json", "w"))
json.dump({"roc": [{"fpr": f / 10, "tpr": min(1, f / 10 + lr)} for f in range(11)]},
          open("roc.json", "w"))
json.dump([{"recall": r / 10, "precision": 1 - r / 20 * lr} for r in range(11)],
          open("pr.json", "w"))
with open("loss.tsv", "w") as f:
    f.write("epoch\\tloss\\n" + "".join(f"{e}\\t{1 / (e + 1) + lr}\\n" for e in range(5)))
with open("confusion.csv", "w") as f:
    f.write("actual,predicted\\n" + "0,0\\n1,1\\n1,0\\n" * 3 + ("0,1\\n" if lr > 0.2 else ""))
with open("scores.yaml", "w") as f:
    yaml.safe_dump({"scores": [{"name": n, "score": s * lr} for n, s in
                               (("a", 3), ("b", 1), ("c", 2))]}, f)
with open("kept.csv", "w") as f:
    f.write("step,value\\n" + "".join(f"{s},{s * lr}\\n" for s in range(4)))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
shade = int(255 * lr) % 256
raw = b"".join(b"\\0" + bytes([shade, 80, 160]) * 40 for _ in range(30))
png = b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 40, 30, 8, 2, 0, 0, 0))
open("curve.png", "wb").write(png + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
"""


@pytest.fixture
def project(repo: Path) -> Path:
    """A pipeline whose plots changed between two commits (lr 0.1, then 0.3)."""
    write(repo, "mlops.yaml", PIPELINE.replace("{python}", sys.executable))
    write(repo, "evaluate.py", EVALUATE)
    write(repo, "params.yaml", "lr: 0.1\n")
    run_ok(repo)
    commit_all(repo, "lr 0.1")
    write(repo, "params.yaml", "lr: 0.3\n")
    run_ok(repo)
    commit_all(repo, "lr 0.3")
    return repo


def _plots(repo: Path, *args: str) -> dict[str, Any]:
    result = run_cli(repo, "plots", *args, "--json")
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_plots_across_revisions(project: Path) -> None:
    data = _plots(project, "diff", "HEAD~1", "HEAD", "-o", "report.html")
    assert data["revisions"] == ["HEAD~1", "HEAD"]
    ids = [p["id"] for p in data["plots"]]
    assert ids == [
        "roc.json",
        "loss.tsv",
        "confusion.csv",
        "scores.yaml",
        "curve.png",
        "kept.csv",
        "Precision-Recall",
    ]  # the top-level roc.json is the stage's plot: drawn once
    plots = {p["id"]: p for p in data["plots"]}
    roc = plots["roc.json"]
    assert (roc["template"], roc["title"]) == ("roc", "ROC curve")
    assert [d["rev"] for d in roc["data"]] == ["HEAD~1", "HEAD"]
    assert roc["data"][0]["rows"][0] == {"fpr": 0.0, "tpr": 0.1}
    assert roc["data"][1]["rows"][0] == {"fpr": 0.0, "tpr": 0.3}
    loss = plots["loss.tsv"]["data"][1]["rows"]
    assert loss[0] == {"epoch": 0, "loss": 1.3}  # TSV numbers are numbers
    assert plots["scores.yaml"]["data"][0]["rows"][1] == {"name": "b", "score": 0.1}
    assert plots["curve.png"]["data"][0]["image_bytes"] > 50
    pr = plots["Precision-Recall"]
    assert pr["sources"] == [{"path": "pr.json", "x": "recall", "y": ["precision"]}]
    # kept.csv is a cached output, not in Git: it is read from the cache through the lock.
    assert "rows" in plots["kept.csv"]["data"][0], plots["kept.csv"]["data"][0]
    assert plots["kept.csv"]["data"][0]["rows"][1] == {"step": 1, "value": 0.1}

    page = (project / "report.html").read_text()
    # Self-contained: no script, style or image fetched from elsewhere.
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']?(https?:)?//", page)
    assert page.count("Plotly.newPlot(") == 6  # the image is an <img>, not a chart
    assert page.count('<img alt="curve.png" src="data:image/png;base64,') == 2  # per revision
    assert "ROC curve" in page and "HEAD~1" in page

    # show: the workspace alone by default; several revisions overlaid when named.
    shown = _plots(project, "show")
    assert shown["revisions"] == ["workspace"] and (project / "plots.html").exists()
    overlaid = _plots(project, "show", "HEAD~1", "workspace")
    assert [d["rev"] for d in overlaid["plots"][0]["data"]] == ["HEAD~1", "workspace"]
    assert _plots(project, "diff")["revisions"] == ["HEAD", "workspace"]
    assert _plots(project, "diff", "HEAD~1")["revisions"] == ["HEAD~1", "workspace"]
    text = run_cli(project, "plots", "show")
    assert text.stdout == "wrote plots.html: 7 plot(s) at workspace\n"


def test_a_missing_file_at_a_revision_is_shown_not_fatal(project: Path) -> None:
    # A plot new in the workspace: at HEAD its file does not exist yet.
    text = (project / "mlops.yaml").read_text()
    (project / "mlops.yaml").write_text(text + "- extra.csv\n")
    write(project, "extra.csv", "a,b\n1,2\n")
    result = run_cli(project, "plots", "diff", "HEAD")
    assert result.exit_code == 0, result.stderr
    assert "(1 file(s) missing or unreadable: see the page)" in result.stdout
    page = (project / "plots.html").read_text()
    assert "HEAD: extra.csv: not found" in page
    (project / "mlops.yaml").write_text(text + "- extra.json\n")
    write(project, "extra.json", "{not json")
    assert run_cli(project, "plots", "show").exit_code == 0
    assert "workspace: extra.json: invalid JSON" in (project / "plots.html").read_text()


def test_bad_plot_definitions_and_outputs(project: Path) -> None:
    (project / "notes.html").write_text("<p>mine</p>")
    kept = run_cli(project, "plots", "show", "-o", "notes.html")
    assert kept.exit_code == 1
    assert "notes.html exists and is not an mlops plots page; pass --force" in kept.stderr
    assert (project / "notes.html").read_text() == "<p>mine</p>"
    assert run_cli(project, "plots", "show", "-o", "notes.html", "--force").exit_code == 0
    assert run_cli(project, "plots", "show", "-o", "notes.html").exit_code == 0  # ours now

    text = (project / "mlops.yaml").read_text()
    (project / "mlops.yaml").write_text(text.replace("template: pr", "template: pie"))
    bad = run_cli(project, "plots", "show")
    assert bad.exit_code == 1
    assert "plots[0] (Precision-Recall): unknown template 'pie'" in bad.stderr
    (project / "mlops.yaml").write_text(text.replace("pr.json: precision", "../pr.json: p"))
    outside = run_cli(project, "plots", "show")
    assert outside.exit_code == 1
    assert "plot 'Precision-Recall': path '../pr.json' is refused: not normalised" in outside.stderr
    (project / "mlops.yaml").write_text(
        text.replace("        title: ROC curve", "        color: red")
    )
    option = run_cli(project, "plots", "show")
    assert option.exit_code == 1
    assert "unknown option 'color' for 'roc.json' in 'plots'" in option.stderr
    (project / "mlops.yaml").write_text(text)
    unknown = run_cli(project, "plots", "diff", "nope", "HEAD")
    assert unknown.exit_code == 1 and "unknown Git revision 'nope'" in unknown.stderr
    assert run_cli(project, "plots", "diff", "a", "b", "c").exit_code == 2


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Any name it would look up fails: the page must draw without a network.
    "--host-resolver-rules=MAP * ~NOTFOUND",
)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (Debian: chromium)")
def test_the_page_draws_in_headless_chromium(project: Path, tmp_path: Path) -> None:
    assert run_cli(project, "plots", "diff", "HEAD~1", "HEAD").exit_code == 0
    url = (project / "plots.html").as_uri()
    browser = _chromium()
    assert browser is not None
    flags = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [*flags, "--virtual-time-budget=20000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    # Set by the page once every chart is on screen; "error: ..." if a script failed.
    assert 'data-mlops-plots="ready 6"' in dom.stdout, re.findall(
        r"data-mlops-plots=\S+", dom.stdout
    )

    shot = tmp_path / "shot.png"
    drawn = subprocess.run(
        [*flags, "--enable-logging=stderr", "--v=0", "--window-size=1200,3000",
         "--virtual-time-budget=20000", f"--screenshot={shot}", url],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    console = [line for line in drawn.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "rror" in line or "Uncaught" in line], console
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1200, 3000)
    assert len(png) > 60_000  # six charts and two images, not a blank page
