"""The standard benchmark workload and small helpers shared by the benchmark scripts.

The workload is one incompressible file (1 GiB by default) and 20,000 distinct
files of about 2 KiB in 100 sub-folders: the shape DESIGN.md's figures are for.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path


def make_workload(root: Path, big_mib: int = 1024, n_small: int = 20000) -> None:
    """Write ``root/big.bin`` and ``root/many/NN/i.txt``; every file's content is distinct."""
    root.mkdir(parents=True, exist_ok=True)
    block = os.urandom(1 << 20)
    with open(root / "big.bin", "wb") as handle:
        for i in range(big_mib):
            handle.write(block[:-8] + i.to_bytes(8, "little"))
    for i in range(n_small):
        folder = root / "many" / f"{i % 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}.txt").write_bytes(os.urandom(2048) + str(i).encode())


def workload_arguments(parser: argparse.ArgumentParser, dvc_help: str) -> None:
    """The options every benchmark script takes: DVC to compare with, workload size, folder."""
    parser.add_argument("--dvc", help=dvc_help)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--small", type=int, default=20000)
    parser.add_argument("--keep", help="work in this folder and keep it")


def copy_workload(source: Path, dest: Path) -> None:
    """Copy the workload into a repository (each tool gets its own inodes)."""
    subprocess.run(["cp", "-r", f"{source}/.", str(dest)], check=True)


def new_git_repo(path: Path) -> Path:
    """An empty Git repository with a committer identity."""
    path.mkdir(parents=True)
    for args in (
        ["init", "-q"],
        ["config", "user.email", "bench@example.com"],
        ["config", "user.name", "bench"],
    ):
        subprocess.run(["git", *args], cwd=path, check=True)
    return path


def force_remove(func, path, _exc):  # type: ignore[no-untyped-def]
    """``shutil.rmtree``'s error handler for read-only folders (DVC's and mlops's caches)."""
    os.chmod(os.path.dirname(path), 0o755)
    func(path)


def mlops_cmd() -> list[str]:
    """How to run the mlops CLI of this interpreter's environment."""
    exe = shutil.which("mlops", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "mlops"]


def tool_env() -> dict[str, str]:
    """This environment as users have it: tools run from compiled bytecode, as they do
    once installed (with PYTHONDONTWRITEBYTECODE a changed module compiles every run)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str], cwd: Path, repeat: int = 1, env: dict[str, str] | None = None) -> float:
    """The median wall time of running ``cmd`` ``repeat`` times; a failure stops the benchmark."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, env=env or tool_env())
        times.append(time.perf_counter() - start)
        if proc.returncode not in (0,):
            sys.exit(
                f"benchmark step failed: {' '.join(cmd)} (exit {proc.returncode})\n"
                + proc.stderr.decode(errors="replace")[-2000:]
            )
    return statistics.median(times)


def print_table(rows: list[tuple[str, float, float | None, float | None]]) -> None:
    """Print step, mlops time, DVC time and the ratio mlops/DVC (with the target)."""
    print(f"{'step':<44} {'mlops s':>9} {'dvc s':>9} {'ratio':>7} {'target':>7}")
    for step, ours, theirs, target in rows:
        ratio = f"{ours / theirs:.3f}" if theirs else "-"
        dvc = f"{theirs:.3f}" if theirs else "-"
        goal = f"{target:.2f}" if target else "-"
        print(f"{step:<44} {ours:>9.3f} {dvc:>9} {ratio:>7} {goal:>7}")


AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "NO_PROXY": "127.0.0.1,localhost",
}


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """moto's S3 server in its own process on a free 127.0.0.1 port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("the moto S3 server did not start")


def make_bucket(endpoint: str, name: str) -> None:
    import s3fs

    s3fs.S3FileSystem(endpoint_url=endpoint, key="bench", secret="bench").mkdir(name)


def many_stages(repo: Path, n: int) -> None:
    """N independent stages, each copying its own input file."""
    (repo / "in").mkdir()
    (repo / "out").mkdir()
    lines = ["stages:"]
    for i in range(n):
        (repo / "in" / f"{i}.txt").write_text(f"input {i}\n")
        lines += [
            f"  s{i:03d}:",
            f"    cmd: cp in/{i}.txt out/{i}.txt",
            f"    deps: [in/{i}.txt]",
            f"    outs: [out/{i}.txt]",
        ]
    (repo / "mlops.yaml").write_text("\n".join(lines) + "\n")
