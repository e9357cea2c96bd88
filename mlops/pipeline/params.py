"""Parameter files (YAML, JSON or TOML): the values a stage reads, as flat dotted keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.core.yamlio import (
    MAX_YAML_BYTES,
    YamlProblem,
    load_yaml,
    parse_json,
    parsed_cache_dir,
)
from mlops.errors import PipelineError

if TYPE_CHECKING:
    from mlops.pipeline.schema import Stage

# file -> dotted key -> value
ParamValues = dict[str, dict[str, Any]]
Loader = Callable[[str], dict[str, Any] | None]


def parse_params(
    data: bytes, path: str, cache: Path | None = None, where: str | None = None
) -> dict[str, Any]:
    """A parameter (or metrics) file's content as a mapping: TOML, JSON or YAML by ``path``.

    ``where`` names it in messages (default ``path``); ``cache`` is a folder of
    already parsed YAML documents (see ``mlops.core.yamlio.parsed_cache_dir``).
    """
    where = where or path
    if path.endswith(".toml"):
        import tomllib

        if len(data) > MAX_YAML_BYTES:
            raise PipelineError(f"{where}: invalid TOML: over {MAX_YAML_BYTES:,} bytes")
        try:
            return tomllib.loads(data.decode())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise PipelineError(f"{where}: invalid TOML: {exc}") from None
        except RecursionError:
            raise PipelineError(f"{where}: invalid TOML: nested too deeply") from None
    try:
        doc = parse_json(data) if path.endswith(".json") else load_yaml(data, cache)
    except YamlProblem as exc:
        raise PipelineError(exc.located(where)) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise PipelineError(f"{where}: expected a mapping of parameters at the top level")
    return doc


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys; lists and scalars are values, as JSON has them."""
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = _plain(value)
    return flat


def _plain(value: Any) -> Any:
    """``value`` as it reads back from the JSON lock (a YAML date becomes its ISO text)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if callable(isoformat) else str(value)


def stage_params(stage: Stage, load: Loader, strict: bool = True) -> ParamValues:
    """The values of every parameter ``stage`` reads, per file.

    ``load(file)`` returns a parsed file or None when it does not exist. With
    ``strict``, a missing file or key is an error naming the stage, file and key;
    otherwise it is left out (for reading old commits).
    """
    values: ParamValues = {}
    for ref in stage.params:
        doc = load(ref.file)
        if doc is None:
            if strict:
                raise PipelineError(f"stage {stage.name!r}: params file {ref.file} not found")
            continue
        if ref.keys is None:
            values[ref.file] = flatten(doc)
            continue
        chosen: dict[str, Any] = {}
        for key in ref.keys:
            found, value = _lookup(doc, key)
            if not found:
                if strict:
                    raise PipelineError(
                        f"stage {stage.name!r}: params key {key!r} not found in {ref.file}"
                    )
                continue
            if isinstance(value, dict) and value:
                chosen.update(flatten(value, key + "."))
            else:
                chosen[key] = _plain(value)
        values[ref.file] = chosen
    return values


def _lookup(doc: dict[str, Any], key: str) -> tuple[bool, Any]:
    if key in doc:
        return True, doc[key]
    node: Any = doc
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


class ParamFiles:
    """Parameter files read once per command (``volatile`` ones, made by stages, every time)."""

    def __init__(self, root: Path, volatile: frozenset[str] = frozenset()) -> None:
        self.root = root
        self.volatile = volatile
        self._docs: dict[str, dict[str, Any] | None] = {}
        self._cache = parsed_cache_dir(root)

    def __call__(self, rel: str) -> dict[str, Any] | None:
        if rel in self._docs and rel not in self.volatile:
            return self._docs[rel]
        try:
            data = (self.root / rel).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            doc = None
        else:
            doc = parse_params(data, rel, self._cache)
        self._docs[rel] = doc
        return doc
