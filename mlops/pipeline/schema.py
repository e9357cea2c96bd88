"""``mlops.yaml``: the ``stages:`` map, validated and loaded into typed records.

Only ``stages:`` is validated here, a stage's ``checks:`` (the suite names it runs) and
``register:`` (the model it registers) included, so that ``run``, ``run --dry-run`` and
``status`` refuse a bad one before anything runs. The other top-level sections
(``checks:``, ``include:``, ``monitor:``, ``models:``, ``plots:``) belong to their own
modules and are kept raw; ``mlops.core.sections`` gives each its lines.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from mlops.core.names import name_problem
from mlops.core.sections import Invalid, parse_document
from mlops.core.yamlio import (
    Lines,
    YamlProblem,
    key_hint,
    line_at,
    parse_yaml_lines,
    parsed_cache_dir,
)
from mlops.errors import PipelineError
from mlops.pipeline import PIPELINE_FILE
from mlops.pipeline.interpolate import (
    Namespace,
    Substitution,
    foreach_names,
    matrix_items,
)

DEFAULT_PARAMS_FILE = "params.yaml"
TOP_KEYS = ("vars", "stages", "checks", "include", "monitor", "models", "plots")
STAGE_KEYS = (
    "cmd",
    "deps",
    "params",
    "outs",
    "metrics",
    "plots",
    "wdir",
    "env",
    "desc",
    "always_changed",
    "frozen",
    "checks",
    "register",
    "resources",
    "vars",
    "matrix",
)
FOREACH_KEYS = ("foreach", "do")
CHECKS_KEYS = ("before", "after")
# What a stage may ask of the worker that runs it (``mlops run --executor dask``).
RESOURCE_KEYS = ("cpus", "memory", "gpus")
_MEMORY = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(i?)B?\s*", re.IGNORECASE)
OUTPUT_OPTIONS = ("cache", "persist")
# How a plot file is drawn (DVC's names): text options, and ``header`` (a CSV's first row).
PLOT_OPTIONS = ("x", "y", "template", "title", "x_label", "y_label", "header")
REGISTER_KEYS = ("name", "path", "promote", "description")


class OutputKind(StrEnum):
    """What a stage's output is, by the field that declares it."""

    OUT = "out"
    METRIC = "metric"
    PLOT = "plot"


# ``outs`` are cached by default; metrics and plots are small files meant for Git.
OUTPUT_KINDS = {"outs": OutputKind.OUT, "metrics": OutputKind.METRIC, "plots": OutputKind.PLOT}

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(@[^\s/:]+)?$")
# Reads a file relative to the repository root (at some commit); None when it is absent.
Reader = Callable[[str], bytes | None]


@dataclass(frozen=True)
class Output:
    """A file or folder a stage produces: an out, a metric or a plot."""

    path: str  # relative to the repository root, POSIX
    kind: OutputKind
    cache: bool  # stored in the object store (and ignored by Git)
    persist: bool = False  # kept (not deleted) before the stage runs
    plot: tuple[tuple[str, Any], ...] = ()  # PLOT_OPTIONS given for a plot, in order


@dataclass(frozen=True)
class ParamsRef:
    """Parameters a stage reads: some dotted keys of a file, or the whole file."""

    file: str  # relative to the repository root
    keys: tuple[str, ...] | None  # None: every key of the file


