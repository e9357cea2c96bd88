"""Benchmark: ``mlops serve`` against ``mlflow models serve`` on the same model and load.

    python benchmarks/bench_serve.py --mlflow /tmp/mlflowenv/bin/mlflow --rounds 2
    python benchmarks/bench_serve.py --rounds 3 --pairs 4    # logging's cost alone

MLflow runs in its own virtual environment (with the same scikit-learn as ours, so that
both load the very same pickled model):

    python -m venv /tmp/mlflowenv && /tmp/mlflowenv/bin/pip install mlflow scikit-learn

The model is a 50-tree random forest fitted on iris. Both servers run one worker on
127.0.0.1 and are driven by the same bounded load generator in this process (a fixed
number of requests over persistent connections, 1, 8 and 32 concurrent clients, bodies
of 1 and 100 rows in MLflow's ``dataframe_split`` form on ``/invocations``). Ours runs
twice: without and with prediction logging, measured in ``--pairs`` interleaved pairs per
cell (off then on, then on then off, ...), so that both see the same drift of a shared
machine's load. Printed: requests/s and p50/p99 latency of each, the ratios ours /
MLflow, and logging's cost per cell (1 - throughput with / without, per pair: median and
range). The client shares the machine's cores with the server under test, as it did
when the issue's reference figures were taken.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLIENTS = (1, 8, 32)
ROWS = (1, 100)
MLFLOW_SAVE = """
import sys, joblib, mlflow.sklearn
mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2], serialization_format="pickle")
"""


@dataclass(frozen=True)
class Cell:
    throughput: float  # requests per second
    p50: float  # milliseconds
    p99: float
    errors: int
    cpu: float = 0.0  # the server's CPU milliseconds per request (all its processes)


def make_model(folder: Path) -> Path:
    import joblib
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    x, y = load_iris(return_X_y=True, as_frame=True)
    x = pd.DataFrame(x.to_numpy(), columns=FEATURES)
    path = folder / "model.joblib"
    joblib.dump(RandomForestClassifier(n_estimators=50, random_state=0).fit(x, y), path)
    return path


def body(rows: int) -> bytes:
    import numpy as np

    values = np.random.default_rng(rows).uniform(0.1, 7.0, (rows, len(FEATURES))).round(2)
    return json.dumps({"dataframe_split": {"columns": FEATURES, "data": values.tolist()}}).encode()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, path: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not become ready")


def load(port: int, payload: bytes, clients: int, requests: int) -> Cell:
    """``requests`` POSTs to /invocations from ``clients`` connections; stops by itself.

    One asyncio loop drives every client (keep-alive HTTP/1.1 over raw streams): with
    threads, 32 clients fight over the GIL and the slowest thread's wait shows up as the
    server's latency, worst for the fastest server.
    """
    import asyncio

    request = (
        b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: "
        + str(len(payload)).encode()
        + b"\r\n\r\n"
        + payload
    )
    latencies: list[float] = []
    errors = [0]
    left = [requests]

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while left[0] > 0:
            left[0] -= 1
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not head.startswith(b"HTTP/1.1 200"):
                errors[0] += 1
        writer.close()

    async def run() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return time.perf_counter() - start

    elapsed = asyncio.run(run())
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return Cell(requests / elapsed, statistics.median(latencies) * 1e3, p99 * 1e3, errors[0])


class Running:
    """A server process under test, and where its output goes."""

    def __init__(self, name: str, command: list[str], cwd: Path, port: int, ready: str) -> None:
        self.name, self.port, self.cwd = name, port, cwd
        self.output = open(cwd / f"{name}.log", "wb")  # noqa: SIM115 (closed in stop)
        # MLflow starts `uvicorn` from PATH: its own venv's bin comes first.
        path = f"{Path(command[0]).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        env = {**os.environ, "PYTHONWARNINGS": "ignore", "PATH": path}
        self.proc = subprocess.Popen(
            command, cwd=cwd, stdout=self.output, stderr=subprocess.STDOUT, env=env
        )
        try:
            wait_ready(port, ready, self.proc)
        except SystemExit:
            self.output.flush()
            print((cwd / f"{name}.log").read_text()[-3000:])
            raise

    def cpu(self) -> float:
        """CPU seconds used so far by the server and every process under it.

        On a shared machine this is steadier than throughput, which depends on how much of
        the cores the scheduler gives each process while others run.
        """
        children: dict[int, list[int]] = {}
        times: dict[int, float] = {}
        tick = os.sysconf("SC_CLK_TCK")
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid = int(entry)
            children.setdefault(int(fields[1]), []).append(pid)
            times[pid] = (int(fields[11]) + int(fields[12])) / tick
        total, todo = 0.0, [self.proc.pid]
        while todo:
            pid = todo.pop()
            total += times.get(pid, 0.0)
            todo += children.get(pid, [])
        return total

    def measure(self, payload: bytes, clients: int, requests: int) -> Cell:
        before = self.cpu()
        cell = load(self.port, payload, clients, requests)
        used = (self.cpu() - before) / requests * 1e3
        return Cell(cell.throughput, cell.p50, cell.p99, cell.errors, used)

    def rss(self) -> int:
        """The server's resident memory in KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self.output.close()


