"""Registry records: model versions and alias moves, their JSON form, names and references.

Every record is the JSON body of one annotated Git tag. Its id is the start of
the BLAKE3 digest of its canonical JSON, so the tag name says which record it
holds and a record edited by hand no longer matches its name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from mlops.core.names import name_problem
from mlops.errors import RegistryError
from mlops.storage.content import ContentRef
from mlops.storage.hashing import hash_bytes, is_valid_oid

SCHEMA = 1
ID_LENGTH = 10
TAG_PREFIX = "model/"
REF_PREFIX = "refs/tags/" + TAG_PREFIX
_VERSION_TAIL = re.compile(rf"v([1-9][0-9]*)-([0-9a-f]{{{ID_LENGTH}}})")
_EVENT_TAIL = re.compile(rf"([1-9][0-9]*)-([0-9a-f]{{{ID_LENGTH}}})")
_VERSION_REF = re.compile(rf"v?([1-9][0-9]*)(?:-([0-9a-f]{{4,{ID_LENGTH}}}))?")


def check_name(name: str, what: str) -> str:
    """``name`` if it can be a model or alias name (one safe Git ref component)."""
    problem = name_problem(name, what)
    if problem:
        raise RegistryError(problem)
    return name


def record_id(body: dict[str, Any]) -> str:
    """The id of a record: the start of the digest of its canonical JSON."""
    return hash_bytes(canonical(body))[:ID_LENGTH]


def canonical(body: dict[str, Any]) -> bytes:
    """A record's stored JSON: sorted keys, no spaces."""
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def version_tag(model: str, number: int, rid: str) -> str:
    """The tag name of a version: ``model/NAME/vN-ID``."""
    return f"{TAG_PREFIX}{model}/v{number}-{rid}"


def event_tag(model: str, alias: str, seq: int, rid: str) -> str:
    """The tag name of an alias move: ``model/NAME/@ALIAS/SEQ-ID``."""
    return f"{TAG_PREFIX}{model}/@{alias}/{seq}-{rid}"


@dataclass(frozen=True)
class Content(ContentRef):
    """A version's content (``path``: where it was registered from, relative to the
    repository when inside it)."""

    def to_dict(self) -> dict[str, Any]:
        return {"hash": self.oid, "size": self.size, "files": self.files, "path": self.path}


@dataclass(frozen=True)
class RunInfo:
    """The run and stage that produced a version; ``record`` is the run record's object id."""

    id: str
    stage: str
    status: str
    record: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "stage": self.stage, "status": self.status, "record": self.record}


@dataclass(frozen=True)
class ModelVersion:
    """One immutable version of a model.

    ``number`` is the one its author saw (one more than the highest known then);
    two people registering at the same time can both get the same number, so
    ``label`` adds the id only when the number is shared.
    """

    model: str
    number: int
    id: str
    tag: str
    content: Content
    author: str
    time: str
    commit: str | None
    dirty: bool
    description: str = ""
    run: RunInfo | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)  # file -> dotted key -> value
    data: dict[str, str] = field(default_factory=dict)  # path -> hash of the training inputs
    checks: dict[str, Any] = field(default_factory=dict)  # stage -> phase -> summary
    signature: dict[str, Any] = field(default_factory=dict)  # features and their types
    format: dict[str, Any] = field(default_factory=dict)  # file format, skops's trusted types
    label: str = ""
    target: str = ""  # the Git object the tag points at (the commit, when there is one)

    @property
    def ref(self) -> str:
        """How to name this version on the command line: ``NAME:LABEL``."""
        return f"{self.model}:{self.label or self.number}"

    def checks_state(self) -> tuple[str, list[str]]:
        """("passed" | "failed" | "none", why): the verdict of the recorded ``after`` checks."""
        problems, seen = [], False
        for stage, phases in sorted(self.checks.items()):
            summary = phases.get("after") if isinstance(phases, dict) else None
            if summary is None:
                continue
            seen = True
            if summary.get("passed") is not True:
                failed = summary.get("failed") or ["no passing result recorded"]
                problems.append(f"stage {stage!r}: {failed[0]}")
        if problems:
            return "failed", problems
        return ("passed" if seen else "none"), []

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.label or str(self.number),
            "number": self.number,
            "id": self.id,
            "tag": self.tag,
            "content": self.content.to_dict(),
            "description": self.description,
            "author": self.author,
            "time": self.time,
            "commit": self.commit,
            "dirty": self.dirty,
            "run": self.run.to_dict() if self.run else None,
            "params": self.params,
            "metrics": self.metrics,
            "data": self.data,
            "checks": self.checks,
            "checks_state": self.checks_state()[0],
            "signature": self.signature,
            "format": self.format,
        }


