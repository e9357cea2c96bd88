"""Benchmark of the experiments table (`mlops runs table`) over many recorded runs.

usage: python benchmarks/bench_runs_table.py [--runs N] [--rounds N] [--keep DIR]

Records N (default 5,000) runs of a 3-stage pipeline in a new repository's
runs.db (each run: 8 params, 6 metrics, one of 20 commits), then times the whole
command `mlops runs table --csv` as a process, and `--per-commit --sort-by acc`.
The target is absolute (0.5 s, from issue 21), not a ratio: no peer reads a run
store like this one. Not part of the tests.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workload import mlops_cmd, new_git_repo, timed

TARGET = 0.5


def record_runs(root: Path, count: int) -> None:
    """``count`` run records, saved as ``mlops run`` saves them."""
    from mlops.core.repo import Repo
    from mlops.pipeline.runs import RunRecord, StageRecord, open_runs

    rng = random.Random(21)
    commits = [f"{i:040x}" for i in range(20)]
    db = open_runs(Repo(root))
    try:
        for i in range(count):
            params = {f"train.p{k}": rng.random() for k in range(8)}
            metrics = {f"m{k}": rng.random() for k in range(5)} | {"acc": rng.random()}
            stages = (
                StageRecord("prepare", "skipped", params={"params.yaml": {"prepare.split": 0.2}}),
                StageRecord("train", "ran", params={"params.yaml": params}, deps={"d": "x" * 64}),
                StageRecord("evaluate", "ran", metrics={"metrics.json": metrics}),
            )
            started = 1_700_000_000.0 + i
            db.save(
                RunRecord(
                    f"{i:012x}", started, started + 3, "success", "u", "h",
                    commits[i % 20], False, ("mlops", "run"), "3.11", {"numpy": "2"}, stages,
                ),
                [],
            )  # fmt: skip
    finally:
        db.close()


def table_in_process(root: Path) -> float:
    """The library's part alone: the table of every run and its text cells."""
    from mlops.core.repo import Repo
    from mlops.pipeline.experiments import TableQuery, runs_table, table_cells

    start = time.perf_counter()
    table_cells(runs_table(Repo(root), TableQuery(all_commits=True)))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", help="work in this folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = new_git_repo(Path(args.keep or tmp) / "repo")
        subprocess.run([*mlops_cmd(), "init"], cwd=root, check=True, capture_output=True)
        start = time.perf_counter()
        record_runs(root, args.runs)
        print(f"recorded {args.runs} runs in {time.perf_counter() - start:.1f} s")
        print("(the machine is shared: times vary with the other work on it)")
        steps = {
            "runs table --csv": ["runs", "table", "--csv", "--all-commits"],
            "runs table --per-commit --sort-by acc": [
                "runs", "table", "--csv", "-A", "--per-commit", "--sort-by", "acc",
            ],
            "runs table (rich, to a pipe)": ["runs", "table", "-A"],
            "mlops --help (start-up alone)": ["--help"],
        }  # fmt: skip
        print(f"{'step':<40} {'min s':>7} {'max s':>7} {'target':>7}")
        in_process = [table_in_process(root) for _ in range(args.rounds)]
        print(
            f"{'in process: query, rows and cells':<40} {min(in_process):>7.3f} "
            f"{max(in_process):>7.3f} {'-':>7}"
        )
        for name, argv in steps.items():
            times = [timed([*mlops_cmd(), *argv], root) for _ in range(args.rounds)]
            goal = "-" if argv == ["--help"] else f"{TARGET:.2f}"
            print(f"{name:<40} {min(times):>7.3f} {max(times):>7.3f} {goal:>7}")


if __name__ == "__main__":
    sys.exit(main())