def registered_repo(work: Path) -> tuple[Path, Path]:
    """The benchmark's model file, and a repository where it is iris@production."""
    model = make_model(work)
    repo = work / "repo"
    repo.mkdir()
    for args in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.email", "bench@example.com"],
        ["git", "config", "user.name", "bench"],
    ):
        subprocess.run(args, cwd=repo, check=True)
    mlops = [sys.executable, "-m", "mlops"]
    subprocess.run([*mlops, "init"], cwd=repo, check=True, capture_output=True)
    subprocess.run(
        [*mlops, "model", "register", "iris", str(model), "--promote", "production"],
        cwd=repo,
        check=True,
        capture_output=True,
    )
    return model, repo


Results = dict[str, dict[tuple[int, int], list[Cell]]]


def one_round(work: Path, mlflow: str | None, requests: int, pairs: int) -> Results:
    """Start the servers, then measure each cell on each server in turn, so that the
    machine's drifting load falls on all of them alike; ours without and with logging in
    ``pairs`` interleaved pairs."""
    model, repo = registered_repo(work)
    mlops = [sys.executable, "-m", "mlops"]
    servers = []
    try:
        if mlflow is not None:
            mlflow_python = str(Path(mlflow).parent / "python")
            subprocess.run(
                [mlflow_python, "-c", MLFLOW_SAVE, str(model), str(work / "mlflow-model")],
                check=True,
                capture_output=True,
            )
            port = free_port()
            servers.append(Running(
                "mlflow",
                [mlflow, "models", "serve", "-m", str(work / "mlflow-model"), "--env-manager",
                 "local", "-h", "127.0.0.1", "-p", str(port)],
                work, port, "/ping",
            ))  # fmt: skip
        for name, extra in (
            ("mlops", ["--no-log"]),
            ("mlops+log", ["--log-dir", str(work / "logs")]),
        ):
            port = free_port()
            servers.append(Running(
                name, [*mlops, "serve", "iris@production", "--port", str(port), *extra],
                repo, port, "/health/ready",
            ))  # fmt: skip
        results: Results = {s.name: {} for s in servers}
        ours = [s for s in servers if s.name != "mlflow"]
        for rows in ROWS:
            payload = body(rows)
            for server in servers:
                load(server.port, payload, 4, 40)  # warm up
            for clients in CLIENTS:
                for server in servers:
                    results[server.name][(rows, clients)] = []
                for i in range(pairs):
                    order = servers if i % 2 == 0 else [*servers[:-2], *reversed(ours)]
                    for server in order:
                        if server.name == "mlflow" and i > 0:
                            continue  # once a cell: the comparison with MLflow is coarser
                        cell = server.measure(payload, clients, requests)
                        results[server.name][(rows, clients)].append(cell)
    finally:
        for server in servers:
            server.stop()
    logged = sum(_rows_in(path) for path in (work / "logs").glob("predictions-*"))
    sent = sum(r * (requests * len(CLIENTS) * pairs + 40) for r in ROWS)
    print(f"  rows in closed prediction logs after SIGTERM: {logged} of {sent} sent", flush=True)
    return results


def _rows_in(log: Path) -> int:
    """The rows of a closed prediction log (Parquet; JSON lines before)."""
    if log.suffix == ".jsonl":
        return len(log.read_bytes().splitlines())
    import pyarrow.parquet as pq

    return int(pq.read_metadata(log).num_rows)


