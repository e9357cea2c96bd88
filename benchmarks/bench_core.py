"""Benchmark of the data versioning core against DVC, on the standard workload.

usage: python benchmarks/bench_core.py [--dvc PATH] [--big-mib N] [--small N] [--keep DIR]

Builds the workload itself, then in one run times, for mlops and (given the
path of a ``dvc`` executable) for DVC with the same link type (hardlink):
add of the big file, add of the folder of small files, status with nothing
changed, re-add after one small file changed, and checkout of the folder into
an empty workspace. Prints each step's ratio mlops/DVC, and as a floor for the
first step, a bare Python process that only hashes the big file with BLAKE3 on
every core. Not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from workload import (
    copy_workload,
    force_remove,
    make_workload,
    mlops_cmd,
    new_git_repo,
    print_table,
    timed,
    tool_env,
    workload_arguments,
)

TARGETS = {
    "add 1 GiB file": 0.1,
    "add 20k-file folder": 0.2,
    "status, nothing changed": 0.2,
    "re-add after one file changed": 0.15,
    "checkout 20k files into an empty workspace": 0.3,
}

FLOOR = "floor: BLAKE3 of the 1 GiB file, alone"
HASH_ONLY = (
    "import sys; from blake3 import blake3; "
    "blake3(max_threads=blake3.AUTO).update_mmap(sys.argv[1]).hexdigest()"
)


def touch_one_file(repo: Path) -> None:
    """Replace one small file with new content (linked files are read-only)."""
    target = repo / "many" / "00" / "0.txt"
    target.unlink()
    target.write_bytes(os.urandom(2048))


def set_up(name: str, cli: list[str], repo: Path) -> dict[str, Callable[[], float]]:
    """Initialise one tool's repository; return its steps, each timing itself."""
    if name == "mlops":
        # Compiled as pip compiles an installed package (an editable one compiles on use).
        package = str(Path(__import__("mlops").__file__).parent)
        subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True)
        setup = [["init"], ["config", "cache.link", "[hardlink, copy]"]]
        checkout = [*cli, "checkout", "many"]
    else:
        setup = [["init", "-q"], ["config", "cache.type", "hardlink"]]
        setup.append(["config", "core.analytics", "false"])
        checkout = [*cli, "checkout", "many.dvc"]
    for args in setup:  # also writes the bytecode a timed step would otherwise compile
        subprocess.run([*cli, *args], cwd=repo, check=True, capture_output=True, env=tool_env())
    add_big, add_many = [*cli, "add", "big.bin"], [*cli, "add", "many"]

    def readd() -> float:
        touch_one_file(repo)
        return timed(add_many, repo)

    def checkout_into_empty() -> float:
        shutil.rmtree(repo / "many")
        return timed(checkout, repo)

    steps = [
        lambda: timed(add_big, repo),
        lambda: timed(add_many, repo),
        lambda: timed([*cli, "status"], repo, repeat=5),
        readd,
        checkout_into_empty,
    ]
    return dict(zip(TARGETS, steps, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    workload_arguments(parser, "path of a dvc executable to compare with")
    args = parser.parse_args()
    base = Path(args.keep or tempfile.mkdtemp(prefix="mlops-bench-"))
    try:
        source = base / "workload"
        if not source.exists():
            make_workload(source, args.big_mib, args.small)
        steps: dict[str, dict[str, Callable[[], float]]] = {}
        tools = [("mlops", mlops_cmd())] + ([("dvc", [args.dvc])] if args.dvc else [])
        for name, cli in tools:
            repo = base / name
            if repo.exists():
                shutil.rmtree(repo, onerror=force_remove)
            new_git_repo(repo)
            copy_workload(source, repo)
            steps[name] = set_up(name, cli, repo)
        # Step by step, the tools in turn: a shared machine's speed drifts over a run,
        # and each ratio should compare the two tools at about the same moment. Each
        # step starts with nothing left to write back to disk from what came before.
        results: dict[str, dict[str, float]] = {name: {} for name in steps}
        floor = 0.0
        for step in TARGETS:
            for name in steps:
                os.sync()
                results[name][step] = steps[name][step]()
            if step == "add 1 GiB file":
                # What no tool hashing with BLAKE3 can beat: a bare Python process doing
                # only that, timed right after the adds so that it sees the same machine.
                hash_only = [sys.executable, "-c", HASH_ONLY, "big.bin"]
                floor = timed(hash_only, base / "mlops", repeat=3)
        print(f"workload: {args.big_mib} MiB file, {args.small} small files; link type hardlink")
        print_table(
            [
                (step, results["mlops"][step], results.get("dvc", {}).get(step), TARGETS[step])
                for step in TARGETS
            ]
            + [(FLOOR, floor, results.get("dvc", {}).get("add 1 GiB file"), None)]
        )
    finally:
        if not args.keep:
            shutil.rmtree(base, onerror=force_remove)


if __name__ == "__main__":
    main()
