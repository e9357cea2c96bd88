"""``mlops import-dvc``: turn a DVC repository into an mlops one, leaving DVC's files as
they are (the repository keeps working with DVC).

What is written, after everything was read and hashed: the cache objects, then the
pointer files, the remotes, ``mlops.lock`` and last ``mlops.yaml``. A file already
there with other content is replaced only with ``force``; one with the same content
is left alone, so an interrupted import is simply run again.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlops.core.fsutil import atomic_write_text
from mlops.core.parallel import Progress
from mlops.core.repo import (
    Repo,
    config_set,
    find_git_root,
    init_repo,
    parse_config_value,
    repo_lock,
)
from mlops.core.secrets import SECRET_KEYS
from mlops.dvcimport.dvcfiles import (
    DVC_DIR,
    DvcConfig,
    DvcHash,
    DvcPointer,
    LockStage,
    Note,
    cache_object,
    read_config,
    read_lock,
    read_pointers,
)
from mlops.dvcimport.objects import Imported, Missing, ObjectImporter, placeholder
from mlops.dvcimport.stages import Converted, convert_pipeline, pipeline_text
from mlops.errors import ConfigError, InputError, WorkspaceConflict
from mlops.pipeline import PIPELINE_FILE
from mlops.pipeline.lock import LOCK_FILE, FileHash, Lock, LockEntry, lock_text
from mlops.pipeline.params import ParamFiles, flatten, stage_params
from mlops.pipeline.schema import Stage
from mlops.remote.config import check_remote_name, list_remotes, split_url
from mlops.storage.pointer import Pointer, pointer_path
from mlops.storage.store import open_store
from mlops.workspace.add import ignore_in_git

# DVC's remote options with an fsspec equivalent, by URL scheme.
_OPTIONS = {
    "s3": {
        "endpointurl": "endpoint_url",
        "access_key_id": "key",
        "secret_access_key": "secret",
        "session_token": "token",
        "profile": "profile",
    },
    "gs": {"projectname": "project", "credentialpath": "token"},
    "azure": {
        "account_name": "account_name",
        "account_key": "account_key",
        "connection_string": "connection_string",
        "sas_token": "sas_token",
        "tenant_id": "tenant_id",
        "client_id": "client_id",
        "client_secret": "client_secret",
    },
    "ssh": {"user": "username", "password": "password", "port": "port"},
}
_URL_PASSWORD = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/:@]*:[^/@]*@")


@dataclass(frozen=True)
class RemoteImport:
    """A DVC remote as mlops settings: shared ones, and per-machine ones (secrets)."""

    name: str
    url: str
    shared: dict[str, Any]
    local: dict[str, Any]
    default: bool

    def to_dict(self) -> dict[str, Any]:
        from mlops.core.secrets import MASK, mask_url

        return {
            "name": self.name,
            "url": mask_url(self.url),
            "default": self.default,
            "options": sorted(self.shared),
            "local_options": sorted(self.local),
            "masked": MASK if self.local else "",
        }


@dataclass(frozen=True)
class ImportReport:
    """What the import wrote (or, with ``dry_run``, would write) and what it left out."""

    dry_run: bool
    stages: tuple[str, ...]
    locked: tuple[str, ...]  # stages given a lock entry
    pointers: tuple[str, ...]  # pointer files
    remotes: tuple[RemoteImport, ...]
    files: int  # data files brought into the cache (or found there, for a dry run)
    size: int
    missing: tuple[Missing, ...]
    notes: tuple[Note, ...]
    written: tuple[str, ...]  # files (re)written; empty for a dry run

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "stages": list(self.stages),
            "locked": list(self.locked),
            "pointers": list(self.pointers),
            "remotes": [r.to_dict() for r in self.remotes],
            "files": self.files,
            "bytes": self.size,
            "missing": [{"path": m.path, "reason": m.reason} for m in self.missing],
            "not_imported": [n.to_dict() for n in self.notes],
            "written": list(self.written),
        }


def import_dvc(
    start: Path | None = None,
    dry_run: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the DVC repository around ``start`` (see the module's docstring)."""
    root = find_git_root(start)
    if not (root / DVC_DIR).is_dir():
        raise InputError(f"{root} is not a DVC repository (no {DVC_DIR}/ folder)")
    converted = convert_pipeline(root)
    stages = converted.pipeline.stages
    pointers, pointer_notes = read_pointers(root)
    lock, lock_notes = read_lock(root, {n: s.wdir for n, s in stages.items()})
    config = read_config(root)
    remotes, remote_notes = convert_remotes(root, config)
    notes = (
        *converted.notes,
        *pointer_notes,
        *lock_notes,
        *_commands_differ(stages, lock),
        *remote_notes,
    )
    if not dry_run:
        _refuse_conflicts(root, converted, remotes, force)
    wanted = _wanted(pointers, lock, stages)
    if dry_run:
        files, size, missing = _survey(config, wanted)
        return ImportReport(
            True,
            tuple(stages),
            tuple(n for n in stages if n in lock),
            tuple(_pointer_file(p) for p in pointers),
            tuple(remotes),
            files,
            size,
            tuple(missing),
            notes,
            (),
        )
    repo, _ = init_repo(root)
    with repo_lock(repo, wait=30, purpose="import-dvc"), open_store(repo) as store:
        results = ObjectImporter(store, config.cache_dir).import_all(wanted, progress)
        written = _write(repo, converted, pointers, lock, remotes, results, force)
    # Only stored content can be missing: a dep or uncached output whose bytes are not
    # found has changed since dvc.lock, and its stage is stale, as DVC says too.
    stored = {(found.path, found.md5) for found, store in wanted if store}
    kept = [r for key, r in results.items() if key in stored]
    imported = [r for r in kept if isinstance(r, Imported)]
    return ImportReport(
        False,
        tuple(stages),
        tuple(n for n in stages if n in lock),
        tuple(_pointer_file(p) for p in pointers if isinstance(_result(results, p.data), Imported)),
        tuple(remotes),
        sum(r.files for r in imported),
        sum(r.size for r in imported),
        tuple(r for r in kept if isinstance(r, Missing)),
        notes,
        tuple(written),
    )


