"""``mlops run --executor dask`` on a real ``dask.distributed.LocalCluster`` (worker
processes, each with its own local folder), through a local-folder remote and moto's S3
server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import run_cli, run_subprocess
from tests.helpers.files import write
from tests.helpers.pipeline import read_lock, runs_json, statuses, three_stage_project
from tests.helpers.remote import s3_remote
from tests.helpers.repos import clone, commit_all, init_git

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

# The workers' own credentials for the S3 server (moto takes any); never the controller's.
WORKER_KEY = "worker-own-key-id"
CONTROLLER_SECRET = "controller-secret-3f9a1c"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Two single-threaded worker processes; their local folders in a tmp folder apart."""
    folder = tmp_path_factory.mktemp("dask-workers")
    # The workers' environment, read as they start: their own credentials, no AWS files.
    own = {
        "AWS_ACCESS_KEY_ID": WORKER_KEY,
        "AWS_SECRET_ACCESS_KEY": "worker-own-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(folder / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(folder / "no-aws-credentials"),
        "NO_PROXY": "127.0.0.1,localhost",
        # The stages call `python`: the interpreter the tests run in.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    saved = {k: os.environ.get(k) for k in own}
    os.environ.update(own)
    try:
        # ``env``: also for a worker its nanny starts again (after a SIGKILL).
        local = distributed.LocalCluster(
            env=own,
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            local_directory=str(folder),
            silence_logs=50,
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        yield local
    finally:
        local.close()


def _project(tmp: Path, remote: Path | None = None) -> Path:
    repo = init_git(tmp / "repo")
    assert run_cli(repo, "init").exit_code == 0
    three_stage_project(repo)
    if remote is not None:
        added = run_cli(repo, "remote", "add", "origin", str(remote), "--default")
        assert added.exit_code == 0, added.stderr
    commit_all(repo, "project")
    return repo


def _run(repo: Path, cluster: Any, *args: str) -> Any:
    return run_cli(
        repo, "run", "--executor", "dask", "--scheduler", cluster.scheduler_address, *args
    )


def _start_run(repo: Path, cluster: Any) -> subprocess.Popen[str]:
    """``mlops run`` on the cluster as a process of its own, for tests that stop it."""
    return subprocess.Popen(
        [sys.executable, "-m", "mlops", "run", "--executor", "dask", "--scheduler",
         cluster.scheduler_address],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _worker(address: str, folder: Path, *options: str) -> subprocess.Popen[bytes]:
    """A worker process of its own (Dask's ``dask worker``), one thread, joining ``address``."""
    command = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1"]
    command += ["--no-dashboard", "--local-directory", str(folder), *options]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _without_runs(lock: dict[str, Any]) -> dict[str, Any]:
    for entry in lock["stages"].values():
        entry.pop("run", None)
        entry.pop("record", None)
    return lock


def test_cluster_run_writes_the_local_lock_and_says_where(tmp_path: Path, cluster: Any) -> None:
    remote = tmp_path / "remote"
    local_repo = _project(tmp_path / "local")
    assert run_cli(local_repo, "run").exit_code == 0
    repo = _project(tmp_path / "cluster", remote)
    write(repo, "not-a-dep.txt", "only the controller has this")
    # A stage that reports where it runs and what it can see of the work tree.
    pipeline = (repo / "mlops.yaml").read_text() + (
        "  look:\n"
        "    cmd: pwd > where.txt &&\n"
        "      (test -e not-a-dep.txt && echo seen || echo unseen) >> where.txt\n"
        "    deps: [raw.txt]\n"
        "    outs: [where.txt]\n"
    )
    (repo / "mlops.yaml").write_text(pipeline)
    result = _run(repo, cluster, "-j", "2")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "[prepare] prepared" in result.stdout  # lines streamed back, prefixed
    cluster_lock = _without_runs(read_lock(repo))
    cluster_lock["stages"].pop("look")
    assert cluster_lock == _without_runs(read_lock(local_repo))
    assert (repo / "model.bin").read_bytes() == (local_repo / "model.bin").read_bytes()
    assert json.loads((repo / "metrics.json").read_text())["accuracy"] == 0.6
    where, seen = (repo / "where.txt").read_text().splitlines()
    assert seen == "unseen"
    assert not Path(where).resolve().is_relative_to(repo.resolve())
    assert not Path(where).exists()  # the scratch folder is gone
    record = runs_json(repo)[0]
    workers = {w for w in cluster.scheduler_info["workers"]}
    for stage in record["stages"]:
        assert stage["where"]["worker"] in workers
        assert stage["where"]["host"]
        assert stage["where"]["waited"] >= 0 and stage["where"]["ran"] >= 0
    # Up to date now: nothing is sent to the cluster again.
    again = _run(repo, cluster)
    assert again.exit_code == 0 and "4 skipped" in again.stdout


def test_failing_command_blocks_downstream(tmp_path: Path, cluster: Any) -> None:
    repo = _project(tmp_path, tmp_path / "remote")
    text = (
        (repo / "mlops.yaml")
        .read_text()
        .replace("cp raw.txt data/clean.txt", "echo broken >&2 && exit 3")
    )
    (repo / "mlops.yaml").write_text(text)
    result = _run(repo, cluster)
    assert result.exit_code == 1
    assert "stage 'prepare' failed with exit code 3" in result.stderr
    assert "broken" in result.stderr
    assert statuses(runs_json(repo)[0]) == {
        "prepare": "failed",
        "train": "blocked",
        "evaluate": "blocked",
    }
    assert not (repo / "mlops.lock").exists()


def test_remote_run_cache_restores_a_teammates_outputs(tmp_path: Path, cluster: Any) -> None:
    remote = tmp_path / "remote"
    repo = _project(tmp_path / "a", remote)
    assert _run(repo, cluster).exit_code == 0
    # A teammate's clone: nothing local, the remote's run cache has every stage.
    mate = clone(repo, tmp_path / "b")
    assert run_cli(mate, "init").exit_code == 0
    result = _run(mate, cluster)
    assert result.exit_code == 0, result.stderr
    assert statuses(runs_json(mate)[0]) == dict.fromkeys(
        ("prepare", "train", "evaluate"), "restored"
    )
    assert (mate / "model.bin").read_bytes() == (repo / "model.bin").read_bytes()
    # Opting out runs them.
    forced = _run(mate, cluster, "--no-remote-cache", "--force")
    assert forced.exit_code == 0
    assert set(statuses(runs_json(mate)[0]).values()) == {"ran"}


def test_no_secret_in_task_descriptions(
    tmp_path: Path, cluster: Any, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import s3fs

    repo = _project(tmp_path)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    s3fs.S3FileSystem(
        endpoint_url=s3_endpoint, key="any", secret="any", skip_instance_cache=True
    ).mkdir("dask-secrets")
    s3_remote(repo, "dask-secrets", s3_endpoint)
    for key, value in (("key", "controller-key-id"), ("secret", CONTROLLER_SECRET)):
        modified = run_cli(repo, "remote", "modify", "origin", key, value, "--local")
        assert modified.exit_code == 0, modified.stderr
    sent: list[bytes] = []
    submit = distributed.Client.submit

    def recording(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(pickle.dumps((fn, args, kwargs)))
        return submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(distributed.Client, "submit", recording)
    result = _run(repo, cluster)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert len(sent) == 3
    for blob in sent:
        assert CONTROLLER_SECRET.encode() not in blob
        assert b"controller-key-id" not in blob
        assert s3_endpoint.encode() in blob  # the URL and plain options do go
    assert CONTROLLER_SECRET not in result.stdout + result.stderr
    assert statuses(runs_json(repo)[0]) == dict.fromkeys(("prepare", "train", "evaluate"), "ran")


def test_worker_killed_mid_stage_runs_again_elsewhere(tmp_path: Path, cluster: Any) -> None:
    repo = _project(tmp_path, tmp_path / "remote")
    marker = tmp_path / "attempts"
    pids = tmp_path / "pids"
    write(
        repo,
        "mlops.yaml",
        "stages:\n"
        "  slow:\n"
        f"    cmd: echo $PPID >> {pids} && echo attempt >> {marker} && "
        f"if [ $(wc -l < {marker}) -lt 2 ]; then echo started; sleep 60; fi; echo done > out.txt\n"
        "    outs: [out.txt]\n",
    )
    proc = _start_run(repo, cluster)
    try:
        deadline = time.monotonic() + 30
        while not pids.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        worker_pid = int(pids.read_text().split()[0])  # the worker process runs the shell
        os.kill(worker_pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=45)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + err
    assert (repo / "out.txt").read_text() == "done\n"
    assert marker.read_text().count("attempt") == 2
    first, second = pids.read_text().split()
    assert first != second
    record = runs_json(repo)[0]
    assert statuses(record) == {"slow": "ran"}
    cluster.wait_for_workers(2, timeout=30)  # the nanny brings the killed one back


def test_resources_route_stages_to_the_worker_that_has_them(tmp_path: Path, cluster: Any) -> None:
    repo = _project(tmp_path, tmp_path / "remote")
    write(
        repo,
        "mlops.yaml",
        "stages:\n"
        "  fit:\n"
        "    cmd: echo fitted > model.txt\n"
        "    outs: [model.txt]\n"
        "    resources: {gpus: 1, memory: 1GB}\n",
    )
    # No worker has a GPU yet: refused before anything runs.
    refused = _run(repo, cluster)
    assert refused.exit_code == 1
    assert "stage 'fit' needs resources {gpus: 1, memory: 1e+09}" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert not (repo / "model.txt").exists() and runs_json(repo) == []
    # The README's way: a worker joining the scheduler with a GPU (and memory) declared.
    gpu = _worker(
        cluster.scheduler_address, tmp_path / "gpu-worker", "--resources", "gpus=1,memory=4e9"
    )
    try:
        client = distributed.Client(cluster.scheduler_address, timeout=30)
        try:
            client.wait_for_workers(3, timeout=30)
            gpu_workers = {
                a
                for a, w in client.scheduler_info(n_workers=-1)["workers"].items()
                if w.get("resources", {}).get("gpus")
            }
        finally:
            client.close()
        result = _run(repo, cluster)
        assert result.exit_code == 0, result.stdout + result.stderr
        (stage,) = runs_json(repo)[0]["stages"]
        assert stage["where"]["worker"] in gpu_workers
    finally:
        gpu.terminate()
        gpu.wait(30)


def test_unreachable_scheduler_fails_in_one_line(tmp_path: Path) -> None:
    from tests.helpers.servers import free_port

    repo = _project(tmp_path, tmp_path / "remote")
    result = run_subprocess(
        repo, "run", "--executor", "dask", "--scheduler", f"tcp://127.0.0.1:{free_port()}"
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Dask scheduler" in lines[0], result.stderr
    assert not (repo / "data").exists() and not (repo / "mlops.lock").exists()


def test_config_names_the_executor_and_scheduler(tmp_path: Path, cluster: Any) -> None:
    repo = _project(tmp_path, tmp_path / "remote")
    for key, value in (("run.executor", "dask"), ("run.scheduler", cluster.scheduler_address)):
        result = run_cli(repo, "config", key, value)
        assert result.exit_code == 0, result.stderr
    result = run_cli(repo, "run")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert all("worker" in s["where"] for s in runs_json(repo)[0]["stages"])


def test_push_run_cache_lets_a_cluster_run_restore_a_local_run(
    tmp_path: Path, cluster: Any
) -> None:
    remote = tmp_path / "remote"
    repo = _project(tmp_path / "a", remote)
    assert run_cli(repo, "run").exit_code == 0  # on this machine, not the cluster
    pushed = run_cli(repo, "push", "--run-cache")
    assert pushed.exit_code == 0, pushed.stderr
    assert "pushed 3 run-cache entries" in pushed.stdout
    assert run_cli(repo, "push", "--run-cache").stdout.count("run-cache") == 0  # all there
    mate = clone(repo, tmp_path / "b")
    assert run_cli(mate, "init").exit_code == 0
    result = _run(mate, cluster)
    assert result.exit_code == 0, result.stderr
    restored = dict.fromkeys(("prepare", "train", "evaluate"), "restored")
    assert statuses(runs_json(mate)[0]) == restored
    assert (mate / "metrics.json").read_text() == (repo / "metrics.json").read_text()


def test_each_worker_fetches_a_dep_once(tmp_path: Path, cluster: Any) -> None:
    repo = _project(tmp_path, tmp_path / "remote")
    write(repo, "big.bin", "x" * 200_000)
    assert run_cli(repo, "add", "big.bin").exit_code == 0
    write(
        repo,
        "mlops.yaml",
        "stages:\n"
        "  use:\n"
        "    foreach: [a, b, c, d, e, f]\n"
        "    do:\n"
        "      cmd: wc -c < big.bin > n-${item}.txt\n"
        "      deps: [big.bin]\n"
        '      outs: ["n-${item}.txt"]\n',
    )
    commit_all(repo, "fan out")
    result = _run(repo, cluster, "-j", "6")
    assert result.exit_code == 0, result.stdout + result.stderr
    stages = runs_json(repo)[0]["stages"]
    assert {(repo / f"n-{i}.txt").read_text().strip() for i in "abcdef"} == {"200000"}
    by_worker: dict[str, int] = {}
    for stage in stages:
        by_worker[stage["where"]["worker"]] = (
            by_worker.get(stage["where"]["worker"], 0) + stage["where"]["fetched"]
        )
    assert all(n == 1 for n in by_worker.values()), by_worker


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ctrl_c_cancels_the_cluster_tasks_and_records_an_interrupted_run(
    tmp_path: Path, cluster: Any
) -> None:
    repo = _project(tmp_path, tmp_path / "remote")
    pid_file = tmp_path / "sleeper"
    write(
        repo,
        "mlops.yaml",
        "stages:\n"
        "  long:\n"
        f"    cmd: echo $$ > {pid_file} && exec sleep 60\n"
        "    outs: [never.txt]\n",
    )
    proc = _start_run(repo, cluster)
    try:
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        sleeper = int(pid_file.read_text())
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    run = runs_json(repo)[0]
    assert run["status"] == "interrupted"
    assert statuses(run) == {"long": "interrupted"}
    deadline = time.monotonic() + 15
    while _alive(sleeper) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(sleeper)  # the worker's command was killed, not left to run


def test_example_pipeline_on_the_cluster_writes_the_local_lock(
    tmp_path: Path, cluster: Any
) -> None:
    import shutil

    example = Path(__file__).resolve().parent.parent / "examples" / "get-started"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    repos = []
    for name in ("local", "cluster"):
        repo = init_git(tmp_path / name)
        shutil.copytree(example, repo, dirs_exist_ok=True)
        assert run_cli(repo, "init").exit_code == 0
        repos.append(repo)
    made = subprocess.run(
        [sys.executable, "src/make_data.py"], cwd=repos[0], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    (repos[1] / "data").mkdir(exist_ok=True)
    shutil.copy(repos[0] / "data" / "data.xml", repos[1] / "data" / "data.xml")
    for repo in repos:
        assert run_cli(repo, "add", "data/data.xml").exit_code == 0
    added = run_cli(repos[1], "remote", "add", "storage", str(tmp_path / "storage"), "--default")
    assert added.exit_code == 0
    commit_all(repos[1], "example")
    local = run_subprocess(repos[0], "run", env=env)
    assert local.returncode == 0, local.stderr
    remote = run_subprocess(
        repos[1], "run", "--executor", "dask", "--scheduler", cluster.scheduler_address,
        "-j", "2", env=env,
    )  # fmt: skip
    assert remote.returncode == 0, remote.stdout + remote.stderr
    assert _without_runs(read_lock(repos[1])) == _without_runs(read_lock(repos[0]))
    for rel in ("model.pkl", "eval/metrics.json", "eval/importance.csv", "eval/plots/roc.csv"):
        assert (repos[1] / rel).read_bytes() == (repos[0] / rel).read_bytes(), rel


def test_local_flag_starts_a_cluster_on_this_machine(tmp_path: Path) -> None:
    repo = _project(tmp_path, tmp_path / "remote")
    result = run_subprocess(repo, "run", "--executor", "dask", "--local", "-j", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    record = runs_json(repo)[0]
    assert set(statuses(record).values()) == {"ran"}
    assert all(s["where"]["worker"].startswith("tcp://127.0.0.1:") for s in record["stages"])


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ("{gpu: 1}", "stage 'fit': unknown key 'gpu' in 'resources'"),
        ("{memory: lots}", "field 'resources.memory' must be a size such as 8GB"),
        ("{cpus: 0}", "field 'resources.cpus' must be a number above 0"),
        ("[gpus]", "field 'resources' must be a mapping of cpus, memory and gpus"),
    ],
)
def test_bad_resources_are_one_line_errors(tmp_path: Path, resources: str, message: str) -> None:
    repo = _project(tmp_path)
    write(repo, "mlops.yaml", f"stages:\n  fit:\n    cmd: echo hi\n    resources: {resources}\n")
    result = run_cli(repo, "run")
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlops: error: mlops.yaml:4"), lines
    assert message in lines[0], lines


def test_outputs_the_lock_names_come_from_the_remote(tmp_path: Path, cluster: Any) -> None:
    repo = _project(tmp_path / "a", tmp_path / "remote")
    assert _run(repo, cluster).exit_code == 0
    commit_all(repo, "lock")
    mate = clone(repo, tmp_path / "b")  # the lock, no outputs, an empty cache
    assert run_cli(mate, "init").exit_code == 0
    result = _run(mate, cluster, "--no-remote-cache")
    assert result.exit_code == 0, result.stderr
    # metrics.json is kept by Git: the clone has it already.
    expected = {"prepare": "restored", "train": "restored", "evaluate": "skipped"}
    assert statuses(runs_json(mate)[0]) == expected
    assert (mate / "model.bin").read_bytes() == (repo / "model.bin").read_bytes()
    assert (mate / "mlops.lock").read_bytes() == (repo / "mlops.lock").read_bytes()


def _homes(dask_worker: Any) -> list[str]:
    """The remotes (URLs) a worker's mlops has opened a folder for."""
    from mlops.pipeline.executors import dask_task

    return sorted(json.loads(remote)["url"] for _, remote in dask_task._HOMES)


def test_every_worker_is_prepared_as_the_run_connects(tmp_path: Path, cluster: Any) -> None:
    remote = tmp_path / "remote"
    repo = _project(tmp_path, remote)
    write(repo, "mlops.yaml", "stages:\n  one:\n    cmd: echo 1 > one.txt\n    outs: [one.txt]\n")
    result = _run(repo, cluster)
    assert result.exit_code == 0, result.stdout + result.stderr
    (stage,) = runs_json(repo)[0]["stages"]
    client = distributed.Client(cluster.scheduler_address, timeout=30)
    try:
        homes = client.run(_homes)
    finally:
        client.close()
    # The worker that ran no stage has its folder for this remote open too.
    assert len(homes) == 2 and stage["where"]["worker"] in homes
    assert all(str(remote) in urls for urls in homes.values()), homes


# A worker started with this preload cannot import mlops (as if it were not installed).
_HIDE_MLOPS = """
import sys

class Hide:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "mlops" or name.startswith("mlops."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Hide)
"""


def test_a_worker_that_cannot_load_mlops_is_one_clear_error(tmp_path: Path) -> None:
    repo = _project(tmp_path, tmp_path / "remote")
    write(repo, "mlops.yaml", "stages:\n  one:\n    cmd: echo 1 > one.txt\n    outs: [one.txt]\n")
    preload = write(tmp_path, "hide_mlops.py", _HIDE_MLOPS)
    local = distributed.LocalCluster(
        n_workers=0, processes=True, dashboard_address=None, silence_logs=50
    )
    worker = _worker(
        local.scheduler_address, tmp_path / "worker", "--no-nanny", "--preload", str(preload)
    )
    try:
        client = distributed.Client(local.scheduler_address, timeout=30)
        try:
            client.wait_for_workers(1, timeout=30)
        finally:
            client.close()
        result = _run(repo, local)
        assert result.exit_code == 1
        (address,) = local.scheduler_info["workers"]
        assert f"Dask worker {address}: it cannot load mlops (" in result.stdout + result.stderr
        assert "No module named 'mlops'" in result.stdout + result.stderr
        assert "install the same mlops" in result.stdout + result.stderr
        assert "Traceback" not in result.stdout + result.stderr
        assert statuses(runs_json(repo)[0]) == {"one": "failed"}
        assert not (repo / "one.txt").exists()
        assert worker.poll() is None  # no task was sent that would have killed it
    finally:
        worker.terminate()
        worker.wait(30)
        local.close()


def test_a_stages_lines_are_all_reported_before_its_end(tmp_path: Path, cluster: Any) -> None:
    repo = _project(tmp_path, tmp_path / "remote")
    write(
        repo,
        "mlops.yaml",
        "stages:\n"
        "  talk:\n"
        "    cmd: seq 1 300 | sed 's/^/line-/' && echo done > talk.txt\n"
        "    outs: [talk.txt]\n",
    )
    result = run_subprocess(
        repo, "run", "--executor", "dask", "--scheduler", cluster.scheduler_address
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    end = out.index("Stage 'talk' done")
    assert all(f"[talk] line-{i}\n" in out[:end] for i in range(1, 301)), out[end - 500 :]
    assert "line-" not in out[end:]
