"""``dvc.yaml`` as ``mlops.yaml``: what has an equivalent is carried over as written, the
rest is listed with its line and left out.

``vars``, ``${...}``, ``foreach``, ``matrix`` and ``frozen`` are mlops's too, and mlops
names the stages they make as DVC does (``train@cnn-0.1``), so dvc.lock's entries apply.
Each stage is expanded by mlops before it is kept: one that uses what mlops cannot
interpolate (a mapping unpacked into a command, a name it does not define) is listed.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.core.yamlio import YamlProblem, parse_yaml_lines
from mlops.dvcimport.dvcfiles import DVC_YAML, Note, is_url
from mlops.errors import InputError, PipelineError
from mlops.pipeline.interpolate import REFERENCE
from mlops.pipeline.schema import (
    OUTPUT_OPTIONS,
    PLOT_OPTIONS,
    Pipeline,
    Reader,
    parse_pipeline,
    workspace_reader,
)

_WHY_WDIR = "DVC reads its vars files from its wdir, a ${...} mlops cannot name them under"
# Copied as they are: mlops reads them as DVC does.
_SAME = (
    "cmd",
    "wdir",
    "deps",
    "params",
    "outs",
    "metrics",
    "plots",
    "desc",
    "always_changed",
    "frozen",
    "vars",
    "matrix",
)


@dataclass(frozen=True)
class Converted:
    """The mlops.yaml document, its parsed pipeline, and what was left out."""

    doc: dict[str, Any]
    pipeline: Pipeline
    notes: tuple[Note, ...]


def convert_pipeline(root: Path) -> Converted:
    """``root/dvc.yaml`` as an mlops pipeline (empty when there is none)."""
    from mlops.core.git import worktree_files

    # mlops has one pipeline file: the pipelines of sub-folders are listed, not merged.
    nested = tuple(
        Note(f"{rel}:1", "the pipeline of a sub-folder", "mlops has one mlops.yaml at the root")
        for rel in worktree_files(root, f"*/{DVC_YAML}")
    )
    converted = _convert_root(root)
    return Converted(converted.doc, converted.pipeline, (*converted.notes, *nested))


def _convert_root(root: Path) -> Converted:
    path = root / DVC_YAML
    if not path.is_file():
        return Converted({}, Pipeline({}, {}), ())
    try:
        doc, lines = parse_yaml_lines(path.read_bytes())
    except YamlProblem as exc:
        raise InputError(exc.located(DVC_YAML)) from None
    if doc is None:
        return Converted({}, Pipeline({}, {}), ())
    if not isinstance(doc, dict) or not isinstance(doc.get("stages", {}), dict):
        raise InputError(f"{DVC_YAML}: expected a mapping with 'stages:'")
    notes: list[Note] = []

    def note(keys: tuple[Any, ...], what: str, why: str) -> None:
        notes.append(Note(f"{DVC_YAML}:{_line(lines, keys)}", what, why))

    for key in doc:
        if key in ("metrics", "params", "artifacts", "datasets"):
            note((key,), f"top-level {key}", "mlops has no such section")
        elif key not in ("stages", "plots", "vars"):
            note((key,), f"top-level {key!r}", "unknown to mlops")
    read = workspace_reader(root)
    top: dict[str, Any] = {}
    if doc.get("vars") is not None:
        top["vars"] = doc["vars"]
        problem = _refused({**top, "stages": {}}, read)
        if problem:
            note(("vars",), "vars", problem)
            top = {}
    stages: dict[str, Any] = {}
    for name, body in (doc.get("stages") or {}).items():
        keys = ("stages", name)
        converted = _stage(str(name), body, keys, note)
        if converted is None:
            continue
        # What mlops would refuse or cannot interpolate is left out with its reason.
        problem = _refused({**top, "stages": {name: converted}}, read)
        if problem:
            note(keys, f"stage {name}", problem)
            continue
        stages[str(name)] = converted
    result: dict[str, Any] = {**top, "stages": stages}
    plots = doc.get("plots")
    if plots:
        if _has_refs(plots):
            note(("plots",), "plots", "uses ${...}, which mlops reads in stages only")
        else:
            result["plots"] = plots
    return Converted(result, parse_pipeline(_dump(result), read=read), tuple(notes))


def _refused(doc: dict[str, Any], read: Reader) -> str:
    """Why mlops refuses ``doc`` once expanded (its params files read), or ''."""
    try:
        parse_pipeline(_dump(doc), read=read)
    except PipelineError as exc:
        # The line is of the document made here: dvc.yaml's line is given instead.
        return exc.message.partition(": ")[2] or exc.message
    return ""


def _stage(name: str, body: Any, keys: tuple[Any, ...], note: Any) -> dict[str, Any] | None:
    """One stage's mlops form, or None (with a note) when it cannot be carried over."""
    if not isinstance(body, dict):
        note(keys, f"stage {name}", "not a mapping")
        return None
    if "foreach" in body:
        template = body.get("do")
        if not isinstance(template, dict):
            note(keys, f"stage {name}", "'foreach' without a 'do:' mapping")
            return None
        converted = _body(name, template, (*keys, "do"), note)
        return None if converted is None else {"foreach": body["foreach"], "do": converted}
    return _body(name, body, keys, note)