def _commands_differ(stages: dict[str, Stage], lock: dict[str, LockStage]) -> list[Note]:
    """Locked stages whose command mlops expands otherwise than dvc.lock has it: changed
    since ``dvc repro``, or read otherwise (mlops reads YAML 1.1, where ``1e-3`` is text
    and ``yes`` is true; DVC YAML 1.2). Either way mlops runs them again."""
    return [
        Note(
            lock[name].where,
            f"stage {name}",
            f"mlops's command {' && '.join(stage.cmd)!r} is not dvc.lock's "
            f"{' && '.join(lock[name].cmd)!r}: it is stale until it runs",
        )
        for name, stage in stages.items()
        if name in lock and stage.cmd != lock[name].cmd
    ]


def _pointer_file(pointer: DvcPointer) -> str:
    return pointer.data.path + ".mlops"


def _result(results: dict[tuple[str, str], Imported | Missing], found: DvcHash) -> Any:
    return results.get((found.path, found.md5))


def _wanted(
    pointers: list[DvcPointer], lock: dict[str, LockStage], stages: dict[str, Stage]
) -> list[tuple[DvcHash, bool]]:
    """Every DVC path whose content is needed, and whether its objects go into the cache
    (tracked data and cached outputs) or only its id is needed (deps, uncached outputs)."""
    wanted = [(p.data, True) for p in pointers]
    for name, stage in stages.items():
        entry = lock.get(name)
        if entry is None:
            continue
        cached = {o.path: o.cache for o in stage.outputs}
        wanted += [(out, cached.get(out.path, False)) for out in entry.outs]
        wanted += [(dep, False) for dep in entry.deps]
    return wanted


