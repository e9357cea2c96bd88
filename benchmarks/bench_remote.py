"""Benchmark of push / pull and the pre-commit hook against DVC, on the standard workload.

usage: python benchmarks/bench_remote.py [--dvc PATH] [--big-mib N] [--small N] [--keep DIR]

Builds the workload itself (one big file and many ~2 KiB files in 100
sub-folders), then in one run times, for mlops and (given the path of a ``dvc``
executable with dvc-s3) for DVC, both with hardlinked caches:

- push everything to a local-folder remote, and pull it into a fresh clone;
- push the folder of small files to an S3 server (moto, started here on
  127.0.0.1), and pull it into a fresh clone;
- the pre-commit hook on the clean repository, against ``dvc status`` (the two
  run in turn, nine times each, at the end).

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
from pathlib import Path

from workload import (
    AWS_ENV,
    copy_workload,
    make_bucket,
    make_workload,
    mlops_cmd,
    new_git_repo,
    print_table,
    start_moto,
    timed,
    workload_arguments,
)

TARGETS = {
    "push big + small files to a local folder": 0.25,
    "pull them into a fresh clone": 0.2,
    "push small files to S3 (moto)": 0.3,
    "pull small files from S3 into a fresh clone": 0.3,
    "pre-commit hook, clean (vs dvc status)": 0.2,
}


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"setup step failed: {' '.join(cmd)}\n{proc.stderr.decode()[-2000:]}")


def clone(repo: Path, dest: Path) -> Path:
    run(["git", "clone", "-q", str(repo), str(dest)], repo.parent)
    return dest


def run_tool(
    name: str, cli: list[str], base: Path, source: Path, endpoint: str
) -> tuple[dict[str, float], tuple[list[str], Path]]:
    """Time every step for one tool; return the times and its status check (timed later)."""
    env = {**os.environ, **AWS_ENV}
    repo = new_git_repo(base / "repo")
    copy_workload(source, repo)
    store, bucket = base / "store", f"bench-{name}"
    make_bucket(endpoint, bucket)
    if name == "mlops":
        setup = [
            ["init"],
            ["config", "cache.link", "[hardlink, copy]"],
            ["add", "big.bin", "many"],
            ["remote", "add", "origin", str(store), "--default"],
            ["remote", "add", "s3", f"s3://{bucket}/store"],
            ["remote", "modify", "s3", "endpoint_url", endpoint],
            ["install-hooks"],
        ]
        push_s3, pull_s3 = ["push", "many", "-r", "s3"], ["pull", "many", "-r", "s3"]
        hook = [str(repo / ".git" / "hooks" / "pre-commit")]
    else:
        setup = [
            ["init", "-q"],
            ["config", "cache.type", "hardlink"],
            ["config", "core.analytics", "false"],
            ["add", "-q", "big.bin", "many"],
            ["remote", "add", "-d", "origin", str(store)],
            ["remote", "add", "s3", f"s3://{bucket}/store"],
            ["remote", "modify", "s3", "endpointurl", endpoint],
        ]
        push_s3, pull_s3 = ["push", "many.dvc", "-r", "s3"], ["pull", "many.dvc", "-r", "s3"]
        hook = [*cli, "status"]
    for args in setup:
        run([*cli, *args], repo, env)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "workload"], repo)
    times = {"push big + small files to a local folder": timed([*cli, "push"], repo, env=env)}
    fresh = clone(repo, base / "clone")
    times["pull them into a fresh clone"] = timed([*cli, "pull"], fresh, env=env)
    times["push small files to S3 (moto)"] = timed([*cli, *push_s3], repo, env=env)
    fresh_s3 = clone(repo, base / "clone-s3")
    times["pull small files from S3 into a fresh clone"] = timed(
        [*cli, *pull_s3], fresh_s3, env=env
    )
    timed(hook, repo)  # warm: the first status after a commit records fingerprints
    return times, (hook, repo)


def time_alternately(commands: dict[str, tuple[list[str], Path]], rounds: int) -> dict[str, float]:
    """Median times of quick commands run in turn, so that both tools see the same load."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, (cmd, cwd) in commands.items():
            samples[name].append(timed(cmd, cwd))
    return {name: statistics.median(times) for name, times in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    workload_arguments(parser, "path of a dvc executable (with dvc-s3) to compare with")
    args = parser.parse_args()
    base = Path(args.keep or tempfile.mkdtemp(prefix="mlops-bench-remote-"))
    moto, endpoint = start_moto()
    try:
        source = base / "workload"
        if not source.exists():
            make_workload(source, args.big_mib, args.small)
        results: dict[str, dict[str, float]] = {}
        checks: dict[str, tuple[list[str], Path]] = {}
        tools = [("mlops", mlops_cmd())] + ([("dvc", [args.dvc])] if args.dvc else [])
        for name, cli in tools:
            folder = base / name
            if folder.exists():
                subprocess.run(["chmod", "-R", "u+w", str(folder)], check=False)
                shutil.rmtree(folder)
            folder.mkdir()
            results[name], checks[name] = run_tool(name, cli, folder, source, endpoint)
        for name, seconds in time_alternately(checks, rounds=9).items():
            results[name]["pre-commit hook, clean (vs dvc status)"] = seconds
        print(f"workload: {args.big_mib} MiB file + {args.small} small files; links: hardlink")
        print_table(
            [
                (step, results["mlops"][step], results.get("dvc", {}).get(step), target)
                for step, target in TARGETS.items()
            ]
        )
    finally:
        moto.terminate()
        moto.wait()
        if not args.keep:
            subprocess.run(["chmod", "-R", "u+w", str(base)], check=False)
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
