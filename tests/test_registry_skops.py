"""skops model files: registered with their format and trusted types, loaded without code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli

sio = pytest.importorskip("skops.io", reason="the skops tests need skops (mlops[skops])")


def _forest(path: Path) -> Path:
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    x, y = load_iris(return_X_y=True, as_frame=True)
    x = pd.DataFrame(x.to_numpy(), columns=["a", "b", "c", "d"])
    sio.dump(RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y), path)
    return path


def x_row() -> object:
    import pandas as pd

    return pd.DataFrame([[5.1, 3.5, 1.4, 0.2]], columns=["a", "b", "c", "d"])


def test_skops_version_records_format_and_loads_without_pickle(repo: Path) -> None:
    from mlops.core.repo import Repo
    from mlops.registry.content import load_model

    _forest(repo / "model.skops")
    result = run_cli(repo, "model", "register", "iris", "model.skops", "--json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["format"] == {"name": "skops", "trusted": ["sklearn.tree._tree.Tree"]}
    assert [f["name"] for f in record["signature"]["features"]] == ["a", "b", "c", "d"]
    model = load_model("iris:1", Repo(repo))
    assert model.predict(x_row()).tolist() == [0]


def test_joblib_version_records_its_format(repo: Path) -> None:
    from tests.helpers.registry import train_model

    train_model(repo / "model.joblib")
    result = run_cli(repo, "model", "register", "lr", "model.joblib", "--json")
    assert json.loads(result.stdout)["format"] == {"name": "joblib"}


def test_a_type_outside_sklearn_numpy_scipy_is_never_built(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops.core.repo import Repo
    from mlops.registry.content import load_model

    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "evil_thing.py").write_text(
        "class Thing:\n    def __setstate__(self, state):\n"
        "        open(state['path'], 'w').write('ran')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    import evil_thing

    thing = evil_thing.Thing()
    marker = tmp_path / "ran"
    thing.__dict__["path"] = str(marker)
    sio.dump(thing, repo / "thing.skops")
    del sys.modules["evil_thing"]
    result = run_cli(repo, "model", "register", "thing", "thing.skops", "--json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["format"]["trusted"] == ["evil_thing.Thing"]
    assert record["signature"] == {}  # not loaded to find one: it would build the type
    with pytest.raises(Exception, match="trusts types outside scikit-learn, NumPy and SciPy"):
        load_model("thing:1", Repo(repo))
    assert not marker.exists()


def test_serve_a_skops_version(repo: Path) -> None:
    from tests.helpers.serve import start_server

    _forest(repo / "model.skops")
    assert (
        run_cli(repo, "model", "register", "iris", "model.skops", "--promote", "prod").exit_code
        == 0
    )
    server = start_server(repo, "iris@prod", "--no-log")
    answer = server.post("/predict", json={"a": 5.1, "b": 3.5, "c": 1.4, "d": 0.2})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == [0] and answer.json()["version"] == "1"
    assert server.stop()