@dataclass(frozen=True)
class AliasEvent:
    """One move of an alias: a promotion or a rollback. The newest event names the holder."""

    model: str
    alias: str
    seq: int
    id: str
    tag: str
    action: str  # "promote" or "rollback"
    version: str  # id of the version that holds the alias from now on
    previous: str | None  # id of the version that held it before
    reason: str
    forced: bool
    gate: dict[str, Any]
    author: str
    time: str

    @property
    def order(self) -> tuple[int, str, str]:
        """Sequence first (it follows causality), then time, then id (a fixed tie-break)."""
        return (self.seq, self.time, self.id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "alias": self.alias,
            "seq": self.seq,
            "id": self.id,
            "tag": self.tag,
            "action": self.action,
            "version": self.version,
            "previous": self.previous,
            "reason": self.reason,
            "forced": self.forced,
            "gate": self.gate,
            "author": self.author,
            "time": self.time,
        }


# Reading tags ------------------------------------------------------------------------


def invalid(tag: str, problem: str) -> RegistryError:
    """The error for a registry tag that is not in the form mlops writes."""
    return RegistryError(
        f"registry tag {tag}: {problem}; it was edited by hand or not made by mlops: "
        f"restore it with `git fetch --force origin tag {tag}` or delete it with `git tag -d {tag}`"
    )


def parse_tag(tag: str, objecttype: str, target: str, body: str) -> ModelVersion | AliasEvent:
    """The record held by the registry tag ``tag`` (a name below ``model/``)."""
    parts = tag.split("/")
    if objecttype != "tag":
        raise invalid(tag, "a lightweight tag, not an annotated tag holding a record")
    if len(parts) == 3 and (m := _VERSION_TAIL.fullmatch(parts[2])):
        kind, number, rid = "version", int(m.group(1)), m.group(2)
    elif len(parts) == 4 and parts[2].startswith("@") and (m := _EVENT_TAIL.fullmatch(parts[3])):
        kind, number, rid = "alias", int(m.group(1)), m.group(2)
    else:
        raise invalid(tag, "not a registry tag name (model/NAME/vN-ID or model/NAME/@ALIAS/N-ID)")
    try:
        data = json.loads(body)
    except ValueError:
        raise invalid(tag, "its message does not hold a JSON record") from None
    if not isinstance(data, dict):
        raise invalid(tag, "its record is not a JSON object")
    if record_id(data) != rid:
        raise invalid(tag, f"its record does not match the id {rid} in its name")
    reader = _Reader(tag, data)
    if reader.get("schema", int) != SCHEMA:
        raise invalid(tag, f"unknown record schema {data.get('schema')!r}")
    if reader.get("kind", str) != kind or reader.get("model", str) != parts[1]:
        raise invalid(tag, "its record's kind or model does not match its name")
    if kind == "version":
        return replace(_version(reader, tag, number, rid), target=target)
    return _event(reader, tag, parts[2][1:], number, rid)


class _Reader:
    """Typed access to a record's fields; a wrong or missing field names the tag."""

    def __init__(self, tag: str, data: dict[str, Any]) -> None:
        self.tag = tag
        self.data = data

    def get(self, key: str, kind: type | tuple[type, ...], optional: bool = False) -> Any:
        value = self.data.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            raise invalid(self.tag, f"field {key!r} is missing or has the wrong type")
        return value


def _version(reader: _Reader, tag: str, number: int, rid: str) -> ModelVersion:
    if reader.get("number", int) != number:
        raise invalid(tag, "its record's number does not match its name")
    raw = _Reader(tag, reader.get("content", dict))
    content = Content(
        raw.get("path", str), raw.get("hash", str), raw.get("size", int), raw.get("files", int)
    )
    if not is_valid_oid(content.oid):
        raise invalid(tag, f"content hash {content.oid!r} is not an object id")
    run_data = reader.get("run", dict, optional=True)
    run = None
    if run_data is not None:
        r = _Reader(tag, run_data)
        record = r.get("record", str, optional=True) or ""
        run = RunInfo(r.get("id", str), r.get("stage", str), r.get("status", str), record)
    data = reader.get("data", dict)
    if not all(isinstance(k, str) and is_valid_oid(v) for k, v in data.items()):
        raise invalid(tag, "field 'data' must map paths to object ids")
    return ModelVersion(
        model=reader.get("model", str),
        number=number,
        id=rid,
        tag=tag,
        content=content,
        author=reader.get("author", str),
        time=reader.get("time", str),
        commit=reader.get("commit", str, optional=True),
        dirty=reader.get("dirty", bool),
        description=reader.get("description", str),
        run=run,
        params=reader.get("params", dict),
        metrics=reader.get("metrics", dict),
        data=data,
        checks=reader.get("checks", dict),
        signature=reader.get("signature", dict, optional=True) or {},
        format=reader.get("format", dict, optional=True) or {},
    )


def _event(reader: _Reader, tag: str, alias: str, seq: int, rid: str) -> AliasEvent:
    if reader.get("alias", str) != alias or reader.get("seq", int) != seq:
        raise invalid(tag, "its record's alias or sequence does not match its name")
    action = reader.get("action", str)
    if action not in ("promote", "rollback"):
        raise invalid(tag, f"unknown action {action!r}")
    return AliasEvent(
        model=reader.get("model", str),
        alias=alias,
        seq=seq,
        id=rid,
        tag=tag,
        action=action,
        version=reader.get("version", str),
        previous=reader.get("previous", str, optional=True),
        reason=reader.get("reason", str),
        forced=reader.get("forced", bool),
        gate=reader.get("gate", dict),
        author=reader.get("author", str),
        time=reader.get("time", str),
    )