def _body(
    name: str, body: dict[str, Any], keys: tuple[Any, ...], note: Any
) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key not in _SAME:
            note((*keys, key), f"{key!r} of stage {name}", "mlops has no such stage key")
            continue
        if key == "deps" and isinstance(value, list):
            value = [d for d in value if not _external(d, name, (*keys, key), note)]
        elif key == "params" and isinstance(value, list):
            value = _params(name, value, (*keys, key), note)
        elif key in ("outs", "metrics", "plots") and isinstance(value, list):
            value = [
                _output(name, key, item, (*keys, key, i), note) for i, item in enumerate(value)
            ]
        elif key == "vars" and isinstance(value, list):
            moved = _vars_from_root(value, body.get("wdir", "."))
            if moved is None:
                note((*keys, key), f"stage {name}", _WHY_WDIR)
                return None
            value = moved
        out[key] = value
    return out


def _vars_from_root(entries: list[Any], wdir: Any) -> list[Any] | None:
    """A stage's ``vars`` with its params files named from the root, as mlops reads them
    (DVC reads them from the stage's wdir); None when that wdir is itself interpolated."""
    files = [e for e in entries if isinstance(e, str)]
    if not files or not isinstance(wdir, str) or posixpath.normpath(wdir) == ".":
        return entries
    if _has_refs(wdir):
        return None
    moved = []
    for entry in entries:
        if isinstance(entry, str):
            file, colon, wanted = entry.partition(":")
            entry = posixpath.normpath(posixpath.join(wdir, file)) + colon + wanted
        moved.append(entry)
    return moved


def _external(dep: Any, stage: str, keys: tuple[Any, ...], note: Any) -> bool:
    if isinstance(dep, str) and is_url(dep):
        note(keys, f"dep {dep} of stage {stage}", "mlops tracks files in the repository only")
        return True
    return False


def _params(stage: str, value: list[Any], keys: tuple[Any, ...], note: Any) -> list[Any]:
    kept = []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            files = {}
            for file, names in item.items():
                if str(file).endswith(".py"):
                    note(
                        (*keys, i),
                        f"params file {file} of stage {stage}",
                        "mlops reads YAML, JSON and TOML params files only",
                    )
                else:
                    files[file] = names
            if files:
                kept.append(files)
        else:
            kept.append(item)
    return kept


def _output(stage: str, field: str, item: Any, keys: tuple[Any, ...], note: Any) -> Any:
    if not isinstance(item, dict) or len(item) != 1:
        return item
    ((path, options),) = item.items()
    if not isinstance(options, dict):
        return item
    allowed = OUTPUT_OPTIONS + (PLOT_OPTIONS if field == "plots" else ())
    kept = {}
    for key, value in options.items():
        if key in allowed:
            kept[key] = value
        else:
            note(
                (*keys, path, key),
                f"option {key!r} of {path} in stage {stage}",
                "mlops has no such output option",
            )
    return {path: kept} if kept else path


def _has_refs(value: Any) -> bool:
    """Whether the strings (or keys) of ``value`` hold a ``${...}`` reference."""
    if isinstance(value, str):
        return any(not m.group(1) for m in REFERENCE.finditer(value))
    if isinstance(value, list):
        return any(_has_refs(item) for item in value)
    if isinstance(value, dict):
        return any(_has_refs(k) or _has_refs(v) for k, v in value.items())
    return False


def _line(lines: dict[tuple[Any, ...], int], keys: tuple[Any, ...]) -> int:
    while keys and keys not in lines:
        keys = keys[:-1]
    return lines.get(keys, 1)


def _dump(doc: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1 << 16)


def pipeline_text(converted: Converted) -> str:
    """mlops.yaml's text: a header naming what was left out, then the document."""
    header = ["# Imported from dvc.yaml by `mlops import-dvc` (dvc.yaml is left as it was)."]
    if converted.notes:
        header.append("# Not imported:")
        header += [f"#   {note}" for note in converted.notes]
    return "\n".join(header) + "\n" + _dump(converted.doc)
