"""The Dask executor against the local one (not a test; needs ``mlops[dask]``).

usage: python benchmarks/bench_dask.py [--rounds N] [--stages N] [--seconds S]

1. Overhead: ``--stages`` (200) independent trivial stages (a ``foreach`` writing one
   small output each), ``mlops run -j 2`` with the local executor against
   ``--executor dask`` on a 2-worker ``LocalCluster`` (single-threaded worker processes,
   a local-folder remote). Overhead per stage = (dask wall - local wall) / stages.
   Target: at most 25 ms.
2. Speed-up: a 4-wide ``foreach`` of CPU-bound stages (about ``--seconds`` of Python
   arithmetic each), serial ``mlops run -j 1`` against ``--executor dask -j 4`` on the
   same 2 workers. Target: at least 1.8x on a 2-core machine. Each round also times the
   same four burns as bare processes, serial against two at a time: the most a 2-worker
   run can reach on the machine as loaded right now.

Each round uses fresh repositories (and a fresh remote) so nothing is restored from a
cache; rounds alternate local and dask. Wall times, medians and ranges are printed,
with the load average before and after.

Where a dask run's wall time goes beyond its stages (measured on this 2-core machine,
warm workers): about 0.3 s importing Dask's ``distributed`` in the controller (some 600
modules; importing it on a thread beside mlops's own imports gains nothing, both hold
the GIL), 20 ms for the client's handshake, 40 ms planning and pushing the deps, 5-10 ms
from submit to the worker's start (0.2 s on a fresh worker, importing mlops's task
module: ``prepare_worker`` overlaps it with the planning), 10-20 ms per stage on the
worker and 15 ms to place its outputs; a local run's own start-up is about 0.2 s. While
the stages run, Dask's profiler costs each busy worker about 0.01 CPU-s a second, and an
idle cluster (scheduler and workers) 0.06 CPU-s a second, there for the serial runs and
the bare ceiling too.

The cluster is set up as the README advises for mlops workers (Dask's worker profiler
off: it would only sample threads waiting for the stages' processes); ``--dask-profiler``
keeps Dask's default instead.
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

CLI = [sys.executable, "-m", "mlops"]


def _git_repo(path: Path) -> None:
    path.mkdir(parents=True)
    for args in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", "bench@example.com"],
        ["git", "config", "user.name", "bench"],
    ):
        subprocess.run(args, cwd=path, check=True)
    subprocess.run([*CLI, "init"], cwd=path, check=True, capture_output=True)


def trivial_project(path: Path, stages: int, remote: Path) -> None:
    _git_repo(path)
    items = ", ".join(str(i) for i in range(stages))
    (path / "mlops.yaml").write_text(
        "stages:\n"
        "  tiny:\n"
        f"    foreach: [{items}]\n"
        "    do:\n"
        "      cmd: echo ${item} > out-${item}.txt\n"
        '      outs: ["out-${item}.txt"]\n'
    )
    _finish(path, remote)


def cpu_project(path: Path, seconds: float, remote: Path, loops: int) -> None:
    _git_repo(path)
    (path / "burn.py").write_text(
        "import sys\n"
        "n, total = int(sys.argv[2]), 0\n"
        "for i in range(n):\n"
        "    total += i * i % 7\n"
        "open(f'burn-{sys.argv[1]}.txt', 'w').write(str(total))\n"
    )
    (path / "mlops.yaml").write_text(
        "stages:\n"
        "  burn:\n"
        "    foreach: [a, b, c, d]\n"
        "    do:\n"
        f"      cmd: {sys.executable} burn.py ${{item}} {loops}\n"
        "      deps: [burn.py]\n"
        '      outs: ["burn-${item}.txt"]\n'
    )
    _finish(path, remote)


def _finish(path: Path, remote: Path) -> None:
    subprocess.run(
        [*CLI, "remote", "add", "origin", str(remote), "--default"],
        cwd=path,
        check=True,
        capture_output=True,
    )
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "project"], cwd=path, check=True)


def timed_run(path: Path, *args: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run([*CLI, "run", *args], cwd=path, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"mlops run {' '.join(args)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return elapsed


def calibrate(seconds: float) -> int:
    """How many loop turns of ``burn.py`` take about ``seconds`` here."""
    n = 2_000_000
    start = time.perf_counter()
    total = 0
    for i in range(n):
        total += i * i % 7
    return int(n * seconds / (time.perf_counter() - start))


def raw_ceiling(path: Path, loops: int) -> float:
    """What this machine gives right now: the same four burns as bare processes, one after
    another against two at a time (no mlops, no Dask); the best a 2-worker run can do."""
    burn = [sys.executable, str(path / "burn.py")]
    start = time.perf_counter()
    for item in "abcd":
        subprocess.run([*burn, item, str(loops)], cwd=path, check=True)
    serial = time.perf_counter() - start
    start = time.perf_counter()
    for pair in ("ab", "cd"):
        procs = [subprocess.Popen([*burn, item, str(loops)], cwd=path) for item in pair]
        for proc in procs:
            proc.wait()
    return serial / (time.perf_counter() - start)


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} (range {min(values):.3f}-{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stages", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--skip", choices=("overhead", "speedup"), default=None)
    parser.add_argument("--dask-profiler", action="store_true", help="Dask's default profiler")
    args = parser.parse_args()
    import dask.config
    from distributed import LocalCluster

    from mlops.pipeline.executors.dask import LOCAL_CLUSTER_CONFIG

    print(f"load before: {os.getloadavg()}")
    work = Path(tempfile.mkdtemp(prefix="bench-dask-"))
    with dask.config.set({} if args.dask_profiler else LOCAL_CLUSTER_CONFIG):
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            local_directory=str(work / "workers"),
            silence_logs=50,
        )
    dask = ["--executor", "dask", "--scheduler", cluster.scheduler_address]
    try:
        if args.skip != "overhead":
            overheads, ratios = [], []
            for r in range(args.rounds):
                times = {}
                for kind in ("local", "dask") if r % 2 == 0 else ("dask", "local"):
                    repo = work / f"trivial-{kind}-{r}"
                    trivial_project(repo, args.stages, work / f"remote-trivial-{kind}-{r}")
                    extra = dask if kind == "dask" else []
                    times[kind] = timed_run(repo, "-j", "2", *extra)
                per_stage = (times["dask"] - times["local"]) / args.stages * 1000
                overheads.append(per_stage)
                ratios.append(times["dask"] / times["local"])
                print(
                    f"round {r + 1}: {args.stages} trivial stages: local {times['local']:.2f} s, "
                    f"dask {times['dask']:.2f} s, overhead {per_stage:.1f} ms/stage"
                )
            print(f"overhead per stage (ms): {spread(overheads)}; target <= 25")
            print(f"dask/local wall ratio: {spread(ratios)}")
        if args.skip != "speedup":
            loops = calibrate(args.seconds)
            speedups, ceilings = [], []
            for r in range(args.rounds):
                times = {}
                for kind in ("serial", "dask") if r % 2 == 0 else ("dask", "serial"):
                    repo = work / f"cpu-{kind}-{r}"
                    cpu_project(repo, args.seconds, work / f"remote-cpu-{kind}-{r}", loops)
                    if kind == "dask":
                        times[kind] = timed_run(repo, "-j", "4", *dask)
                    else:
                        times[kind] = timed_run(repo, "-j", "1")
                speedups.append(times["serial"] / times["dask"])
                ceilings.append(raw_ceiling(work / f"cpu-serial-{r}", loops))
                print(
                    f"round {r + 1}: 4 x ~{args.seconds:g} s CPU-bound stages: serial "
                    f"{times['serial']:.2f} s, dask on 2 workers {times['dask']:.2f} s, "
                    f"speed-up {speedups[-1]:.2f}x (bare processes 2 at a time: "
                    f"{ceilings[-1]:.2f}x)"
                )
            print(f"speed-up (serial / dask): {spread(speedups)}; target >= 1.8")
            print(f"the machine's own 2-way speed-up, bare processes: {spread(ceilings)}")
    finally:
        cluster.close()
        shutil.rmtree(work, ignore_errors=True)
        print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