@dataclass(frozen=True)
class ModelRegistration:
    """A stage's ``register:``: the model its output ``path`` becomes a version of once
    the run succeeds, and the alias it is promoted to."""

    name: str
    path: str  # an output of the stage, relative to the repository root
    promote: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline, after ``foreach`` expansion."""

    name: str
    cmd: tuple[str, ...]
    deps: tuple[str, ...] = ()
    params: tuple[ParamsRef, ...] = ()
    outputs: tuple[Output, ...] = ()
    wdir: str = "."
    env: tuple[tuple[str, str], ...] = ()
    desc: str = ""
    always_changed: bool = False
    frozen: bool = False  # never run again: its lock entry stands
    checks_before: tuple[str, ...] = ()  # suite names run on the inputs
    checks_after: tuple[str, ...] = ()  # suite names run on the outputs
    register: ModelRegistration | None = None
    group: str | None = None  # the foreach or matrix definition this stage came from
    # The params only its ${...} references read (in ``params`` too, not declared there).
    interpolated: tuple[ParamsRef, ...] = ()
    # ``resources:`` as (name, amount) pairs; memory in bytes. Where it runs, not what it makes.
    resources: tuple[tuple[str, float], ...] = ()

    @property
    def metrics(self) -> tuple[Output, ...]:
        return tuple(o for o in self.outputs if o.kind == OutputKind.METRIC)


@dataclass(frozen=True)
class Pipeline:
    """The stages of ``mlops.yaml`` in declaration order, and its other sections raw."""

    stages: dict[str, Stage]
    sections: dict[str, Any]  # checks:, include:, monitor: as written
    where: str = PIPELINE_FILE
    lines: Lines = field(default_factory=dict, compare=False)  # of the YAML's nodes

    def at(self, stage: Stage, *keys: Any) -> str:
        """``where:LINE`` of ``keys`` inside ``stage``'s definition, for messages."""
        base = ("stages", stage.group, "do") if stage.group else ("stages", stage.name)
        line = line_at(self.lines, (*base, *keys))
        return f"{self.where}:{line}" if line else self.where

    def at_output(self, stage: Stage, out: Output) -> str:
        """``where:LINE`` of the entry declaring ``out`` in ``stage``."""
        field_name = next(f for f, kind in OUTPUT_KINDS.items() if kind == out.kind)
        index = [o for o in stage.outputs if o.kind == out.kind].index(out)
        return self.at(stage, field_name, index)


def load_pipeline(root: Path, required: bool = True) -> Pipeline:
    """Load ``root/mlops.yaml``; without ``required`` a missing file is an empty pipeline."""
    try:
        data = (root / PIPELINE_FILE).read_bytes()
    except FileNotFoundError:
        if required:
            raise PipelineError(
                f"no {PIPELINE_FILE} in {root}: declare the pipeline's stages there first"
            ) from None
        return Pipeline({}, {})
    return parse_pipeline(data, PIPELINE_FILE, parsed_cache_dir(root), workspace_reader(root))


def workspace_reader(root: Path) -> Reader:
    """Reads files of the work tree (for ``vars:`` and params files)."""

    def read(rel: str) -> bytes | None:
        try:
            return (root / rel).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    return read


def parse_pipeline(
    text: str | bytes,
    where: str = PIPELINE_FILE,
    cache: Path | None = None,
    read: Reader | None = None,
) -> Pipeline:
    """Validate a pipeline file's YAML; ``where`` names it in messages.

    ``cache`` is a folder of already parsed documents (see ``core.yamlio.parsed_cache_dir``);
    ``read`` reads the params files that ``${...}`` references name (without it, none).
    """
    data = text.encode() if isinstance(text, str) else text
    document = parse_document(data, where, PipelineError, cache)
    try:
        pipeline = _pipeline(document.data, where, read or (lambda rel: None), cache)
    except Invalid as exc:  # Unresolved ${...} references too
        raise document.error(exc, PipelineError) from None
    return replace(pipeline, lines=document.lines)