def _survey(
    config: DvcConfig, wanted: list[tuple[DvcHash, bool]]
) -> tuple[int, int, list[Missing]]:
    """For a dry run: how many files DVC's cache holds for what is stored, and what it
    lacks (the listing of a folder is read; no file is hashed)."""
    import json

    files = size = 0
    missing: list[Missing] = []
    seen: set[tuple[str, str]] = set()
    for found, store in wanted:
        if not store or (found.path, found.md5) in seen:
            continue
        seen.add((found.path, found.md5))
        md5s = [found.md5]
        if found.is_dir:
            try:
                listing = json.loads(Path(cache_object(config.cache_dir, found.md5)).read_bytes())
                md5s = [str(row["md5"]) for row in listing]
            except (OSError, ValueError, KeyError, TypeError):
                missing.append(
                    Missing(found.path, f"folder listing {found.md5} not in DVC's cache")
                )
                continue
        present = [m for m in md5s if os.path.isfile(cache_object(config.cache_dir, m))]
        files += len(present)
        size += sum(os.path.getsize(cache_object(config.cache_dir, m)) for m in present)
        if len(present) < len(md5s):
            missing.append(
                Missing(
                    found.path,
                    f"{len(md5s) - len(present)} of {len(md5s)} files not in DVC's cache",
                )
            )
    return files, size, missing


def convert_remotes(root: Path, config: DvcConfig) -> tuple[list[RemoteImport], list[Note]]:
    """DVC's remotes as mlops remotes; options without an equivalent are listed."""
    found = []
    notes = []
    for remote in config.remotes:
        try:
            check_remote_name(remote.name)
        except ConfigError as exc:
            notes.append(Note(remote.where, f"remote {remote.name}", exc.message))
            continue
        url = remote.options.get("url", "")
        if not url:
            notes.append(Note(remote.where, f"remote {remote.name}", "it has no url"))
            continue
        scheme, rest = split_url(url)
        if scheme in (None, "file", "local"):
            # DVC reads a relative folder from .dvc/; mlops from the repository root.
            path = os.path.expanduser(rest)
            if not os.path.isabs(path):
                path = os.path.relpath(os.path.normpath(root / DVC_DIR / path), root)
            url = path
        names = _OPTIONS.get(scheme or "", {})
        shared: dict[str, Any] = {}
        local: dict[str, Any] = {}
        for key, value in remote.options.items():
            if key == "url":
                continue
            name = names.get(key)
            if name is None:
                notes.append(
                    Note(
                        remote.lines[key],
                        f"option {key!r} of remote {remote.name}",
                        "no mlops equivalent",
                    )
                )
                continue
            secret = name in SECRET_KEYS or key in remote.local_keys
            target = local if secret else shared
            target[name] = value if name in SECRET_KEYS else parse_config_value(value)
        local_url = "url" in remote.local_keys or _URL_PASSWORD.match(url) is not None
        found.append(
            RemoteImport(
                remote.name,
                url,
                shared,
                {**local, **({"url": url} if local_url else {})},
                remote.name == config.default_remote,
            )
        )
    return found, notes


def _refuse_conflicts(
    root: Path, converted: Converted, remotes: list[RemoteImport], force: bool
) -> None:
    """Stop before writing anything when mlops files or remotes would change without force."""
    if force:
        return
    clashes = []
    path = root / PIPELINE_FILE
    if converted.doc and path.exists() and path.read_text() != pipeline_text(converted):
        clashes.append(PIPELINE_FILE)
    if (root / ".mlops").is_dir():
        existing = {r.name: r for r in list_remotes(Repo(root))}
        for remote in remotes:
            there = existing.get(remote.name)
            if there is not None and there.url != remote.url:
                clashes.append(f"remote {remote.name}")
    if clashes:
        raise WorkspaceConflict(
            f"{', '.join(clashes)} already exist(s) with other content; "
            "run `mlops import-dvc --force` to replace"
        )


