"""A/B benchmark: this checkout's mlops against another revision's, on the same work.

usage: python benchmarks/bench_ab.py --base REV [--rounds N] [--big-mib N] [--small N]
                                     [--link copy|hardlink|...]

For checking that a change costs nothing measurable: both versions run each step on
the standard workload in turn (A, B, B, A, ...), each in its own repository, and the
ratio new/base of each round is printed with the median and range. The base runs from
a temporary worktree of REV through PYTHONPATH (its dependencies are this
environment's). Steps: add of the big file, add of the folder of small files, status
with nothing changed, status after one file changed, checkout of both into an
empty workspace; then, on a pipeline of ``--stages`` one-line stages, the first run,
a run with nothing to do, and status. Not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from workload import copy_workload, make_workload, many_stages, new_git_repo, tool_env

STEPS = (
    "add big file",
    "add folder",
    "status clean",
    "status after a change",
    "checkout",
    "run, first",
    "run, nothing to do",
    "status of the stages",
)


def run_steps(
    source: Path, env: dict[str, str], repo: Path, link: str, measure: str, stages: int
) -> dict[str, float]:
    import time

    cli = [sys.executable, "-m", "mlops"]
    new_git_repo(repo)
    copy_workload(source, repo)

    def step(*args: str) -> float:
        # CPU time of the command: on a shared machine whose disk writeback stalls both
        # versions at random, far steadier than wall time.
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run([*cli, *args], cwd=repo, capture_output=True, env=env)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode not in (0, 1):
            sys.exit(f"mlops {' '.join(args)} failed: {proc.stderr.decode()[-2000:]}")
        user = after.ru_utime - before.ru_utime
        cpu = user + (after.ru_stime - before.ru_stime)
        return {"cpu": cpu, "user": user}.get(measure, elapsed)

    for args in (["init"], ["config", "cache.link", f"[{link}]"]):
        subprocess.run([*cli, *args], cwd=repo, check=True, capture_output=True, env=env)
    times = {"add big file": step("add", "big.bin"), "add folder": step("add", "many")}
    times["status clean"] = step("status")
    target = repo / "many" / "00" / "0.txt"
    target.unlink()
    target.write_bytes(os.urandom(2048))
    times["status after a change"] = step("status")
    shutil.rmtree(repo / "many")
    (repo / "big.bin").unlink()
    times["checkout"] = step("checkout", "--force")
    many_stages(repo, stages)
    times["run, first"] = step("run", "-j", "2")
    times["run, nothing to do"] = step("run")
    times["status of the stages"] = step("status")
    shutil.rmtree(repo)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="the revision to compare with")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--small", type=int, default=20000)
    parser.add_argument("--link", default="copy")
    parser.add_argument("--stages", type=int, default=200)
    parser.add_argument("--verbose", action="store_true", help="also each version's times")
    # user: the process's own work; the kernel's part (sys) of copying a gigabyte swings
    # several-fold with the page cache and writeback of a shared machine.
    parser.add_argument("--measure", choices=("user", "cpu", "wall"), default="user")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent
    work = Path(tempfile.mkdtemp(prefix="mlops-ab-"))
    base_tree = work / "base-code"
    subprocess.run(
        ["git", "worktree", "add", "-q", "--detach", str(base_tree), args.base],
        cwd=here,
        check=True,
    )
    try:
        source = work / "workload"
        make_workload(source, args.big_mib, args.small)
        envs = {
            "base": {**tool_env(), "PYTHONPATH": str(base_tree)},
            "new": {**tool_env(), "PYTHONPATH": str(here)},
        }
        ratios: dict[str, list[float]] = {s: [] for s in STEPS}
        for round_ in range(args.rounds):
            order = ("base", "new") if round_ % 2 == 0 else ("new", "base")
            got = {
                who: run_steps(
                    source, envs[who], work / f"repo-{who}", args.link, args.measure, args.stages
                )
                for who in order
            }
            for s in STEPS:
                ratios[s].append(got["new"][s] / got["base"][s])
            print(f"round {round_ + 1}: " + ", ".join(f"{s} {ratios[s][-1]:.2f}" for s in STEPS))
            if args.verbose:
                for who in order:
                    print(f"  {who}: " + ", ".join(f"{s} {got[who][s]:.2f} s" for s in STEPS))
        print(f"\nnew / base, {args.measure} time ({args.link} links, {args.rounds} rounds):")
        for s in STEPS:
            r = ratios[s]
            print(f"  {s:<24} {statistics.median(r):.3f} ({min(r):.3f}-{max(r):.3f})")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=here)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
