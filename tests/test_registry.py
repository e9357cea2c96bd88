"""The model registry: register, list, show, history, promote, rollback, get, load_model,
and every bad input of the issue (clear error, exit 1, registry unchanged)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli, run_subprocess
from tests.helpers.registry import record_run, tags, train_model
from tests.helpers.repos import commit_all, git


@pytest.fixture
def project(repo: Path) -> Path:
    """An mlops repository with one commit and a trained model at model.joblib."""
    train_model(repo / "model.joblib", 1.0)
    (repo / ".gitignore").write_text("/model.joblib\n/out*\n")
    commit_all(repo, "start", allow_empty=True)
    return repo


def register(repo: Path, *args: str) -> dict[str, object]:
    result = run_cli(repo, "model", "register", *args, "--json")
    assert result.exit_code == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def show(repo: Path, ref: str) -> dict[str, object]:
    result = run_cli(repo, "model", "show", ref, "--json")
    assert result.exit_code == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def fails(repo: Path, *args: str) -> str:
    """Run a command that must fail with exit 1 and change no registry tag; its one-line error."""
    before = tags(repo)
    result = run_cli(repo, *args)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert tags(repo) == before
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlops: error: "), result.stderr
    return lines[0]


# --- register, list, show -------------------------------------------------------------


def test_register_records_content_author_commit_and_tag(project: Path) -> None:
    data = register(project, "iris", "model.joblib", "-d", "baseline")
    from mlops.storage.hashing import hash_file

    assert data["version"] == "1" and data["description"] == "baseline"
    assert data["content"]["hash"] == hash_file(project / "model.joblib")  # type: ignore[index]
    assert data["author"] == "Test <test@example.com>"
    assert data["commit"] == git(project, "rev-parse", "HEAD").strip()
    assert data["run"] is None
    # One annotated tag on the commit, holding the record as JSON after a summary line.
    (tag,) = tags(project)
    assert tag == f"model/iris/v1-{data['id']}"
    assert git(project, "cat-file", "-t", tag).strip() == "tag"
    assert git(project, "rev-parse", f"{tag}^{{commit}}").strip() == data["commit"]
    message = git(project, "tag", "-l", "--format=%(contents:subject)", tag).strip()
    assert message.startswith("mlops: register iris v1")
    # The content is in the object store, read-only.
    oid = str(data["content"]["hash"])  # type: ignore[index]
    assert (project / ".mlops" / "cache" / oid[:2] / oid[2:]).is_file()


def test_versions_are_numbered_and_same_content_is_not_registered_twice(project: Path) -> None:
    first = register(project, "iris", "model.joblib")
    again = register(project, "iris", "model.joblib")
    assert again["id"] == first["id"] and len(tags(project)) == 1
    train_model(project / "model.joblib", 0.2)
    second = register(project, "iris", "model.joblib")
    assert second["version"] == "2"
    listed = json.loads(run_cli(project, "model", "list", "--json").stdout)
    assert listed == [
        {
            "name": "iris",
            "versions": 2,
            "latest": "2",
            "latest_time": second["time"],
            "aliases": {},
        }
    ]
    assert show(project, "iris")["id"] == second["id"]
    assert show(project, "iris:1")["id"] == first["id"]
    assert show(project, "iris:v2")["id"] == second["id"]
    assert show(project, f"iris:1-{str(first['id'])[:5]}")["id"] == first["id"]
    text = run_cli(project, "model", "show", "iris:1").stdout
    assert "iris:1" in text and str(first["id"]) in text and "Test <test@example.com>" in text


def test_register_folder_and_get_it_back(project: Path) -> None:
    folder = project / "bundle"
    train_model(folder / "model.joblib")
    (folder / "sub").mkdir()
    (folder / "sub" / "labels.txt").write_text("setosa\nversicolor\nvirginica\n")
    data = register(project, "bundle", "bundle")
    assert data["content"]["files"] == 2  # type: ignore[index]
    result = run_cli(project, "model", "get", "bundle:1", "-o", "out_bundle")
    assert result.exit_code == 0, result.stderr
    assert (project / "out_bundle" / "sub" / "labels.txt").read_text().startswith("setosa")
    assert (project / "out_bundle" / "model.joblib").read_bytes() == (
        folder / "model.joblib"
    ).read_bytes()
    with pytest.raises(Exception, match="is a folder"):
        from mlops.core.repo import Repo
        from mlops.registry.content import load_model

        load_model("bundle:1", Repo(project))


def test_run_is_found_with_params_metrics_data_and_checks(project: Path) -> None:
    raw = {"data/train.csv": "a" * 64}
    run_id = record_run(project, "model.joblib", {"accuracy": 0.95}, True, deps=raw)
    data = register(project, "iris", "model.joblib")
    assert data["run"] == {
        "id": run_id,
        "stage": "train",
        "status": "success",
        "record": "",
    }
    assert data["params"] == {"params.yaml": {"train.C": 1.0}}
    assert data["metrics"] == {"metrics.json": {"accuracy": 0.95}}
    assert data["data"] == raw
    assert data["checks_state"] == "passed"
    assert data["checks"]["train"]["after"]["passed"] is True  # type: ignore[index]


def test_register_with_explicit_run(project: Path) -> None:
    run_id = record_run(project, "model.joblib", {"accuracy": 0.9})
    record_run(project, "model.joblib", {"accuracy": 0.1})  # newer, same output
    data = register(project, "iris", "model.joblib", "--run", run_id[:6], "--stage", "train")
    assert data["run"]["id"] == run_id  # type: ignore[index]
    assert data["metrics"] == {"metrics.json": {"accuracy": 0.9}}


# --- promote, rollback, history ---------------------------------------------------------


def promote(repo: Path, *args: str) -> dict[str, object]:
    result = run_cli(repo, "model", "promote", *args, "--json")
    assert result.exit_code == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def three_versions(project: Path, accuracies: list[float]) -> None:
    for i, accuracy in enumerate(accuracies):
        train_model(project / "model.joblib", 0.1 + i)
        record_run(project, "model.joblib", {"accuracy": accuracy, "log_loss": 1 - accuracy})
        register(project, "iris", "model.joblib")


def test_promote_gates_on_metrics_named_in_mlops_yaml(project: Path) -> None:
    (project / "mlops.yaml").write_text(
        "models:\n  iris:\n    compare: {accuracy: higher, 'metrics.json:log_loss': lower}\n"
    )
    three_versions(project, [0.90, 0.80, 0.95])
    first = promote(project, "iris", "1", "--to", "production", "--reason", "baseline")
    assert first["moved"] is True and first["previous"] is None
    error = fails(project, "model", "promote", "iris", "2", "--to", "production")
    assert "cannot promote iris:2 to production: accuracy 0.8 is worse than 0.9" in error
    assert "--force --reason" in error
    # Staging has no metric gate; production accepts a better version.
    assert promote(project, "iris", "2", "--to", "staging")["moved"] is True
    better = promote(project, "iris", "3", "--to", "production")
    assert better["previous"] == "1"
    gate = better["gate"]
    assert [m["metric"] for m in gate["metrics"]] == ["accuracy", "metrics.json:log_loss"]  # type: ignore[index]
    assert show(project, "iris@production")["version"] == "3"
    assert show(project, "iris@staging")["aliases"] == ["staging"]
    # Promoting the holder again changes nothing.
    assert promote(project, "iris", "3", "--to", "production")["moved"] is False


def test_force_needs_a_reason_and_is_recorded(project: Path) -> None:
    (project / "mlops.yaml").write_text("models:\n  iris:\n    compare: {accuracy: higher}\n")
    three_versions(project, [0.9, 0.5])
    promote(project, "iris", "1", "--to", "production")
    error = fails(project, "model", "promote", "iris", "2", "--to", "production", "--force")
    assert "needs a reason" in error
    forced = promote(
        project, "iris", "2", "--to", "production", "--force", "--reason", "hotfix for bug 12"
    )
    assert forced["forced"] is True
    history = json.loads(run_cli(project, "model", "history", "iris", "--json").stdout)
    last = history[-1]
    assert (last["action"], last["version"], last["previous"], last["forced"]) == (
        "promote",
        "2",
        "1",
        True,
    )
    assert last["reason"] == "hotfix for bug 12" and last["author"] == "Test <test@example.com>"
    text = run_cli(project, "model", "history", "iris").stdout
    assert "promoted 2 to production (was 1) FORCED: hotfix for bug 12" in text


def test_failed_checks_block_promotion_to_any_alias(project: Path) -> None:
    record_run(project, "model.joblib", {"accuracy": 0.41}, checks_passed=False)
    register(project, "iris", "model.joblib")
    error = fails(project, "model", "promote", "iris", "1", "--to", "staging")
    assert "its after checks failed" in error and "good_model > min_score" in error
    moved = promote(project, "iris", "1", "--to", "staging", "--force", "--reason", "demo")
    assert moved["gate"]["checks"] == "failed"  # type: ignore[index]


def test_rollback_walks_back_through_promotions(project: Path) -> None:
    three_versions(project, [0.7, 0.8, 0.9])
    for version in ("1", "2", "3"):
        promote(project, "iris", version, "--to", "production")
    result = run_cli(project, "model", "rollback", "iris", "--reason", "v3 is slow")
    assert result.exit_code == 0, result.stderr
    assert "iris@production -> 2 (rolled back from 3)" in result.stdout
    assert show(project, "iris@production")["version"] == "2"
    run_cli(project, "model", "rollback", "iris")
    assert show(project, "iris@production")["version"] == "1"
    error = fails(project, "model", "rollback", "iris")
    assert "no earlier holder" in error
    actions = [
        (e["action"], e["version"])
        for e in json.loads(run_cli(project, "model", "history", "iris", "--json").stdout)
    ]
    assert actions[-2:] == [("rollback", "2"), ("rollback", "1")]
    assert tags(project).keys() >= {k for k in tags(project) if "/@production/" in k}
    assert len([k for k in tags(project) if "/@production/" in k]) == 5


# --- get and load_model -----------------------------------------------------------------


def test_get_writes_a_checked_copy_and_never_overwrites_without_force(project: Path) -> None:
    register(project, "iris", "model.joblib")
    promote(project, "iris", "1", "--to", "production")
    result = run_cli(project, "model", "get", "iris@production", "-o", "out.joblib")
    assert result.exit_code == 0, result.stderr
    assert (project / "out.joblib").read_bytes() == (project / "model.joblib").read_bytes()
    assert os.access(project / "out.joblib", os.W_OK)
    (project / "out.joblib").write_text("mine")
    error = fails(project, "model", "get", "iris@production", "-o", "out.joblib")
    assert "out.joblib: already exists; use --force" in error
    assert (project / "out.joblib").read_text() == "mine"
    assert run_cli(project, "model", "get", "iris:1", "-o", "out.joblib", "--force").exit_code == 0
    assert (project / "out.joblib").read_bytes() == (project / "model.joblib").read_bytes()


def test_load_model_returns_a_fitted_estimator(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlops

    register(project, "iris", "model.joblib")
    promote(project, "iris", "1", "--to", "production")
    monkeypatch.chdir(project)
    model = mlops.load_model("iris@production")
    assert model.predict([[5.1, 3.5, 1.4, 0.2]]).tolist() == [0]
    assert type(mlops.load_model("iris:1")).__name__ == "LogisticRegression"


def test_corrupt_object_is_refused_by_get_and_load_model(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlops
    from mlops.errors import CacheError

    data = register(project, "iris", "model.joblib")
    oid = str(data["content"]["hash"])  # type: ignore[index]
    obj = project / ".mlops" / "cache" / oid[:2] / oid[2:]
    obj.chmod(0o644)
    obj.write_bytes(obj.read_bytes()[:-10] + b"0123456789")
    error = fails(project, "model", "get", "iris:1", "-o", "out.joblib")
    assert "does not match its hash" in error and "iris:1" in error
    assert not (project / "out.joblib").exists()
    assert [p.name for p in project.iterdir() if p.name.startswith(".out")] == []
    monkeypatch.chdir(project)
    with pytest.raises(CacheError, match="does not match its hash"):
        mlops.load_model("iris:1")


# --- bad input ------------------------------------------------------------------------------


def test_unknown_model_version_and_alias(project: Path) -> None:
    register(project, "iris", "model.joblib")
    assert "no model named 'wine' in the registry (models: iris)" in fails(
        project, "model", "show", "wine"
    )
    assert "model 'iris' has no version 7 (versions: 1)" in fails(
        project, "model", "get", "iris:7", "-o", "out.joblib"
    )
    assert "model 'iris' has no alias 'production'" in fails(
        project, "model", "show", "iris@production"
    )
    assert "has no version 9" in fails(project, "model", "promote", "iris", "9", "--to", "prod")
    assert "invalid version 'x1'" in fails(project, "model", "show", "iris:x1")
    assert "invalid alias name 'a/b'" in fails(
        project, "model", "promote", "iris", "1", "--to", "a/b"
    )
    assert "no model named 'wine'" in fails(project, "model", "history", "wine")
    assert "no model named 'wine'" in fails(project, "model", "rollback", "wine")
    assert "invalid model name 'bad name'" in fails(
        project, "model", "register", "bad name", "model.joblib"
    )


def test_register_refuses_what_is_not_a_file_or_folder(project: Path) -> None:
    assert "missing.joblib: no such file or folder" in fails(
        project, "model", "register", "iris", "missing.joblib"
    )
    os.mkfifo(project / "pipe")
    assert "pipe: not a regular file or folder" in fails(
        project, "model", "register", "iris", "pipe"
    )
    (project / "link.joblib").symlink_to(project / "model.joblib")
    assert "a symbolic link" in fails(project, "model", "register", "iris", "link.joblib")
    assert "no run with id 'nope'" in fails(
        project, "model", "register", "iris", "model.joblib", "--run", "nope"
    )


def test_register_refuses_a_run_that_made_other_content(project: Path) -> None:
    run_id = record_run(project, "model.joblib", {"accuracy": 0.9})
    train_model(project / "model.joblib", 5.0)
    error = fails(project, "model", "register", "iris", "model.joblib", "--run", run_id)
    assert f"run {run_id} recorded model.joblib with hash" in error
    error = fails(
        project, "model", "register", "iris", "model.joblib", "--run", run_id, "--stage", "x"
    )
    assert "has no stage 'x'" in error


def tag_message(repo: Path, tag: str) -> str:
    return git(repo, "cat-file", "tag", tag).split("\n\n", 1)[1]


def retag(repo: Path, tag: str, message: str) -> None:
    """Replace ``tag`` with an annotated tag holding ``message``, as a person might by hand."""
    target = git(repo, "rev-parse", f"{tag}^{{}}").strip()
    git(repo, "tag", "-f", "-a", "--cleanup=verbatim", "-m", message, tag, target)


@pytest.mark.parametrize(
    "edit, problem",
    [
        ("reason", "its record does not match the id"),
        ("json", "its message does not hold a JSON record"),
        ("lightweight", "a lightweight tag"),
        ("name", "not a registry tag name"),
    ],
)
def test_tag_edited_by_hand_is_a_clear_error_naming_it(
    project: Path, edit: str, problem: str
) -> None:
    register(project, "iris", "model.joblib")
    promote(project, "iris", "1", "--to", "production", "--reason", "good")
    event = next(t for t in tags(project) if "/@production/" in t)
    if edit == "reason":
        retag(project, event, tag_message(project, event).replace('"good"', '"bad"'))
        bad = event
    elif edit == "json":
        retag(project, event, "mlops: promote\n\n{not json")
        bad = event
    elif edit == "lightweight":
        git(project, "tag", "-d", event)
        git(project, "tag", event, "HEAD")
        bad = event
    else:
        bad = "model/iris/latest"
        git(project, "tag", "-a", "-m", "x", bad, "HEAD")
    for args in (("model", "show", "iris@production"), ("model", "list"), ("gc",)):
        error = fails(project, *args)
        assert f"registry tag {bad}: {problem}" in error, error
        assert f"git tag -d {bad}" in error


def test_models_section_errors_name_file_line_and_key(project: Path) -> None:
    register(project, "iris", "model.joblib")
    train_model(project / "model.joblib", 3.0)
    register(project, "iris", "model.joblib")
    promote(project, "iris", "1", "--to", "production")
    (project / "mlops.yaml").write_text("models:\n  iris:\n    compare:\n      accuracy: up\n")
    error = fails(project, "model", "promote", "iris", "2", "--to", "production")
    assert "mlops.yaml:4: models.iris.compare.accuracy: expected 'higher' or 'lower'" in error
    (project / "mlops.yaml").write_text("models:\n  iris:\n    comapre: {}\n")
    error = fails(project, "model", "promote", "iris", "2", "--to", "production")
    assert "mlops.yaml:3: models.iris.comapre: unknown key (known: compare)" in error


def test_gc_keeps_every_registered_version(project: Path) -> None:
    first = register(project, "iris", "model.joblib")
    train_model(project / "model.joblib", 7.0)
    register(project, "iris", "model.joblib")
    (project / "model.joblib").unlink()
    result = run_cli(project, "gc", "--json")
    assert result.exit_code == 0, result.stderr
    assert run_cli(project, "model", "get", "iris:1", "-o", "out.joblib").exit_code == 0
    from mlops.storage.hashing import hash_file

    assert hash_file(project / "out.joblib") == first["content"]["hash"]  # type: ignore[index]


def test_cli_as_a_subprocess(project: Path) -> None:
    register(project, "iris", "model.joblib")
    proc = run_subprocess(project, "model", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["name"] == "iris"
    proc = run_subprocess(project, "model", "show", "iris@nope")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "mlops: error: model 'iris' has no alias 'nope' (aliases: none yet)"
    )
    help_text = run_subprocess(project, "model", "--help").stdout
    for command in ("register", "list", "show", "history", "promote", "rollback", "get"):
        assert command in help_text


def test_register_with_promote_is_gated_too(project: Path) -> None:
    data = register(project, "iris", "model.joblib", "--promote", "staging")
    assert show(project, "iris@staging")["id"] == data["id"]
    train_model(project / "model.joblib", 4.0)
    record_run(project, "model.joblib", {"accuracy": 0.4}, checks_passed=False)
    result = run_cli(project, "model", "register", "iris", "model.joblib", "--promote", "staging")
    assert result.exit_code == 1
    assert "registered iris:2, but cannot promote iris:2 to staging" in result.stderr
    assert show(project, "iris@staging")["id"] == data["id"]
    assert show(project, "iris")["version"] == "2"


def test_two_promotions_of_one_alias_at_once_exactly_one_succeeds(project: Path) -> None:
    """Both read the alias before either records; the second is refused, not stacked."""
    import fcntl
    import subprocess
    import sys
    import time

    three_versions(project, [0.90, 0.91, 0.92])
    lock_file = project / ".mlops" / "tmp" / "registry.lock"
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    held = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(held, fcntl.LOCK_EX)  # both promotions reach the lock and wait there
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mlops", "model", "promote", "iris", v, "--to", "staging"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for v in ("2", "3")
    ]
    try:
        deadline = time.monotonic() + 60
        # A process opens the lock file only after it has read the registry.
        while not all(_has_open(p.pid, lock_file) for p in procs):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
            time.sleep(0.02)
    finally:
        os.close(held)
    outcomes = [(p.wait(60), *p.communicate()) for p in procs]
    assert sorted(code for code, _, _ in outcomes) == [0, 1], outcomes
    loser = next(err for code, _, err in outcomes if code == 1)
    assert "iris@staging moved meanwhile" in loser and "nothing was recorded" in loser
    history = json.loads(run_cli(project, "model", "history", "iris", "--json").stdout)
    assert sum(1 for e in history if e.get("alias") == "staging") == 1


def _has_open(pid: int, path: Path) -> bool:
    try:
        return any(
            os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd")
        )
    except (FileNotFoundError, ProcessLookupError):
        return False
