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
from pathlib import Path

from workload import (
    copy_workload,
    make_workload,
    mlops_cmd,
    new_git_repo,
    print_table,
    timed,
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


def run_tool(name: str, cli: list[str], repo: Path) -> dict[str, float]:
    """Time every step for one tool in its own repository."""
    if name == "mlops":
        subprocess.run([*cli, "init"], cwd=repo, check=True, capture_output=True)
        subprocess.run([*cli, "config", "cache.link", "[hardlink, copy]"], cwd=repo, check=True)
        add_big, add_many = [*cli, "add", "big.bin"], [*cli, "add", "many"]
        status, checkout = [*cli, "status"], [*cli, "checkout", "many"]
    else:
        subprocess.run([*cli, "init", "-q"], cwd=repo, check=True)
        subprocess.run([*cli, "config", "cache.type", "hardlink"], cwd=repo, check=True)
        subprocess.run([*cli, "config", "core.analytics", "false"], cwd=repo, check=True)
        add_big, add_many = [*cli, "add", "big.bin"], [*cli, "add", "many"]
        status, checkout = [*cli, "status"], [*cli, "checkout", "many.dvc"]
    times = {
        "add 1 GiB file": timed(add_big, repo),
        "add 20k-file folder": timed(add_many, repo),
        "status, nothing changed": timed(status, repo, repeat=5),
    }
    touch_one_file(repo)
    times["re-add after one file changed"] = timed(add_many, repo)
    shutil.rmtree(repo / "many")
    times["checkout 20k files into an empty workspace"] = timed(checkout, repo)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    workload_arguments(parser, "path of a dvc executable to compare with")
    args = parser.parse_args()
    base = Path(args.keep or tempfile.mkdtemp(prefix="mlops-bench-"))
    try:
        source = base / "workload"
        if not source.exists():
            make_workload(source, args.big_mib, args.small)
        results: dict[str, dict[str, float]] = {}
        tools = [("mlops", mlops_cmd())] + ([("dvc", [args.dvc])] if args.dvc else [])
        for name, cli in tools:
            repo = base / name
            if repo.exists():
                shutil.rmtree(repo, onerror=_force_remove)
            new_git_repo(repo)
            copy_workload(source, repo)
            results[name] = run_tool(name, cli, repo)
        # What no tool hashing with BLAKE3 can beat: a bare Python process doing only that.
        floor = timed([sys.executable, "-c", HASH_ONLY, "big.bin"], base / "mlops", repeat=3)
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
            shutil.rmtree(base, onerror=_force_remove)


def _force_remove(func, path, _exc):  # type: ignore[no-untyped-def]
    os.chmod(os.path.dirname(path), 0o755)
    func(path)


if __name__ == "__main__":
    main()
