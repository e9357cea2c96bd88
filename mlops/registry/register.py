"""Registering a model version: store the content, find its run, write the tag."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Any

from mlops.core.repo import MLOPS_DIR, Repo, repo_lock
from mlops.errors import InputError, RegistryError
from mlops.pipeline.results import SUCCEEDED
from mlops.registry.formats import describe
from mlops.registry.provenance import Production, RunIndex, checks_summary, consumers
from mlops.registry.records import (
    SCHEMA,
    Content,
    ModelVersion,
    check_name,
    record_id,
    version_tag,
)
from mlops.registry.signature import Signature, signature_of_file
from mlops.registry.tags import create_tag, identity, now, read_registry, tag_target
from mlops.storage.store import open_store
from mlops.workspace.add import snapshot


def register_model(
    repo: Repo,
    name: str,
    path: str | os.PathLike[str],
    run_id: str | None = None,
    stage: str | None = None,
    description: str | None = None,
    promote: str | None = None,
    *,
    lock: bool = True,
) -> ModelVersion:
    """Register the file or folder ``path`` as a new version of model ``name``.

    ``path`` is absolute or relative to the current folder. The run that made it
    is ``run_id`` (``stage`` picks the producing stage when given), or else the
    newest recorded run whose outputs include ``path`` with the same content.
    Content already registered for this model returns that version instead of a
    copy. With ``promote``, the version is then promoted to that alias (gated).
    Pass ``lock=False`` when the caller already holds the repository lock.
    """
    check_name(name, "model")
    if promote is not None:
        check_name(promote, "alias")
    source = _source(repo, path)
    read_registry(repo.root, name)  # a bad tag stops us before anything is written
    guard = repo_lock(repo, wait=30, purpose="model register") if lock else contextlib.nullcontext()
    with guard, open_store(repo) as store:
        pointer, _ = snapshot(store, source)
        # Read under the lock, so that two registrations in one clone never share a number.
        existing = read_registry(repo.root, name).get(name)
        rel = _relative(repo, source)
        production = _production(RunIndex(store), rel, pointer.oid, run_id, stage)
        same = [v for v in existing.versions if v.content.oid == pointer.oid] if existing else []
        if same:
            version = same[-1]
        else:
            content = Content(rel or source.name, pointer.oid, pointer.size, pointer.files)
            number = 1 + max((v.number for v in existing.versions), default=0) if existing else 1
            body = _body(repo, name, number, content, production, description or "")
            described = describe(source)
            if described is not None:
                body["format"] = described
            signature = _signature(repo, source, production)
            if signature is not None:
                body["signature"] = signature.to_dict()
            rid = record_id(body)
            tag = version_tag(name, number, rid)
            summary = f"mlops: register {name} v{number} ({content.path}, {pointer.oid[:12]})"
            create_tag(repo.root, tag, summary, body, tag_target(repo.root, body["commit"]))
            version = read_registry(repo.root, name)[name].by_id(rid)
    if promote is not None:
        from mlops.registry.promote import promote as promote_version

        reason = f"registered from run {version.run.id}" if version.run else "registered"
        try:
            promote_version(repo, name, version.label, promote, reason=reason)
        except RegistryError as exc:
            raise RegistryError(f"registered {version.ref}, but {exc.message}") from None
    return version


def _source(repo: Repo, raw: str | os.PathLike[str]) -> Path:
    path = Path(os.path.abspath(raw))
    if not os.path.lexists(path):
        raise InputError(f"{raw}: no such file or folder")
    if path.is_symlink():
        raise InputError(f"{raw}: a symbolic link; register the file or folder it points to")
    if not (path.is_file() or path.is_dir()):
        raise InputError(f"{raw}: not a regular file or folder")
    rel = _relative(repo, path)
    if rel is not None and rel.split("/")[0] in (".git", MLOPS_DIR):
        raise InputError(f"{raw}: inside {rel.split('/')[0]}/; register a model file or folder")
    if rel == "":
        raise InputError(f"{raw}: the repository root; name the model file or folder in it")
    return path


def _relative(repo: Repo, path: Path) -> str | None:
    """``path`` relative to the repository root, or None when it lies outside."""
    if path == repo.root or repo.root in path.parents:
        return "" if path == repo.root else repo.relpath(path)
    return None


def _production(
    index: RunIndex, rel: str | None, oid: str, run_id: str | None, stage: str | None
) -> Production | None:
    """The run stage that made ``oid`` at ``rel``: the one given, or the newest found."""
    if run_id is None:
        if stage is not None:
            raise InputError("a stage names the producing stage of a run: give the run too")
        return index.producer(rel, oid) if rel is not None else None
    record = index.find(run_id)
    if rel is None:
        raise InputError(f"run {record.id} cannot have produced a file outside the repository")
    makers = [s for s in record.stages if rel in s.outs]
    if stage is not None:
        chosen = [s for s in record.stages if s.name == stage]
        if not chosen:
            names = ", ".join(s.name for s in record.stages) or "none"
            raise InputError(f"run {record.id} has no stage {stage!r} (stages: {names})")
        if chosen[0] not in makers and rel not in chosen[0].deps:
            raise InputError(f"stage {stage!r} of run {record.id} neither made nor read {rel}")
    if not makers:
        raise InputError(f"run {record.id} did not produce {rel}: no stage lists it in its outs")
    maker = makers[0]
    if maker.outs[rel] != oid:
        raise InputError(
            f"run {record.id} recorded {rel} with hash {maker.outs[rel][:12]}, but the file now "
            f"has {oid[:12]}: register the file that run made (`mlops checkout {rel}`), "
            "or leave out --run"
        )
    return Production(record, maker)


def _signature(repo: Repo, source: Path, production: Production | None) -> Signature | None:
    """The model's features and types; the training data are the run's inputs, if any."""
    from mlops.tables.read import TABLE_SUFFIXES

    deps = production.stage.deps if production is not None else {}
    training = [repo.root / p for p in sorted(deps) if p.lower().endswith(TABLE_SUFFIXES)]
    return signature_of_file(source, [p for p in training if p.is_file()])


def _body(
    repo: Repo,
    name: str,
    number: int,
    content: Content,
    production: Production | None,
    description: str,
) -> dict[str, Any]:
    """The version's record: who, when, which code, run, params, metrics, data and checks."""
    from mlops.pipeline.runs import environment

    run: dict[str, Any] | None = None
    params: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    data: dict[str, str] = {}
    checks: dict[str, Any] = {}
    if production is not None:
        record, maker = production.record, production.stage
        commit, dirty = record.commit, record.dirty
        run = {"id": record.id, "stage": maker.name, "status": record.status}
        run["record"] = record.object_id
        params, data = maker.params, maker.deps
        # The stages that evaluated the model in the same run add their metrics and checks.
        for stage in [maker, *consumers(record, content.path, content.oid)]:
            for file, values in stage.metrics.items():
                metrics.setdefault(file, {}).update(values if isinstance(values, dict) else {})
            summary = checks_summary(stage.checks)
            if summary:
                checks[stage.name] = summary
            if stage is not maker and stage.status not in SUCCEEDED:
                failed = {"passed": False, "counts": {}, "failed": [f"stage {stage.status}"]}
                checks.setdefault(stage.name, {})["after"] = failed
    else:
        env = environment(repo.root)
        commit, dirty = env.commit, env.dirty
    return {
        "schema": SCHEMA,
        "kind": "version",
        "model": name,
        "number": number,
        "content": content.to_dict(),
        "description": description,
        "author": identity(repo.root),
        "time": now(),
        "commit": commit,
        "dirty": dirty,
        "run": run,
        "params": params,
        "metrics": metrics,
        "data": data,
        "checks": checks,
        "nonce": secrets.token_hex(4),
    }