# One model's registry ----------------------------------------------------------------


@dataclass(frozen=True)
class ModelRegistry:
    """Every version and alias move of one model, as read from the tags."""

    name: str
    versions: tuple[ModelVersion, ...]  # by number, then time, then id
    events: tuple[AliasEvent, ...]  # by seq, then time, then id (per alias)

    def by_id(self, rid: str) -> ModelVersion:
        for version in self.versions:
            if version.id == rid:
                return version
        raise RegistryError(f"model {self.name!r} has no version with id {rid}")

    @property
    def latest(self) -> ModelVersion:
        return self.versions[-1]

    def aliases(self) -> dict[str, ModelVersion]:
        """Each alias and the version that holds it now (its newest event's)."""
        holders: dict[str, ModelVersion] = {}
        for event in self.events:
            holders[event.alias] = self.by_id(event.version)
        return dict(sorted(holders.items()))

    def alias_events(self, alias: str) -> list[AliasEvent]:
        return [e for e in self.events if e.alias == alias]

    def holder(self, alias: str) -> ModelVersion | None:
        events = self.alias_events(alias)
        return self.by_id(events[-1].version) if events else None

    def previous_holder(self, alias: str) -> ModelVersion | None:
        """Where a rollback of ``alias`` goes: the holder before the last promotion in effect.

        Promotions stack up and rollbacks pop them, so repeated rollbacks walk back
        through history instead of swapping between two versions.
        """
        stack: list[str] = []
        for event in self.alias_events(alias):
            if event.action == "rollback":
                while stack and stack[-1] != event.version:
                    stack.pop()
                if not stack:
                    stack.append(event.version)
            else:
                stack.append(event.version)
        return self.by_id(stack[-2]) if len(stack) >= 2 else None

    def held_by(self, version: ModelVersion) -> list[str]:
        return [alias for alias, holder in self.aliases().items() if holder.id == version.id]

    def resolve(self, spec: str) -> ModelVersion:
        """The version named by ``N``, ``vN``, ``N-ID`` (any id prefix of 4+) or ``latest``."""
        if spec == "latest":
            return self.latest
        m = _VERSION_REF.fullmatch(spec)
        if m is None:
            raise RegistryError(
                f"invalid version {spec!r} of model {self.name!r}: use a number (3), "
                "a number with an id (3-1a2b3c4d5e) or 'latest'"
            )
        number, prefix = int(m.group(1)), m.group(2) or ""
        found = [v for v in self.versions if v.number == number and v.id.startswith(prefix)]
        if not found:
            known = ", ".join(v.label for v in self.versions[-10:])
            raise RegistryError(f"model {self.name!r} has no version {spec} (versions: {known})")
        if len(found) > 1:
            names = ", ".join(v.ref for v in found)
            raise RegistryError(
                f"{self.name}:{spec} is ambiguous: version {number} was registered "
                f"{len(found)} times at once (on different clones); name one of {names}"
            )
        return found[0]

    def resolve_alias(self, alias: str) -> ModelVersion:
        holder = self.holder(alias)
        if holder is None:
            known = ", ".join(self.aliases()) or "none yet"
            raise RegistryError(f"model {self.name!r} has no alias {alias!r} (aliases: {known})")
        return holder


def build_registry(name: str, records: list[ModelVersion | AliasEvent]) -> ModelRegistry:
    """Order a model's records and give versions whose number is shared a longer label."""
    versions = sorted(
        (r for r in records if isinstance(r, ModelVersion)), key=lambda v: (v.number, v.time, v.id)
    )
    counts: dict[int, int] = {}
    for v in versions:
        counts[v.number] = counts.get(v.number, 0) + 1
    labelled = tuple(
        _relabel(v, str(v.number) if counts[v.number] == 1 else f"{v.number}-{v.id}")
        for v in versions
    )
    events = sorted(
        (r for r in records if isinstance(r, AliasEvent)), key=lambda e: (e.alias, e.order)
    )
    known = {v.id for v in labelled}
    for event in events:
        for rid in (event.version, event.previous):
            if rid is not None and rid not in known:
                raise RegistryError(
                    f"registry tag {event.tag} names version {rid} of {name!r}, which is not "
                    "in this repository: run `git fetch --tags`"
                )
    return ModelRegistry(name, labelled, tuple(events))


def _relabel(version: ModelVersion, label: str) -> ModelVersion:
    return replace(version, label=label)


def split_reference(text: str) -> tuple[str, str | None, str | None]:
    """``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS`` -> (name, version, alias)."""
    name, version, alias = text, None, None
    if "@" in text:
        name, _, alias = text.partition("@")
        check_name(alias, "alias")
    elif ":" in text:
        name, _, version = text.partition(":")
        if not version:
            raise RegistryError(f"invalid model reference {text!r}: a version must follow ':'")
    check_name(name, "model")
    return name, version, alias