def _pipeline(doc: Any, where: str, read: Reader, cache: Path | None) -> Pipeline:
    if doc is None:
        return Pipeline({}, {}, where)
    if not isinstance(doc, dict):
        raise Invalid((), "expected a mapping with a 'stages:' key at the top level")
    for key in doc:
        if key not in TOP_KEYS:
            raise Invalid((key,), f"unknown top-level key {key!r}{key_hint(key, TOP_KEYS)}")
    raw_stages = doc.get("stages") or {}
    if not isinstance(raw_stages, dict):
        raise Invalid(("stages",), "'stages' must be a mapping of stage names to definitions")
    entries = _vars_entries(doc.get("vars"), ("vars",))
    loaded: list[Namespace] = []

    def top() -> Namespace:
        # params.yaml, then vars: in order; read on the first reference that needs them.
        if not loaded:
            namespace = Namespace()
            _load_vars(namespace, [DEFAULT_PARAMS_FILE], ("vars",), read, cache, optional=True)
            _load_vars(namespace, entries, ("vars",), read, cache)
            loaded.append(namespace)
        return loaded[0]

    stages: dict[str, Stage] = {}
    for name, body in raw_stages.items():
        for stage in _definition(name, body, Namespace(load=top), read, cache):
            if stage.name in stages:
                origin = f" (from the foreach of {stage.group!r})" if stage.group else ""
                raise Invalid(("stages", name), f"stage {stage.name!r} is defined twice{origin}")
            stages[stage.name] = stage
    sections = {k: v for k, v in doc.items() if k not in ("stages", "vars")}
    return Pipeline(stages, sections, where)


def _vars_entries(raw: Any, keys: tuple[Any, ...]) -> list[Any]:
    """The entries of a ``vars:`` list: params file names (``file`` or ``file:key,key``)
    and mappings of values."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise Invalid(keys, f"'vars' must be a list of params files and mappings, not {_kind(raw)}")
    for i, entry in enumerate(raw):
        if not (isinstance(entry, dict) or (isinstance(entry, str) and entry)):
            raise Invalid(
                (*keys, i), f"'vars' entries are params files or mappings, not {_kind(entry)}"
            )
    return raw


def _load_vars(
    namespace: Namespace,
    entries: list[Any],
    keys: tuple[Any, ...],
    read: Reader,
    cache: Path | None,
    optional: bool = False,
) -> None:
    """Add each entry's values to ``namespace`` (later entries win), remembering which
    params file each name came from."""
    from mlops.pipeline.params import parse_params

    for i, entry in enumerate(entries):
        if isinstance(entry, dict):
            for name, value in entry.items():
                namespace.values[str(name)] = value
                namespace.files.pop(str(name), None)
            continue
        file, _, wanted = entry.partition(":")
        data = read(file)
        if data is None:
            if optional:
                continue
            raise Invalid((*keys, i), f"vars: the params file {file!r} does not exist")
        try:
            doc = parse_params(data, file, cache)
        except PipelineError as exc:
            raise Invalid((*keys, i), f"vars: {exc.message}") from None
        names = [n.strip() for n in wanted.split(",") if n.strip()] if wanted else list(doc)
        for name in names:
            if name not in doc:
                raise Invalid((*keys, i), f"vars: {file!r} has no key {name!r}")
            namespace.values[str(name)] = doc[name]
            namespace.files[str(name)] = file


def _definition(
    name: Any, body: Any, namespace: Namespace, read: Reader, cache: Path | None
) -> Iterator[Stage]:
    keys: tuple[Any, ...] = ("stages", name)
    if not isinstance(name, str) or not _NAME.match(name) or "@" in name:
        raise Invalid(
            keys,
            f"invalid stage name {name!r}: use letters, digits, '_', '-' and '.'",
        )
    if not isinstance(body, dict):
        raise Invalid(keys, f"stage {name!r} must be a mapping, not {_kind(body)}")
    if "foreach" not in body:
        if "vars" in body:
            own, where = Namespace(), (*keys, "vars")
            _load_vars(own, _vars_entries(body["vars"], where), where, read, cache)
            namespace = namespace.child(own.values, own.files)
        own_body = {k: v for k, v in body.items() if k not in ("vars", "matrix")}
        if "matrix" in body:
            yield from _matrix(name, body["matrix"], own_body, namespace, keys)
            return
        yield _substituted(name, own_body, keys, Substitution(namespace, f"stage {name!r}"))
        return
    for key in body:
        if key not in FOREACH_KEYS:
            raise Invalid(
                (*keys, key),
                f"stage {name!r}: unknown key {key!r} next to 'foreach'"
                " (put the stage's definition under 'do:')",
            )
    template = body.get("do")
    if not isinstance(template, dict):
        raise Invalid(keys, f"stage {name!r}: 'foreach' needs a 'do:' mapping")
    if "matrix" in template:
        raise Invalid(
            (*keys, "do", "matrix"), f"stage {name!r}: 'matrix' cannot be inside 'foreach'"
        )
    if "vars" in template:  # the same for every item, which comes first
        own, where = Namespace(), (*keys, "do", "vars")
        _load_vars(own, _vars_entries(template["vars"], where), where, read, cache)
        namespace = namespace.child(own.values, own.files)
        template = {k: v for k, v in template.items() if k != "vars"}
    items = Substitution(namespace, f"stage {name!r}").value(body["foreach"], (*keys, "foreach"))
    pairs: list[tuple[str, Any, Any]]
    if isinstance(items, list):
        pairs = list(zip(foreach_names(items), [None] * len(items), items, strict=True))
    elif isinstance(items, dict):
        pairs = list(zip(foreach_names(items), items, items.values(), strict=True))
    else:
        raise Invalid(
            (*keys, "foreach"),
            f"stage {name!r}: field 'foreach' must be a list or a mapping, not {_kind(items)}",
        )
    for suffix, key, item in pairs:
        full = f"{name}@{suffix}"
        if not _NAME.match(full):
            raise Invalid(
                (*keys, "foreach"), f"stage {name!r}: foreach item {suffix!r} makes a bad name"
            )
        if isinstance(items, dict):
            scope = namespace.child({"item": item, "key": key})
        else:
            scope = namespace.child(
                {"item": item}, key="${key} is only defined when foreach is a mapping"
            )
        substitution = Substitution(scope, f"stage {full!r}")
        yield _substituted(full, template, (*keys, "do"), substitution, group=name)


def _matrix(
    name: str, raw: Any, template: dict[str, Any], namespace: Namespace, keys: tuple[Any, ...]
) -> Iterator[Stage]:
    """One stage per combination of the ``matrix:`` values: ``${item.KEY}`` names a value,
    ``${key}`` the combination's name suffix."""
    where = (*keys, "matrix")
    matrix = Substitution(namespace, f"stage {name!r}").value(raw, where)
    if not isinstance(matrix, dict) or not matrix:
        raise Invalid(where, f"stage {name!r}: 'matrix' must be a mapping of names to lists")
    for key, values in matrix.items():
        if not isinstance(values, list) or not values:
            raise Invalid(
                (*where, key),
                f"stage {name!r}: matrix {key!r} must be a non-empty list, not {_kind(values)}",
            )
    for suffix, item in matrix_items(matrix):
        full = f"{name}@{suffix}"
        if not _NAME.match(full):
            raise Invalid(where, f"stage {name!r}: matrix item {suffix!r} makes a bad name")
        # ${key}: the name suffix, as DVC has it (`cnn-0.1`).
        scope = namespace.child({"item": item, "key": suffix})
        substitution = Substitution(scope, f"stage {full!r}")
        yield _substituted(full, template, keys, substitution, group=name)


