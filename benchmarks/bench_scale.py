"""How mlops and DVC grow with the number of files: 20k, 100k, 300k (and 1M) files.

usage: python benchmarks/bench_scale.py [--dvc PATH] [--sizes 20000,100000,300000]
                                        [--million] [--rounds N] [--keep DIR]
                                        [--s3-sizes 300000]

Each workload is one folder of 200 subfolders of ~0.5 KiB files, made here. For each
size, both tools (hardlink cache links) run, in turn: add, status with nothing
changed, status after one file changed, re-add after that change, and checkout into
an empty workspace; mlops also times status after the change relative to the clean
status (the target is at most 1.3x) and `mlops diff` of two snapshots that differ by
ten files, and status and re-add after one change with the file-system monitor on.
At the sizes of ``--s3-sizes`` both push the folder to moto's S3 server on 127.0.0.1 (started
here; DVC needs dvc-s3), push again with nothing to send, and pull into a fresh clone.
Each step is the median of ``--rounds`` runs; peak memory is the largest resident set
of any of mlops's runs at that size. The last columns give each step's growth per
file between the two largest sizes. Not part of the tests.

mlops runs from the environment of the Python that runs this script: install it there
as users do (``pip install ".[fsmonitor]"``, not ``-e``: an editable install's import
hook adds about 15 ms to every command, which is most of a status with the monitor).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
from pathlib import Path

from workload import AWS_ENV, make_bucket, mlops_cmd, new_git_repo, start_moto, timed, tool_env

STEPS = ("add", "status clean", "status after 1 change", "re-add after 1 change", "checkout")
TRANSFERS = ("push to S3", "push to S3, nothing to send", "pull from S3 into a clone")
MLOPS_ONLY = (
    "diff of 10 files",
    "status after 1 change, fsmonitor",
    "re-add after 1 change, fsmonitor",
)


def make_files(root: Path, count: int) -> None:
    """``count`` distinct ~0.5 KiB files in 200 subfolders of ``root/ds``."""
    for group in range(200):
        (root / "ds" / f"{group:03d}").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        with open(root / "ds" / f"{i % 200:03d}" / f"{i}.txt", "wb") as handle:
            handle.write(os.urandom(500) + str(i).encode())


def change_one(repo: Path, n: int) -> None:
    """Give one file new content under a new inode (linked files are read-only)."""
    target = repo / "ds" / "007" / "7.txt"
    target.unlink()
    target.write_bytes(os.urandom(500) + str(n).encode())


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run_tool(
    name: str, cli: list[str], source: Path, work: Path, rounds: int, endpoint: str | None
) -> dict[str, float]:
    repo = new_git_repo(work / name)
    subprocess.run(["cp", "-r", f"{source}/ds", str(repo / "ds")], check=True)  # own inodes
    if name == "mlops":
        setup = [["init"], ["config", "cache.link", "[hardlink, copy]"]]
        status, checkout = [*cli, "status"], [*cli, "checkout", "ds"]
    else:
        setup = [["init", "-q"], ["config", "cache.type", "hardlink"]]
        setup.append(["config", "core.analytics", "false"])
        status, checkout = [*cli, "status"], [*cli, "checkout", "ds.dvc"]
    for args in setup:
        subprocess.run([*cli, *args], cwd=repo, check=True, capture_output=True, env=tool_env())
    times = {"add": timed([*cli, "add", "ds"], repo)}
    times["status clean"] = timed(status, repo, rounds)
    change_one(repo, 1)
    times["status after 1 change"] = timed(status, repo, rounds)
    times["re-add after 1 change"] = timed([*cli, "add", "ds"], repo)
    if endpoint:
        times.update(transfers(name, cli, repo, work, endpoint))
    shutil.rmtree(repo / "ds")
    times["checkout"] = timed(checkout, repo)
    if name == "mlops":
        times["diff of 10 files"] = mlops_diff(cli, repo)
        times.update(fsmonitor_steps(cli, repo, rounds))
    subprocess.run(["chmod", "-R", "u+w", str(repo)], check=False)
    shutil.rmtree(repo)
    return times


def transfers(name: str, cli: list[str], repo: Path, work: Path, endpoint: str) -> dict[str, float]:
    """Push ``ds`` to a new bucket, push again (nothing to send), pull into a fresh clone."""
    env = {**tool_env(), **AWS_ENV}
    bucket = f"scale-{name}-{os.getpid()}-{len(list(work.iterdir()))}"
    make_bucket(endpoint, bucket)
    key = "endpoint_url" if name == "mlops" else "endpointurl"
    target = "ds" if name == "mlops" else "ds.dvc"
    for args in (
        ["remote", "add", "s3", f"s3://{bucket}/store"],
        ["remote", "modify", "s3", key, endpoint],
    ):
        subprocess.run([*cli, *args], cwd=repo, check=True, capture_output=True, env=env)
    git = ["git", "-c", "user.email=b@e", "-c", "user.name=b"]
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True, env=env)
    subprocess.run([*git, "commit", "-qm", "data"], cwd=repo, check=True, env=env)
    times = {"push to S3": timed([*cli, "push", target, "-r", "s3"], repo, env=env)}
    times["push to S3, nothing to send"] = timed([*cli, "push", target, "-r", "s3"], repo, env=env)
    clone = work / f"{name}-clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, env=env)
    times["pull from S3 into a clone"] = timed([*cli, "pull", target, "-r", "s3"], clone, env=env)
    subprocess.run(["chmod", "-R", "u+w", str(clone)], check=False)
    shutil.rmtree(clone)
    return times


def fsmonitor_steps(cli: list[str], repo: Path, rounds: int) -> dict[str, float]:
    """Status, and re-add, after one change with ``core.fsmonitor`` on (the daemon
    started and warm)."""
    env = tool_env()
    subprocess.run([*cli, "config", "core.fsmonitor", "true"], cwd=repo, check=True, env=env)
    timed([*cli, "status"], repo)  # starts the daemon and records the fingerprints
    samples = []
    for n in range(rounds):
        change_one(repo, 100 + n)
        timed([*cli, "status"], repo)  # the first answer after a change records it
        change_one(repo, 200 + n)
        samples.append(timed([*cli, "status"], repo))
    adds = []
    for n in range(rounds):
        change_one(repo, 300 + n)
        adds.append(timed([*cli, "add", "ds"], repo))
    subprocess.run([*cli, "fsmonitor", "stop"], cwd=repo, check=False, capture_output=True, env=env)
    return {
        "status after 1 change, fsmonitor": sorted(samples)[len(samples) // 2],
        "re-add after 1 change, fsmonitor": sorted(adds)[len(adds) // 2],
    }


def mlops_diff(cli: list[str], repo: Path) -> float:
    """`mlops diff` of two commits whose snapshots differ by ten files."""
    env = tool_env()
    git = ["git", "-c", "user.email=b@e", "-c", "user.name=b"]
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True, env=env)
    # --allow-empty: after the transfers the pointer is committed already.
    subprocess.run([*git, "commit", "-qm", "a", "--allow-empty"], cwd=repo, check=True, env=env)
    for i in range(10):
        change_one_at(repo, i)
    subprocess.run([*cli, "add", "ds"], cwd=repo, check=True, capture_output=True, env=env)
    subprocess.run([*git, "commit", "-qam", "b"], cwd=repo, check=True, env=env)
    return timed([*cli, "diff", "HEAD~1", "HEAD"], repo)


def change_one_at(repo: Path, i: int) -> None:
    target = repo / "ds" / f"{i:03d}" / f"{i}.txt"
    target.unlink()
    target.write_bytes(os.urandom(500))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dvc", help="path of a dvc executable to compare with")
    parser.add_argument("--sizes", default="20000,100000,300000")
    parser.add_argument("--million", action="store_true", help="also 1,000,000 files")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", help="work in this folder (default: a temporary one)")
    parser.add_argument(
        "--s3-sizes", default="", help="sizes (comma-separated) at which to push and pull to S3"
    )
    args = parser.parse_args()
    s3_sizes = {int(s) for s in args.s3_sizes.split(",") if s}
    moto, endpoint = start_moto() if s3_sizes else (None, None)
    sizes = [int(s) for s in args.sizes.split(",")] + ([1_000_000] if args.million else [])
    base = Path(args.keep or tempfile.mkdtemp(prefix="mlops-scale-"))
    try:
        results: dict[int, dict[str, dict[str, float]]] = {}
        for size in sizes:
            source = base / f"files-{size}"
            if not source.exists():
                make_files(source, size)
            results[size] = {}
            before = peak_rss_mib()
            s3 = endpoint if size in s3_sizes else None
            results[size]["mlops"] = run_tool("mlops", mlops_cmd(), source, base, args.rounds, s3)
            rss = peak_rss_mib()
            if args.dvc:
                results[size]["dvc"] = run_tool("dvc", [args.dvc], source, base, args.rounds, s3)
            if not args.keep:
                shutil.rmtree(source)
            print(
                f"\n{size:,} files (peak RSS of mlops's runs: {rss:.0f} MiB, before: {before:.0f})"
            )
            print(f"{'step':<36} {'mlops s':>9} {'dvc s':>9} {'ratio':>7}")
            ours, theirs = results[size]["mlops"], results[size].get("dvc", {})
            for step in (*STEPS, *TRANSFERS, *MLOPS_ONLY):
                if step not in ours:
                    continue
                dvc = theirs.get(step)
                ratio = f"{ours[step] / dvc:.3f}" if dvc else "-"
                shown = f"{dvc:.3f}" if dvc else "-"
                print(f"{step:<36} {ours[step]:>9.3f} {shown:>9} {ratio:>7}")
            clean = ours["status clean"]
            print(
                f"status after 1 change / clean status: {ours['status after 1 change'] / clean:.2f}"
            )
        if len(sizes) > 1:
            small, large = sizes[-2], sizes[-1]
            print(f"\ngrowth per file between {small:,} and {large:,} files (µs per file)")
            for tool in ("mlops", "dvc"):
                if tool not in results[large]:
                    continue
                growth = {
                    step: (results[large][tool][step] - results[small][tool][step])
                    / (large - small)
                    * 1e6
                    for step in STEPS
                }
                print(tool, "  ".join(f"{k}: {v:.1f}" for k, v in growth.items()))
    finally:
        if moto is not None:
            moto.kill()
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
