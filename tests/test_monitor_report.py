"""HTML monitoring report: well-formed, self-contained, complete; rendered by Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from mlops.monitor.drift import detect_drift
from mlops.monitor.history import MonitorRecord, append_record, list_records
from mlops.monitor.report_html import render_html_report, write_html_report


def scored(seed: int, shift: float) -> dict:
    rng = np.random.default_rng(seed)

    def frame(move: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "age": rng.integers(18, 80, 2000),
                "<b>&amount": rng.normal(100 + 30 * move, 20, 2000),
                "plan": rng.choice(["basic", "pro", "enterprise" if move else "pro"], 2000),
            }
        )

    report = detect_drift(
        frame(0.0),
        frame(shift),
        reference_predictions=rng.random(2000),
        batch_predictions=rng.random(2000) ** (1 + shift),
    )
    return report.to_dict()


def record(day: int, shift: float, accuracy: float) -> MonitorRecord:
    drift = scored(day, shift)
    alerts = list(drift["alerts"]) + ([f"accuracy {accuracy} < 0.85"] if accuracy < 0.85 else [])
    return MonitorRecord(
        model="churn",
        version="3",
        batch_path=f"data/batch{day}.csv",
        batch_hash=f"{day:064x}",
        drift=drift,
        alerts=tuple(alerts),
        metrics={"accuracy": accuracy, "f1": accuracy - 0.05},
        limits={"accuracy": (">=", 0.85)},
        time=f"2026-03-{day:02d}T12:00:00.000000Z",
    )


@pytest.fixture(scope="module")
def history():
    return [record(1, 0.0, 0.91), record(2, 0.0, 0.9), record(3, 1.0, 0.8)]


def parse(html: str) -> ET.Element:
    assert html.startswith("<!DOCTYPE html>\n")
    return ET.fromstring(html.removeprefix("<!DOCTYPE html>\n"))


def test_report_is_well_formed_self_contained_and_complete(history):
    current = history[-1]
    html = render_html_report(current, history)
    root = parse(html)
    # Nothing is fetched: no URLs, scripts, external styles or images.
    assert not re.search(r"https?:|<script|<link|<img|@import|url\(", html)
    drift = current.drift
    names = [f["name"] for f in drift["features"]] + ["prediction"]
    headings = [h.text for h in root.iter("h3")]
    assert headings[: len(names)] == names  # one distribution plot per feature
    assert "accuracy" in headings and "f1" in headings and "share of drifted features" in headings
    svgs = list(root.iter("svg"))
    assert len(svgs) == len(names) + 3  # plus drifted share, accuracy, f1 over time
    # Drifted rows are highlighted, and only those.
    rows = [tr for table in root.iter("table") for tr in table.iter("tr")]
    highlighted = {tr.find("td").text for tr in rows if tr.get("class") == "drifted"}
    drifted = {f["name"] for f in drift["features"] if f["drifted"]}
    assert drifted and drifted <= highlighted
    assert "accuracy" in highlighted  # below its limit
    assert not {f["name"] for f in drift["features"] if not f["drifted"]} & highlighted
    # Limits are drawn as dashed lines: the drift share and accuracy, not f1 (no limit).
    dashed = [line for line in root.iter("line") if line.get("stroke-dasharray")]
    assert len(dashed) == 2
    # Every result of the history is a point on each line chart.
    points = [c for c in root.iter("circle")]
    assert len(points) == 3 * len(history)
    assert "ALERT" in html and "<b>&amp;amount" not in html and "&lt;b&gt;&amp;amount" in html


def test_report_redrawn_from_stored_history(tmp_path, history):
    mlops_dir = tmp_path / ".mlops"
    mlops_dir.mkdir()
    for item in history:
        append_record(mlops_dir, item)
    stored = list_records(mlops_dir)
    out = tmp_path / "report.html"
    write_html_report(out, stored[0], stored, title="First batch")
    html = out.read_text()
    assert html == render_html_report(history[0], history, title="First batch")
    root = parse(html)
    assert root.find("head/title").text == "First batch"
    assert "HEALTHY" in html
    # A record alone (no history) still draws its single point.
    alone = parse(render_html_report(history[1]))
    assert len(list(alone.iter("circle"))) == 3


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_chromium_renders_the_report(tmp_path, history):
    page = tmp_path / "report.html"
    png = tmp_path / "report.png"
    write_html_report(page, history[-1], history)
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={png}",
            "--window-size=1200,2000",
            page.as_uri(),
        ],
        capture_output=True,
        check=True,
        timeout=120,
    )
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 2000)
    # A blank page compresses to a few kB; charts and tables make it far larger.
    assert len(data) > 50_000