def soak(work: Path, requests: int) -> None:
    """Memory of our server, logging on, over ``requests`` single-row requests."""
    _, repo = registered_repo(work)
    mlops = [sys.executable, "-m", "mlops"]
    port = free_port()
    server = Running(
        "soak", [*mlops, "serve", "iris@production", "--port", str(port), "--log-dir",
                 str(work / "logs")], repo, port, "/health/ready",
    )  # fmt: skip
    try:
        payload = body(1)
        step = max(1, requests // 10)
        load(port, payload, 8, 2000)  # warm: first requests fill caches and pools
        print(
            f"  after 2000 warm-up requests: RSS {server.rss() / 1024:.1f} MiB (load {_load()})",
            flush=True,
        )
        for done in range(0, requests, step):
            load(port, payload, 8, min(step, requests - done))
            print(
                f"  after {done + step:>7} requests: RSS {server.rss() / 1024:.1f} MiB", flush=True
            )
    finally:
        server.stop()


def _load() -> str:
    """The machine's load averages (1, 5, 15 minutes), as uptime shows them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(rounds: list[Results]) -> None:
    """One line per cell and round, then logging's cost per cell over every round."""
    with_mlflow = "mlflow" in rounds[0]
    print()
    print("Each line is one round. req/s, p50 and p99 (ms) per server (ours: the median of")
    print("its pairs); cpu: the server's CPU ms per request; x: mlops / MLflow (throughput,")
    print("p99, cpu); log: throughput lost to logging, median of the round's pairs")
    print()
    head = "rows clients |"
    if with_mlflow:
        head += " MLflow req/s  p50   p99   cpu |"
    head += " mlops req/s  p50   p99   cpu | +log req/s  cpu |"
    if with_mlflow:
        head += " thr x | p99 x | cpu x |"
    print(head + " log")
    costs: dict[tuple[int, int], list[float]] = {}
    cpus: dict[tuple[int, int], list[float]] = {}
    for rows in ROWS:
        for clients in CLIENTS:
            key = (rows, clients)
            for r in rounds:
                offs, ons = r["mlops"][key], r["mlops+log"][key]
                pairs = list(zip(offs, ons, strict=True))
                pair = [1 - g.throughput / o.throughput for o, g in pairs]
                costs.setdefault(key, []).extend(pair)
                cpus.setdefault(key, []).extend(g.cpu / o.cpu - 1 for o, g in pairs)
                o = Cell(*(_median([getattr(c, f) for c in offs]) for f in Cell.__annotations__))
                g = Cell(*(_median([getattr(c, f) for c in ons]) for f in Cell.__annotations__))
                errors = sum(c.errors for c in [*offs, *ons])
                line = f"{rows:>4} {clients:>7} |"
                if with_mlflow:
                    m = r["mlflow"][key][0]
                    errors += m.errors
                    line += f" {m.throughput:11.0f} {m.p50:5.1f} {m.p99:5.0f} {m.cpu:5.2f} |"
                line += (
                    f" {o.throughput:10.0f} {o.p50:5.1f} {o.p99:5.0f} {o.cpu:5.2f} |"
                    f" {g.throughput:10.0f} {g.cpu:4.2f} |"
                )
                if with_mlflow:
                    line += (
                        f" {o.throughput / m.throughput:5.2f} | {o.p99 / m.p99:5.2f} |"
                        f" {o.cpu / m.cpu:5.2f} |"
                    )
                line += f" {_median(pair):+4.0%}" + (f" | {errors} errors" if errors else "")
                print(line)
    print()
    print("Logging's cost per cell, every pair of every round: median (range) of the")
    print("throughput lost, and of the server's CPU per request added")
    for (rows, clients), values in costs.items():
        cpu = cpus[(rows, clients)]
        print(
            f"{rows:>4} rows {clients:>3} clients: {_median(values):+4.0%} "
            f"({min(values):+4.0%} .. {max(values):+4.0%}) throughput, "
            f"{_median(cpu):+4.0%} ({min(cpu):+4.0%} .. {max(cpu):+4.0%}) cpu, "
            f"{len(values)} pairs"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mlflow", help="the mlflow command of its own venv (else: ours only)")
    parser.add_argument("--requests", type=int, default=600, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--pairs", type=int, default=2, help="interleaved logging off/on pairs per cell"
    )
    parser.add_argument(
        "--soak", type=int, default=0, help="instead: our memory over this many requests"
    )
    args = parser.parse_args()
    if args.soak:
        with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
            soak(Path(tmp), args.soak)
        return
    rounds = []
    for i in range(args.rounds):
        print(f"round {i + 1} of {args.rounds} (load {_load()}) ...", flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
            rounds.append(one_round(Path(tmp), args.mlflow, args.requests, args.pairs))
        print(f"  round {i + 1} done (load {_load()})", flush=True)
    report(rounds)


if __name__ == "__main__":
    main()
