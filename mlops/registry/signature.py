"""A version's signature: the feature columns its model takes, and their types.

Recorded at registration (``signature`` in the version's record) so that a server can
check requests without trusting the client. Names come from the fitted model
(``feature_names_in_``); types from the training data the run read, when it is found,
else from the model (a plain estimator takes numbers only). Versions registered before
signatures were recorded fall back to the loaded model's ``feature_names_in_``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.errors import TableError


class FeatureType(enum.StrEnum):
    """What a feature column accepts."""

    NUMBER = "number"  # int or float, finite
    BOOLEAN = "boolean"
    STRING = "string"
    ANY = "any"  # numbers or strings (a pipeline that encodes its own columns)


class SignatureSource(enum.StrEnum):
    """Where a signature's types came from."""

    TRAINING_DATA = "training data"  # the run's training data, read at registration
    MODEL = "model"  # the model alone: a plain estimator takes numbers
    FITTED_MODEL = "fitted model"  # no record: read from the loaded model when serving


@dataclass(frozen=True)
class Feature:
    name: str
    type: FeatureType

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type.value}


@dataclass(frozen=True)
class Signature:
    """The features a model takes, in the order it was fitted on; ``source`` says how known."""

    features: tuple[Feature, ...]
    source: SignatureSource

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def to_dict(self) -> dict[str, Any]:
        return {"features": [f.to_dict() for f in self.features], "source": self.source.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature | None:
        """The recorded signature, or None when the record has none (or a malformed one)."""
        raw = data.get("features")
        if not isinstance(raw, list) or not raw:
            return None
        features = []
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                return None
            try:
                features.append(Feature(item["name"], FeatureType(str(item.get("type")))))
            except ValueError:
                return None
        try:
            source = SignatureSource(str(data.get("source")))
        except ValueError:
            source = SignatureSource.MODEL
        return cls(tuple(features), source)


def model_signature(model: Any, training: list[Path] | None = None) -> Signature | None:
    """The signature of a fitted model: types from the first ``training`` file having every
    feature, else from the model. None when the model does not record its feature names."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return None
    names = [str(n) for n in names]
    for path in training or []:
        types = _column_types(path, names)
        if types is not None:
            return Signature(
                tuple(Feature(n, types[n]) for n in names), SignatureSource.TRAINING_DATA
            )
    # A pipeline or column transformer may encode strings itself; a bare estimator cannot.
    kind = FeatureType.ANY if is_composite(model) else FeatureType.NUMBER
    return Signature(tuple(Feature(n, kind) for n in names), SignatureSource.MODEL)


def is_composite(model: Any) -> bool:
    """A pipeline or column transformer: it may select columns by name or encode strings."""
    return hasattr(model, "steps") or hasattr(model, "transformers")


def signature_of_file(path: Path, training: list[Path]) -> Signature | None:
    """Load the model file the user registers (their own file) and read its signature.

    Only model files (joblib, pickle, skops) are looked into; one that fails to load has
    no signature, and registration goes on without one.
    """
    from mlops.registry.formats import format_of, load_file

    if not path.is_file() or format_of(path.name) is None:
        return None
    try:
        model = load_file(path)
    except Exception:  # not a model this library reads: no signature, not an error
        return None
    return model_signature(model, training)


def _column_types(path: Path, names: list[str]) -> dict[str, FeatureType] | None:
    """The feature types of ``names`` in a data file, or None when it lacks one of them."""
    import pyarrow as pa

    from mlops.tables.read import read_table

    try:
        data = read_table(path, str(path), "data", frozenset(names))
    except TableError:
        return None
    schema = data.table.schema
    if not set(names) <= set(schema.names):
        return None
    types = {}
    for name in names:
        kind = schema.field(name).type
        if pa.types.is_boolean(kind):
            types[name] = FeatureType.BOOLEAN
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind):
            types[name] = FeatureType.NUMBER
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            types[name] = FeatureType.STRING
        else:
            types[name] = FeatureType.ANY
    return types
