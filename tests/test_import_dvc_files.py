"""`mlops import-dvc` on DVC files written by hand: hostile listings, exact formats."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mlops.dvcimport.dvcfiles import parse_ini
from mlops.dvcimport.objects import dvc_dir_md5
from tests.helpers.cli import run_cli
from tests.helpers.repos import init_git


def _dvc_repo(path: Path) -> Path:
    repo = init_git(path)
    (repo / ".dvc/cache/files/md5").mkdir(parents=True)
    (repo / ".dvc/config").write_text("[core]\n    autostage = true\n")
    return repo


def _put(repo: Path, data: bytes, suffix: str = "") -> str:
    md5 = hashlib.md5(data).hexdigest() + suffix
    obj = repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    obj.parent.mkdir(parents=True, exist_ok=True)
    obj.write_bytes(data)
    obj.chmod(0o444)
    return md5


def _track(repo: Path, name: str, md5: str, extra: str = "") -> None:
    (repo / f"{name}.dvc").write_text(
        f"outs:\n- md5: {md5}\n  size: 1\n  hash: md5\n  path: {name}\n{extra}"
    )


def test_a_listing_naming_a_path_outside_its_folder_is_refused(tmp_path: Path) -> None:
    repo = _dvc_repo(tmp_path / "repo")
    good = _put(repo, b"fine\n")
    for bad in ("../escape.txt", ".git/hooks/post-checkout", "a/.MLOPS/x", "/abs"):
        listing = [{"md5": good, "relpath": "ok.txt"}, {"md5": good, "relpath": bad}]
        md5 = _put(repo, json.dumps(listing, sort_keys=True).encode(), ".dir")
        _track(repo, "folder", md5)
        result = run_cli(repo, "import-dvc")
        assert result.exit_code == 1
        assert f"missing: folder: DVC's listing {md5} names {bad!r}" in result.stderr
        assert not (repo / "folder.mlops").exists()
        assert not (tmp_path / "escape.txt").exists()


def test_folder_listings_and_data_from_the_workspace(tmp_path: Path) -> None:
    repo = _dvc_repo(tmp_path / "repo")
    (repo / "images/sub").mkdir(parents=True)
    (repo / "images/a.txt").write_text("a\n")
    (repo / "images/sub/b.txt").write_text("b\n")
    rows = [("a.txt", hashlib.md5(b"a\n").hexdigest()), ("sub/b.txt", _put(repo, b"b\n"))]
    # DVC's folder id: the MD5 of its JSON listing, sorted, as DVC writes it.
    listing = json.dumps(
        [{"md5": m, "relpath": p} for p, m in sorted(rows)], sort_keys=True
    ).encode()
    assert dvc_dir_md5(rows) == hashlib.md5(listing).hexdigest() + ".dir"
    # The listing is not in DVC's cache and a.txt's object neither: both come from the
    # workspace, whose files have the recorded MD5s.
    _track(repo, "images", dvc_dir_md5(rows))
    result = run_cli(repo, "import-dvc", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["pointers"] == ["images.mlops"]
    status = json.loads(run_cli(repo, "status", "--json").stdout)
    assert [d["workspace"] for d in status["data"]] == ["unchanged"]
    (repo / "images/a.txt").write_text("changed\n")
    status = json.loads(run_cli(repo, "status", "--json").stdout)
    assert status["data"][0]["modified"] == ["a.txt"]


def test_dvc_config_is_read_as_configobj_writes_it() -> None:
    text = (
        "[core]\n    remote = s3  # the default\n"
        "['remote \"s3\"']\n    url = s3://bucket/path\n"
        '    profile = "my profile"\n'
        "; a comment\n[cache]\n    dir = ../shared-cache\n"
    )
    assert parse_ini(text, ".dvc/config") == [
        ("core", "", "", 1),
        ("core", "remote", "s3", 2),
        ('remote "s3"', "", "", 3),
        ('remote "s3"', "url", "s3://bucket/path", 4),
        ('remote "s3"', "profile", "my profile", 5),
        ("cache", "", "", 7),
        ("cache", "dir", "../shared-cache", 8),
    ]
