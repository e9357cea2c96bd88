"""Benchmark of `mlops run` against `dvc repro`.

usage: python benchmarks/bench_pipeline.py [--dvc PATH] [--stages N] [--jobs N] [--rounds N]
                                           [--keep DIR]

Times, for mlops and (given the path of a ``dvc`` executable) for DVC, with the
same pipelines written as mlops.yaml and dvc.yaml and both caches at their
default link types:

- a run with nothing to do of the 3-stage iris example (examples/iris);
- the first run of N (default 200) independent one-line ``cp`` stages (mlops
  with ``-j``; ``dvc repro`` has no parallel mode);
- a run with nothing to do of those N stages;
- ``-j 2`` on two independent stages that sleep 1 s (the target is absolute).

The runs with nothing to do alternate between the tools, so both see the same load.

Prints each step's ratio mlops/DVC. Not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workload import many_stages, mlops_cmd, new_git_repo, print_table, timed, tool_env

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "iris"
TARGETS = {
    "run, nothing to do, 3-stage example": 0.3,
    "first run of N trivial cp stages": 0.1,
    "run, nothing to do, N one-line stages": 0.1,
}
ORDER = (
    "run, nothing to do, 3-stage example",
    "first run of N trivial cp stages",
    "run, nothing to do, N one-line stages",
    "two 1 s stages with -j 2 (absolute < 1.5 s)",
)
SLEEPERS = """\
stages:
  one:
    cmd: sleep 1 && echo 1 > one.txt
    outs: [one.txt]
  two:
    cmd: sleep 1 && echo 2 > two.txt
    outs: [two.txt]
"""


def setup(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"setup step failed: {' '.join(cmd)}\n{proc.stderr.decode()[-2000:]}")


def init(tool: str, cli: list[str], repo: Path, env: dict[str, str]) -> None:
    if tool == "mlops":
        setup([*cli, "init"], repo, env)
    else:
        setup([*cli, "init", "-q"], repo, env)
        setup([*cli, "config", "core.analytics", "false"], repo, env)


def copy_pipeline(repo: Path, tool: str) -> None:
    """Write the pipeline file under the tool's name: for DVC, without what only mlops
    knows (check suites, model registration, monitoring)."""
    if tool == "mlops":
        return
    import yaml

    doc = yaml.safe_load((repo / "mlops.yaml").read_text())
    (repo / "mlops.yaml").unlink()
    for key in ("checks", "models", "monitor", "include"):
        doc.pop(key, None)
    for stage in doc["stages"].values():
        stage.pop("checks", None)
        stage.pop("register", None)
        # DVC spells uncached metrics and plots per file.
        for key in ("metrics", "plots"):
            if key in stage:
                stage[key] = [{path: {"cache": False}} for path in stage[key]]
    (repo / "dvc.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def run_cmd(tool: str, cli: list[str], jobs: int = 1) -> list[str]:
    if tool == "mlops":
        return [*cli, "run", *(["-j", str(jobs)] if jobs > 1 else [])]
    return [*cli, "repro"]


def stage_env() -> dict[str, str]:
    # Stage commands call `python`: the interpreter this benchmark runs on (it has sklearn).
    return {**tool_env(), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def prepare_tool(
    tool: str, cli: list[str], work: Path, n: int, jobs: int, times: dict[str, float]
) -> dict[str, Path]:
    """Build one tool's repositories; time the first run of the N stages and -j 2."""
    env = stage_env()
    example = new_git_repo(work / tool / "example")
    shutil.copytree(EXAMPLE, example, dirs_exist_ok=True)
    setup([sys.executable, "src/collect.py"], example, env)  # writes data/raw.csv
    copy_pipeline(example, tool)
    init(tool, cli, example, env)
    setup(run_cmd(tool, cli), example, env)  # the first run (sklearn) is not timed

    many = new_git_repo(work / tool / "many")
    many_stages(many, n)
    copy_pipeline(many, tool)
    init(tool, cli, many, env)
    times["first run of N trivial cp stages"] = timed(run_cmd(tool, cli, jobs), many, env=env)

    sleepers = new_git_repo(work / tool / "sleepers")
    (sleepers / "mlops.yaml").write_text(SLEEPERS)
    copy_pipeline(sleepers, tool)
    init(tool, cli, sleepers, env)
    start = time.perf_counter()
    setup(run_cmd(tool, cli, 2), sleepers, env)
    times["two 1 s stages with -j 2 (absolute < 1.5 s)"] = time.perf_counter() - start
    return {"example": example, "many": many}


def time_no_ops(
    tools: dict[str, list[str]], repos: dict[str, dict[str, Path]], rounds: int
) -> dict[str, dict[str, float]]:
    """Runs with nothing to do, the tools taking turns so that both see the same load."""
    env = stage_env()
    steps = {
        "run, nothing to do, 3-stage example": "example",
        "run, nothing to do, N one-line stages": "many",
    }
    samples: dict[str, dict[str, list[float]]] = {t: {s: [] for s in steps} for t in tools}
    for _ in range(rounds):
        for step, repo in steps.items():
            for tool, cli in tools.items():
                samples[tool][step].append(timed(run_cmd(tool, cli), repos[tool][repo], env=env))
    return {t: {s: statistics.median(v) for s, v in by.items()} for t, by in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dvc", help="path of a dvc executable to compare with")
    parser.add_argument("--stages", type=int, default=200, help="independent stages (200)")
    parser.add_argument("--jobs", type=int, default=8, help="mlops -j for the first run (8)")
    parser.add_argument("--rounds", type=int, default=7, help="no-op runs per tool (7)")
    parser.add_argument("--keep", help="build the repositories here and keep them")
    args = parser.parse_args()

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mlops-bench-"))
    tools = {"mlops": mlops_cmd(), **({"dvc": [args.dvc]} if args.dvc else {})}
    times: dict[str, dict[str, float]] = {tool: {} for tool in tools}
    try:
        repos = {
            tool: prepare_tool(tool, cli, work, args.stages, args.jobs, times[tool])
            for tool, cli in tools.items()
        }
        for tool, no_ops in time_no_ops(tools, repos, args.rounds).items():
            times[tool].update(no_ops)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    ours, theirs = times["mlops"], times.get("dvc", {})
    print(
        f"N = {args.stages} stages; mlops first run with -j {args.jobs}; medians of "
        f"{args.rounds} alternating no-op runs"
    )
    print_table([(step, ours[step], theirs.get(step), TARGETS.get(step)) for step in ORDER])


if __name__ == "__main__":
    main()
