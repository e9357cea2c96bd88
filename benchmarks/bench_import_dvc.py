"""Benchmark of `mlops import-dvc` against `dvc add` of the same data.

usage: python benchmarks/bench_import_dvc.py --dvc PATH [--rounds N] [--dvc-link TYPE]
                                             [--big-mib N] [--small N] [--keep DIR]

Each round: a new Git repository with the standard workload (one 1 GiB file and
20,000 small files), `dvc init`, DVC's cache link type set (default hardlink, as
bench_core.py), then timed: `dvc add big.bin many` (the peer), and in the same
repository `mlops import-dvc`, which links DVC's objects into its cache, checks
each against its MD5 and hashes it with BLAKE3, and writes the pointers. Then the
first `mlops status` after the import is timed too (it should find everything
known). Prints each round's ratio import / add and the range. Not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from workload import (
    copy_workload,
    force_remove,
    make_workload,
    mlops_cmd,
    new_git_repo,
    timed,
    tool_env,
    workload_arguments,
)

TARGET = 1.0  # issue 21: at most as long as `dvc add` of the same data


def one_round(source: Path, repo: Path, dvc: str, link: str) -> tuple[float, float, float]:
    """(dvc add, mlops import-dvc, first mlops status) seconds in a new repository."""
    new_git_repo(repo)
    copy_workload(source, repo)
    for args in (
        ["init", "-q"],
        ["config", "cache.type", link],
        ["config", "core.analytics", "false"],
    ):
        subprocess.run([dvc, *args], cwd=repo, check=True, capture_output=True, env=tool_env())
    os.sync()
    add = timed([dvc, "add", "-q", "big.bin", "many"], repo)
    os.sync()
    imported = timed([*mlops_cmd(), "import-dvc"], repo)
    status = timed([*mlops_cmd(), "status"], repo)
    return add, imported, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    workload_arguments(parser, "path of a dvc executable (required)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dvc-link", default="hardlink", help="DVC's cache.type")
    args = parser.parse_args()
    if not args.dvc:
        sys.exit("--dvc PATH is required: install DVC in its own environment")
    # Compiled as pip compiles an installed package (an editable one compiles on use).
    package = str(Path(__import__("mlops").__file__).parent)
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True)
    base = Path(args.keep or tempfile.mkdtemp(prefix="mlops-bench-import-"))
    try:
        source = base / "workload"
        if not source.exists():
            make_workload(source, args.big_mib, args.small)
        print(
            f"workload: {args.big_mib} MiB file, {args.small} small files; DVC cache.type "
            f"{args.dvc_link}; the machine is shared, so times drift within a run"
        )
        print(f"{'round':<6} {'dvc add s':>10} {'import s':>10} {'ratio':>7} {'status s':>9}")
        ratios = []
        for i in range(args.rounds):
            repo = base / f"round-{i}"
            if repo.exists():
                shutil.rmtree(repo, onerror=force_remove)
            add, imported, status = one_round(source, repo, args.dvc, args.dvc_link)
            ratios.append(imported / add)
            print(
                f"{i + 1:<6} {add:>10.3f} {imported:>10.3f} {imported / add:>7.3f} {status:>9.3f}"
            )
            shutil.rmtree(repo, onerror=force_remove)
        ratios.sort()
        print(
            f"import-dvc / dvc add: median {ratios[len(ratios) // 2]:.3f} "
            f"(range {ratios[0]:.3f}-{ratios[-1]:.3f}), target <= {TARGET:.2f}"
        )
    finally:
        if not args.keep:
            shutil.rmtree(base, onerror=force_remove)


if __name__ == "__main__":
    main()