def _substituted(
    name: str,
    template: dict[str, Any],
    keys: tuple[Any, ...],
    substitution: Substitution,
    group: str | None = None,
) -> Stage:
    """The stage ``template`` makes once its references are replaced; the params files'
    keys they read become params of the stage, so that a changed value makes it stale."""
    stage = _stage(name, substitution.value(template, keys), keys, group)
    if not substitution.used:
        return stage
    wanted: dict[str, tuple[str, ...] | None] = {ref.file: ref.keys for ref in stage.params}
    implicit: list[ParamsRef] = []
    for file, used in substitution.used.items():
        if file in wanted and wanted[file] is None:
            continue  # the whole file is a param already
        declared = wanted.get(file) or ()
        implicit.append(ParamsRef(file, tuple(k for k in used if k not in declared)))
        wanted[file] = tuple(dict.fromkeys([*declared, *used]))
    return replace(
        stage,
        params=tuple(ParamsRef(f, k) for f, k in wanted.items()),
        interpolated=tuple(ref for ref in implicit if ref.keys),
    )


def _stage(
    name: str, body: dict[str, Any], keys: tuple[Any, ...], group: str | None = None
) -> Stage:
    for key in body:
        if key not in STAGE_KEYS:
            raise Invalid(
                (*keys, key), f"stage {name!r}: unknown key {key!r}{key_hint(key, STAGE_KEYS)}"
            )
    check = _Checker(name, keys)
    if "cmd" not in body:
        raise Invalid(keys, f"stage {name!r} has no 'cmd'")
    wdir = check.path(".", body.get("wdir", "."), "wdir", allow_root=True)
    outputs: list[Output] = []
    for field_name, kind in OUTPUT_KINDS.items():
        outputs.extend(check.outputs(wdir, body.get(field_name), field_name, kind))
    seen: set[str] = set()
    for out in outputs:
        if out.path in seen:
            raise Invalid(keys, f"stage {name!r} declares the output {out.path!r} twice")
        seen.add(out.path)
    raw_checks = body.get("checks") or {}
    if not isinstance(raw_checks, dict):
        raise check.wrong("checks", raw_checks, "a mapping with 'before' and/or 'after'")
    for key in raw_checks:
        if key not in CHECKS_KEYS:
            raise Invalid(
                (*keys, "checks", key),
                f"stage {name!r}: unknown key {key!r} in 'checks'{key_hint(key, CHECKS_KEYS)}",
            )
    before, after = (check.suite_names(raw_checks.get(phase), phase) for phase in CHECKS_KEYS)
    register = check.registration(body.get("register"), wdir, outputs)
    return Stage(
        name=name,
        cmd=check.cmd(body["cmd"]),
        deps=tuple(
            check.path(wdir, d, "deps", index=i)
            for i, d in enumerate(check.str_list(body.get("deps"), "deps"))
        ),
        params=check.params(wdir, body.get("params")),
        outputs=tuple(outputs),
        wdir=wdir,
        env=check.env(body.get("env")),
        desc=check.text(body.get("desc", ""), "desc"),
        always_changed=check.flag(body.get("always_changed", False), "always_changed"),
        frozen=check.flag(body.get("frozen", False), "frozen"),
        checks_before=before,
        checks_after=after,
        register=register,
        group=group,
        resources=check.resources(body.get("resources")),
    )