def _write(
    repo: Repo,
    converted: Converted,
    pointers: list[DvcPointer],
    lock: dict[str, LockStage],
    remotes: list[RemoteImport],
    results: dict[tuple[str, str], Imported | Missing],
    force: bool,
) -> list[str]:
    root = repo.root
    texts: dict[Path, str] = {}
    for p in pointers:
        got = _result(results, p.data)
        if isinstance(got, Imported):
            data = root / p.data.path
            pointer = Pointer(data.name, got.oid, got.size, got.files)
            texts[pointer_path(data)] = pointer.to_text()
    load = ParamFiles(root)
    entries = {
        name: _lock_entry(stage, lock[name], results, load)
        for name, stage in converted.pipeline.stages.items()
        if name in lock
    }
    if entries:
        texts[root / LOCK_FILE] = lock_text(Lock(entries))
    pipeline = root / PIPELINE_FILE
    if converted.doc:  # a repository with .dvc files only has no pipeline to write
        texts[pipeline] = pipeline_text(converted)
    clashes = [
        repo.relpath(path)
        for path, text in texts.items()
        if path.exists() and path.read_text() != text and path.name != PIPELINE_FILE
    ]
    if clashes and not force:
        raise WorkspaceConflict(
            f"{', '.join(clashes[:5])}{' and more' if len(clashes) > 5 else ''} already "
            "exist(s) with other content; run `mlops import-dvc --force` to replace"
        )
    written = []
    for path, text in texts.items():
        if path == pipeline:
            continue
        if not path.exists() or path.read_text() != text:
            _check_target(root, path)
            atomic_write_text(path, text)
            written.append(repo.relpath(path))
    ignore_in_git(
        root, [p.data.path for p in pointers if (root / (p.data.path + ".mlops")).exists()]
    )
    for remote in remotes:
        written += _write_remote(repo, remote)
    if pipeline in texts and (not pipeline.exists() or pipeline.read_text() != texts[pipeline]):
        atomic_write_text(pipeline, texts[pipeline])
        written.append(PIPELINE_FILE)
    return written


def _check_target(root: Path, path: Path) -> None:
    """No file is written through a symbolic link inside the work tree."""
    rel = path.relative_to(root)
    here = root
    for part in rel.parts:
        here = here / part
        if here.is_symlink():
            raise InputError(f"{rel.as_posix()}: {here.relative_to(root)} is a symbolic link")


def _write_remote(repo: Repo, remote: RemoteImport) -> list[str]:
    """Set the remote's keys that differ; return the config files changed."""
    config = repo.config()
    current = (config.get("remote") or {}).get(remote.name) or {}
    shared = remote.shared if "url" in remote.local else {"url": remote.url, **remote.shared}
    changed = set()
    for local, values in ((False, shared), (True, remote.local)):
        for key, value in values.items():
            if current.get(key) != value:
                config_set(repo, f"remote.{remote.name}.{key}", value, local)
                changed.add(".mlops/config.local.yaml" if local else ".mlops/config.yaml")
    if remote.default and (config.get("core") or {}).get("remote") != remote.name:
        config_set(repo, "core.remote", remote.name)
        changed.add(".mlops/config.yaml")
    return sorted(changed)


def _lock_entry(
    stage: Stage,
    entry: LockStage,
    results: dict[tuple[str, str], Imported | Missing],
    load: ParamFiles,
) -> LockEntry:
    """dvc.lock's entry as mlops's: the same paths, each with the BLAKE3 id of the bytes
    DVC recorded (an id no content has where those bytes are not found).

    DVC does not lock the values its ``${...}`` read: they show in the command and paths
    it locks. mlops locks them as params too; they are taken as they are now, so that a
    value changed since ``dvc repro`` shows as the changed command or path DVC sees.
    """

    def file_hash(found: DvcHash) -> FileHash:
        got = _result(results, found)
        if isinstance(got, Imported):
            return FileHash(found.path, got.oid, got.size, got.files)
        return FileHash(found.path, placeholder(found.md5), found.size or 0, found.files or 1)

    read = {ref.file for ref in stage.params}
    params = {file: flatten(values) for file, values in entry.params.items() if file in read}
    implicit = stage_params(replace(stage, params=stage.interpolated), load, strict=False)
    for file, values in implicit.items():
        params[file] = {**values, **params.get(file, {})}
    return LockEntry(
        cmd=entry.cmd,
        deps=tuple(file_hash(d) for d in entry.deps),
        params=params,
        outs=tuple(file_hash(o) for o in entry.outs),
        wdir=stage.wdir,
        env=stage.env,
    )
