"""When progress is first reported during ``add`` of many files and ``push`` of their objects.

Prints, for each command, its total time and when the first report of work under way
arrived, per phase. A bar shows one second in when something was reported by then;
run it with ``PYTHONPATH`` pointing at another checkout of mlops to compare versions
on the same machine in the same run (the machine is shared: quote ranges).

    python benchmarks/bench_progress.py --small 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workload import make_workload


def timeline(action: str, repo: Path) -> tuple[float, dict[str, float], float | None]:
    """Total seconds of ``action``, per phase the second of its first report, and the
    second of the first report one second in or later (when a bar that waits for a
    report after a second, as before, appears)."""
    from mlops.core.repo import Repo
    from mlops.flows.roots import push
    from mlops.workspace.add import add

    first: dict[str, float] = {}
    late: list[float] = []
    start = time.perf_counter()

    def report(task: str, done: int, total: int) -> None:
        now = time.perf_counter() - start
        first.setdefault(task, now)
        if now >= 1.0 and not late:
            late.append(now)

    if action == "add":
        add(Repo(repo), [str(repo / "many")], progress=report)
    else:
        push(Repo(repo), progress=report)
    return time.perf_counter() - start, first, late[0] if late else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for round_ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            repo = Path(tmp) / "repo"
            make_workload(repo, big_mib=0, n_small=args.small)
            (repo / "big.bin").unlink()
            subprocess.run(["git", "init", "-q", str(repo)], check=True)
            subprocess.run([sys.executable, "-m", "mlops", "init"], cwd=repo, check=True)
            subprocess.run(
                [sys.executable, "-m", "mlops", "remote", "add", "o", "../store", "--default"],
                cwd=repo,
                check=True,
                capture_output=True,
            )
            for action in ("add", "push"):
                total, first, late = timeline(action, repo)
                phases = ", ".join(f"{task} at {at:.2f} s" for task, at in first.items())
                after = "none" if late is None else f"{late:.2f} s"
                print(
                    f"round {round_ + 1}: {action} {args.small} files: {total:.2f} s; "
                    f"{phases}; first report from 1 s on: {after}"
                )


if __name__ == "__main__":
    main()
