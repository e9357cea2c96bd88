"""Ctrl-C and two ``mlops run`` at once, with real ``python -m mlops`` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers.cli import run_cli
from tests.helpers.files import write
from tests.helpers.pipeline import read_lock, run_ok, runs_json, statuses

LONG = """\
stages:
  quick:
    cmd: echo q > q.txt
    outs: [q.txt]
  long:
    cmd: echo $$ > {pid}; sleep 60; echo done > long.txt
    deps: [trigger.txt]
    outs: [long.txt]
"""


def _start_run(repo: Path, marker: Path, what: str) -> subprocess.Popen[str]:
    """Start `python -m mlops run` and wait until ``what`` has written ``marker``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops", "run"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not (marker.exists() and marker.read_text().strip()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{what} did not start"
        time.sleep(0.02)
    return proc


def _start_long_run(repo: Path, pid_file: Path) -> tuple[subprocess.Popen[str], int]:
    """Start `python -m mlops run` and wait until the long stage's shell is running."""
    proc = _start_run(repo, pid_file, "the long stage")
    return proc, int(pid_file.read_text())


def _group_exists(pgid: int, wait: float = 0.0) -> bool:
    """Whether any process of the group is alive (its reaped members may take a moment)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.05)


def _prepared(repo: Path, tmp_path: Path) -> Path:
    """A pipeline whose quick stage is up to date and whose long stage will run."""
    pid_file = tmp_path / "stage.pid"
    write(repo, "trigger.txt", "1\n")
    write(repo, "mlops.yaml", LONG.replace("{pid}", str(pid_file)).replace("sleep 60", "true"))
    run_ok(repo)
    write(repo, "mlops.yaml", LONG.replace("{pid}", str(pid_file)))
    pid_file.unlink()
    return pid_file


def test_ctrl_c_stops_the_process_group_and_records_an_interrupted_run(
    repo: Path, tmp_path: Path
) -> None:
    pid_file = _prepared(repo, tmp_path)
    lock_before = (repo / "mlops.lock").read_bytes()
    proc, pgid = _start_long_run(repo, pid_file)
    assert _group_exists(pgid)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert "mlops: interrupted" in err
    assert not _group_exists(pgid, wait=30)
    assert (repo / "mlops.lock").read_bytes() == lock_before
    run = runs_json(repo)[0]
    assert run["status"] == "interrupted"
    assert statuses(run) == {"quick": "skipped", "long": "interrupted"}
    assert not (repo / "long.txt").exists()


def test_second_run_waits_briefly_then_fails_clearly(repo: Path, tmp_path: Path) -> None:
    pid_file = _prepared(repo, tmp_path)
    proc, pgid = _start_long_run(repo, pid_file)
    try:
        started = time.monotonic()
        second = run_cli(repo, "run")
        waited = time.monotonic() - started
        assert second.exit_code == 1
        assert "another mlops command is running in this repository" in second.stderr
        assert 2.5 < waited < 10
    finally:
        proc.send_signal(signal.SIGTERM)  # stopped like Ctrl-C: the stage's group goes too
        proc.communicate(timeout=90)
    assert proc.returncode == 130
    assert not _group_exists(pgid, wait=30)
    # Nothing was corrupted: the lock still parses and the next run works.
    assert set(read_lock(repo)["stages"]) == {"quick", "long"}
    write(repo, "mlops.yaml", LONG.replace("{pid}", str(pid_file)).replace("sleep 60", "true"))
    run_ok(repo)
    assert (repo / "long.txt").read_text() == "done\n"


GUARDED = """\
stages:
  guarded:
    cmd: echo ran > ran.txt; cp d.csv out.csv
    deps: [d.csv]
    outs: [out.csv]
    checks:
      before: [slow]
checks:
  slow:
    data: d.csv
    expect:
      - {check}
"""


def _interrupt_during_check(repo: Path, marker: Path, check: str) -> tuple[str, str]:
    """Run the guarded stage once, change its input, then Ctrl-C `mlops run` while the
    before check (which writes ``marker`` when it starts) is running."""
    write(repo, "d.csv", "a\n1\n")
    write(repo, "mlops.yaml", GUARDED.replace("{check}", "rows: {min: 1}"))
    run_ok(repo)
    (repo / "ran.txt").unlink()
    lock_before = (repo / "mlops.lock").read_bytes()
    write(repo, "d.csv", "a\n1\n2\n")
    write(repo, "mlops.yaml", GUARDED.replace("{check}", check))
    proc = _start_run(repo, marker, "the check")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert (repo / "mlops.lock").read_bytes() == lock_before
    run = runs_json(repo)[0]
    assert run["status"] == "interrupted"
    assert statuses(run) == {"guarded": "interrupted"}
    return err, marker.read_text()


def test_ctrl_c_during_a_command_check_stops_the_check_command(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "check.pid"
    _, pid = _interrupt_during_check(repo, marker, f"command: echo $$ > {marker}; sleep 60")
    assert not _group_exists(int(pid), wait=30)
    assert not (repo / "ran.txt").exists()


def test_ctrl_c_during_a_before_check_never_starts_the_command(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "check.started"
    write(
        repo,
        "slowcheck.py",
        f"""\
        import time
        from pathlib import Path

        def slow(frame):
            Path({str(marker)!r}).write_text("started")
            time.sleep(2)  # Ctrl-C comes now; the check then passes
            return True
        """,
    )
    _interrupt_during_check(repo, marker, "custom: slowcheck:slow")
    time.sleep(0.5)
    assert not (repo / "ran.txt").exists()
    assert (repo / "out.csv").read_text() == "a\n1\n"  # the committed output is untouched