class _Checker:
    """Type checks of one stage's fields, each error naming the stage and the field."""

    def __init__(self, stage: str, keys: tuple[Any, ...]) -> None:
        self.stage, self.keys = stage, keys

    def wrong(
        self, field_name: str, value: Any, expected: str, index: int | None = None
    ) -> Invalid:
        keys = (*self.keys, field_name) if index is None else (*self.keys, field_name, index)
        return Invalid(
            keys,
            f"stage {self.stage!r}: field {field_name!r} must be {expected}, not {_kind(value)}",
        )

    def cmd(self, value: Any) -> tuple[str, ...]:
        if isinstance(value, str) and value.strip():
            return (value,)
        if (
            isinstance(value, list)
            and value
            and all(isinstance(v, str) and v.strip() for v in value)
        ):
            return tuple(value)
        raise self.wrong("cmd", value, "a command string or a list of command strings")

    def str_list(self, value: Any, field_name: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.wrong(field_name, value, "a list of paths")
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise self.wrong(field_name, item, "a list of paths", i)
        return value

    def path(
        self,
        base: str,
        raw: Any,
        field_name: str,
        index: int | None = None,
        allow_root: bool = False,
    ) -> str:
        if not isinstance(raw, str) or not raw:
            raise self.wrong(field_name, raw, "a path", index)
        keys = (*self.keys, field_name) if index is None else (*self.keys, field_name, index)
        if raw.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", raw):
            raise Invalid(
                keys,
                f"stage {self.stage!r}: {field_name} path {raw!r} must be relative to the "
                "repository",
            )
        path = posixpath.normpath(posixpath.join(base, raw))
        if path == ".." or path.startswith("../"):
            raise Invalid(
                keys, f"stage {self.stage!r}: {field_name} path {raw!r} is outside the repository"
            )
        if path == "." and not allow_root:
            raise Invalid(
                keys,
                f"stage {self.stage!r}: {field_name} path {raw!r} names the whole repository",
            )
        if path.split("/")[0] in (".git", ".mlops"):
            raise Invalid(
                keys,
                f"stage {self.stage!r}: {field_name} path {raw!r} is inside {path.split('/')[0]}/",
            )
        return path

    def outputs(self, wdir: str, value: Any, field_name: str, kind: OutputKind) -> list[Output]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.wrong(field_name, value, "a list of paths")
        found = []
        for i, item in enumerate(value):
            options: Any
            if isinstance(item, str):
                raw, options = item, {}
            elif isinstance(item, dict) and len(item) == 1:
                ((raw, options),) = item.items()
                options = {} if options is None else options
                if not isinstance(options, dict):
                    raise self.wrong(field_name, options, "a mapping of cache/persist options", i)
            else:
                raise self.wrong(
                    field_name, item, "a list of paths or {path: {cache: ..., persist: ...}}", i
                )
            allowed = OUTPUT_OPTIONS + (PLOT_OPTIONS if kind == OutputKind.PLOT else ())
            plot: list[tuple[str, Any]] = []
            for key, flag in options.items():
                if key not in allowed:
                    raise Invalid(
                        (*self.keys, field_name, i),
                        f"stage {self.stage!r}: unknown option {key!r} for {raw!r} in "
                        f"{field_name!r}{key_hint(key, allowed)}",
                    )
                if key in PLOT_OPTIONS and key != "header":
                    if not isinstance(flag, str) or not flag:
                        raise self.wrong(f"{field_name}.{raw}.{key}", flag, "a string")
                    plot.append((key, flag))
                elif not isinstance(flag, bool):
                    raise self.wrong(f"{field_name}.{raw}.{key}", flag, "true or false")
                elif key == "header":
                    plot.append((key, flag))
            path = self.path(wdir, raw, field_name, i)
            cache = options.get("cache", kind == OutputKind.OUT)
            found.append(Output(path, kind, cache, options.get("persist", False), tuple(plot)))
        return found

    def params(self, wdir: str, value: Any) -> tuple[ParamsRef, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.wrong("params", value, "a list of keys or {file: [keys]}")
        wanted: dict[str, list[str] | None] = {}
        default = self.path(wdir, DEFAULT_PARAMS_FILE, "params")
        for i, item in enumerate(value):
            if isinstance(item, str) and item:
                keys = wanted.setdefault(default, [])
                if keys is not None:
                    keys.append(item)
                continue
            if not isinstance(item, dict):
                raise self.wrong("params", item, "a key or {file: [keys]}", i)
            for raw_file, raw_keys in item.items():
                file = self.path(wdir, raw_file, "params", i)
                if raw_keys is None or raw_keys == []:
                    wanted[file] = None  # the whole file
                    continue
                if not isinstance(raw_keys, list) or not all(
                    isinstance(k, str) and k for k in raw_keys
                ):
                    raise self.wrong(f"params.{raw_file}", raw_keys, "a list of keys", i)
                keys = wanted.setdefault(file, [])
                if keys is not None:
                    keys.extend(raw_keys)
        return tuple(
            ParamsRef(file, None if keys is None else tuple(dict.fromkeys(keys)))
            for file, keys in wanted.items()
        )

    def env(self, value: Any) -> tuple[tuple[str, str], ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise self.wrong("env", value, "a mapping of variable names to values")
        pairs = []
        for key, raw in value.items():
            if not isinstance(key, str) or not key or not _is_scalar(raw) or raw is None:
                raise self.wrong(f"env.{key}", raw, "a string or number")
            text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
            pairs.append((key, text))
        return tuple(pairs)

    def text(self, value: Any, field_name: str) -> str:
        if not isinstance(value, str):
            raise self.wrong(field_name, value, "a string")
        return value

    def resources(self, value: Any) -> tuple[tuple[str, float], ...]:
        """``resources: {cpus: 2, memory: 8GB, gpus: 1}`` as sorted (name, amount) pairs."""
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise self.wrong("resources", value, "a mapping of cpus, memory and gpus")
        found = []
        for key, raw in value.items():
            if key not in RESOURCE_KEYS:
                raise Invalid(
                    (*self.keys, "resources", key),
                    f"stage {self.stage!r}: unknown key {key!r} in 'resources'"
                    f"{key_hint(str(key), RESOURCE_KEYS)}",
                )
            amount = _resource_amount(key, raw)
            if amount is None:
                what = "a size such as 8GB" if key == "memory" else "a number above 0"
                raise Invalid(
                    (*self.keys, "resources", key),
                    f"stage {self.stage!r}: field 'resources.{key}' must be {what}, "
                    f"not {_kind(raw)}",
                )
            found.append((str(key), amount))
        return tuple(sorted(found))

    def flag(self, value: Any, field_name: str) -> bool:
        if not isinstance(value, bool):
            raise self.wrong(field_name, value, "true or false")
        return value

    def suite_names(self, value: Any, phase: str) -> tuple[str, ...]:
        """``checks.before`` or ``checks.after``: a suite name or a list of them."""
        names = [] if value is None else value if isinstance(value, list) else [value]
        for i, name in enumerate(names):
            if not isinstance(name, str) or not name:
                at = (*self.keys, "checks", phase) + ((i,) if isinstance(value, list) else ())
                raise Invalid(
                    at,
                    f"stage {self.stage!r}: checks.{phase} must list suite names, "
                    f"not {_kind(name)}",
                )
        return tuple(names)

    def registration(
        self, value: Any, wdir: str, outputs: list[Output]
    ) -> ModelRegistration | None:
        """``register: {name, path, promote, description}``: ``path`` is one of the
        stage's outputs (relative to its wdir), the names are valid model and alias names."""
        if value is None:
            return None
        keys = (*self.keys, "register")
        where = f"stage {self.stage!r}: register"
        if not isinstance(value, dict):
            raise self.wrong("register", value, "a mapping with 'name' and 'path'")
        for key in value:
            if key not in REGISTER_KEYS:
                raise Invalid(
                    (*keys, key), f"{where}: unknown key {key!r}{key_hint(key, REGISTER_KEYS)}"
                )
        for key in ("name", "path"):
            if not isinstance(value.get(key), str) or not value[key]:
                raise Invalid((*keys, key), f"{where}.{key}: required, a non-empty string")
        for key in ("promote", "description"):
            if key in value and not isinstance(value[key], str):
                raise Invalid((*keys, key), f"{where}.{key}: must be a string")
        for key, what in (("name", "model"), ("promote", "alias")):
            problem = name_problem(value[key], what) if key in value else None
            if problem:
                raise Invalid((*keys, key), f"{where}.{key}: {problem}")
        path = posixpath.normpath(posixpath.join(wdir, value["path"]))
        if path not in {o.path for o in outputs}:
            raise Invalid(
                (*keys, "path"), f"{where}.path: {value['path']!r} is not an output of the stage"
            )
        return ModelRegistration(
            value["name"], path, value.get("promote"), value.get("description")
        )


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def line_of(text: str, keys: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest node of ``keys`` found in the YAML text."""
    try:
        _, lines = parse_yaml_lines(text)
    except YamlProblem:
        return None
    return line_at(lines, keys)


def _resource_amount(key: str, raw: Any) -> float | None:
    """A resource's amount (memory in bytes: ``8GB``, ``512MiB``, a number), or None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw) if raw > 0 else None
    if key != "memory" or not isinstance(raw, str):
        return None
    match = _MEMORY.fullmatch(raw)
    if match is None:
        return None
    number, unit, binary = match.groups()
    base = 1024 if binary else 1000
    amount = float(number) * base ** "_KMGT".index(unit.upper() or "_")
    return amount if amount > 0 else None
