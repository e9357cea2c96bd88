"""``mlops.lock``: written and read back exactly, and refused with the file named."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from mlops.errors import PipelineError
from mlops.pipeline.lock import (
    LOCK_FILE,
    FileHash,
    Lock,
    LockEntry,
    lock_text,
    parse_lock,
    read_lock,
    write_lock,
)
from mlops.storage.hashing import hash_bytes

A, B, C = hash_bytes(b"a"), hash_bytes(b"b"), hash_bytes(b"c")
RUN = "20260101-000000-abcdef"

LOCK = Lock(
    {
        "prepare": LockEntry(
            cmd=("python prepare.py",),
            deps=(FileHash("data/raw.csv", A, 10), FileHash("src/prepare.py", B, 20)),
            params={"params.yaml": {"prepare.split": 0.2, "prepare.seed": 7}},
            outs=(FileHash("data/prepared", C + ".dir", 3000, files=12, cache=True),),
            run=RUN,
            record=hash_bytes(b"record"),
        ),
        "train": LockEntry(
            cmd=("python train.py", "echo done"),
            deps=(FileHash("data/prepared", C + ".dir", 3000, files=12),),
            params={},
            outs=(
                FileHash("model.pkl", A, 5, cache=True),
                FileHash("metrics.json", B, 40, cache=False),
            ),
            wdir="src",
            env=(("SEED", "1"), ("THREADS", "4")),
            run=RUN,
            checks="fingerprint",
        ),
    }
)


def test_written_and_read_back_exactly(tmp_path: Path) -> None:
    write_lock(tmp_path, LOCK, scratch=tmp_path / ".mlops" / "tmp")
    assert read_lock(tmp_path) == LOCK
    assert list(read_lock(tmp_path).stages) == ["prepare", "train"]  # order kept
    assert not list((tmp_path / ".mlops" / "tmp").iterdir())  # the temporary was renamed
    assert (tmp_path / LOCK_FILE).read_text() == lock_text(LOCK)


def test_the_text_is_json_with_its_algorithm(tmp_path: Path) -> None:
    doc = json.loads(lock_text(LOCK))
    assert doc["schema"] == 1 and doc["algo"] == "blake3" and "do not edit" in doc["note"]
    prepare, train = doc["stages"]["prepare"], doc["stages"]["train"]
    assert prepare["cmd"] == "python prepare.py" and train["cmd"] == [
        "python train.py",
        "echo done",
    ]
    assert "wdir" not in prepare and train["wdir"] == "src"
    assert prepare["outs"] == [
        {"path": "data/prepared", "hash": C + ".dir", "size": 3000, "files": 12, "cache": True}
    ]
    assert prepare["deps"][0] == {"path": "data/raw.csv", "hash": A, "size": 10}  # no files: a file


def test_rewriting_keeps_the_file_mode(tmp_path: Path) -> None:
    write_lock(tmp_path, LOCK)
    os.chmod(tmp_path / LOCK_FILE, 0o600)
    write_lock(tmp_path, Lock())
    assert stat.S_IMODE((tmp_path / LOCK_FILE).stat().st_mode) == 0o600
    assert read_lock(tmp_path) == Lock()


def test_no_lock_or_an_empty_one_is_an_empty_lock(tmp_path: Path) -> None:
    assert read_lock(tmp_path) == Lock()
    (tmp_path / LOCK_FILE).write_text("  \n")
    assert read_lock(tmp_path) == Lock()
    assert parse_lock('{"stages": null}', LOCK_FILE) == Lock()


def lock_with(**fields: Any) -> str:
    """A lock of one stage whose first dep has ``fields`` in place of its own."""
    dep = {"path": "data.csv", "hash": A, "size": 1, **fields}
    return json.dumps({"algo": "blake3", "stages": {"s": {"cmd": "c", "deps": [dep]}}})


BAD = r"mlops.lock: not a valid lock file \(.*"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"stages": {', r"mlops.lock:1: invalid JSON: .*; restore it from Git"),
        ("[1, 2]", r"mlops.lock: not a valid lock file .*; restore it from Git"),
        ('{"algo": "md5", "stages": {}}', r"mlops.lock: unknown hash algorithm 'md5'"),
        ('{"stages": {"s": {"deps": []}}}', r"mlops.lock: not a valid lock file \('cmd'\)"),
        ('{"stages": {"s": "text"}}', r"mlops.lock: not a valid lock file"),
        ('{"stages": [1]}', r"mlops.lock: not a valid lock file"),
        (lock_with(path="../outside"), BAD + r"path '../outside' is refused: not normalised"),
        (lock_with(path="/etc/passwd"), BAD + r"path '/etc/passwd' is refused: absolute"),
        (lock_with(path="x/.git/hooks"), BAD + r"path 'x/.git/hooks' is refused: has a '.git'"),
        (lock_with(path=None), BAD + r"path None is refused: not a string"),
        (lock_with(hash="abc"), BAD + r"invalid hash 'abc' for 'data.csv'"),
        (lock_with(hash=A.upper()), BAD + r"invalid hash"),
        (lock_with(cache="yes"), BAD + r"'cache' of 'data.csv' must be true or false"),
        (lock_with(size="big"), r"mlops.lock: not a valid lock file"),
        (lock_with(files=[1]), r"mlops.lock: not a valid lock file"),
    ],
)
def test_a_bad_lock_is_one_clear_error_naming_it(text: str, message: str) -> None:
    with pytest.raises(PipelineError, match=f"^{message}"):
        parse_lock(text, LOCK_FILE)


def test_the_name_given_is_the_one_in_the_message() -> None:
    with pytest.raises(PipelineError, match=r"^mlops.lock at 0123456789: not a valid lock file"):
        parse_lock("[]", "mlops.lock at 0123456789")


@pytest.mark.parametrize("size", [1.5, "12"])
def test_a_size_that_is_not_a_whole_number_is_refused(size: object) -> None:
    with pytest.raises(PipelineError, match="size"):
        parse_lock(lock_with(size=size), LOCK_FILE)
