"""The model being served, and how it follows its alias.

A ``Served`` is one loaded, warmed-up version; it never changes. ``ModelHolder`` keeps
the current one and, when serving an alias, a background thread compares the alias's
tag refs (one ``git for-each-ref``, no registry scan) and, when they moved, loads the
new holder (hash-checked), warms it up and swaps it in. A request takes the current
``Served`` once, so a swap never touches a request in flight. A version that fails to
load leaves the old one serving, and the reason is kept for ``/health/ready``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops.core.repo import Repo
from mlops.errors import MlopsError, ServeError
from mlops.registry.records import REF_PREFIX, ModelVersion, split_reference
from mlops.registry.signature import (
    FeatureType,
    Signature,
    SignatureSource,
    is_composite,
    model_signature,
)
from mlops.serve.inputs import Rows

log = logging.getLogger("mlops.serve")
_WARM_VALUES = {
    FeatureType.NUMBER: 0.0,
    FeatureType.STRING: "",
    FeatureType.BOOLEAN: False,
    FeatureType.ANY: 0.0,
}


def prepare_process() -> None:
    """Settings for a process that serves: requests are checked before the model sees them.

    Values are finite numbers already (so scikit-learn need not check again), and a
    plain estimator gets a bare array, on which it would warn at every request that the
    array has no column names.
    """
    import warnings

    import sklearn

    sklearn.set_config(assume_finite=True)
    warnings.filterwarnings("ignore", message="X does not have valid feature names")


@dataclass(frozen=True)
class Served:
    """One loaded version: the model object, its signature and how to feed it."""

    version: ModelVersion
    alias: str | None
    model: Any
    signature: Signature
    as_array: bool  # a plain estimator of numbers takes a float array (no frame to build)
    classes: list[Any] | None  # a classifier's class labels, when it has probabilities

    @property
    def label(self) -> str:
        return f"{self.version.model}:{self.version.label}"

    def identity(self) -> dict[str, Any]:
        """Name, version, content hash, commit and alias: what ``/version`` answers."""
        v = self.version
        return {
            "model": v.model,
            "version": v.label,
            "id": v.id,
            "hash": v.content.oid,
            "commit": v.commit,
            "alias": self.alias,
        }

    def inputs(self, rows: Rows) -> Any:
        """What the model is given: a float array, or a frame with the fitted column names."""
        if self.as_array:
            import numpy as np

            return np.array(rows.columns, dtype=float).T
        import pandas as pd

        return pd.DataFrame(dict(zip(rows.names, rows.columns, strict=True)), columns=rows.names)

    def predict(
        self, rows: Rows, probabilities: bool
    ) -> tuple[list[Any], list[list[float]] | None]:
        """Predictions, and class probabilities when asked and the model has them."""
        x = self.inputs(rows)
        predictions = self.model.predict(x).tolist()
        proba = None
        if probabilities and self.classes is not None:
            proba = self.model.predict_proba(x).tolist()
        return predictions, proba


def load_served(repo: Repo, version: ModelVersion, alias: str | None) -> Served:
    """Load ``version`` (hash-checked), find its signature, and run a warm-up prediction."""
    from mlops.registry.content import load_version

    model = load_version(repo, version)
    if not hasattr(model, "predict"):
        raise ServeError(f"{version.ref}: a {type(model).__name__} has no predict method")
    signature = Signature.from_dict(version.signature) if version.signature else None
    if signature is None:
        signature = model_signature(model)
        if signature is not None:
            signature = Signature(signature.features, SignatureSource.FITTED_MODEL)
    if signature is None:
        raise ServeError(
            f"{version.ref}: neither its record nor the model names its features "
            "(fit it on a pandas DataFrame, then register it again)"
        )
    plain = all(f.type is FeatureType.NUMBER for f in signature.features)
    classes = None
    if hasattr(model, "predict_proba") and hasattr(model, "classes_"):
        classes = list(model.classes_.tolist())
    served = Served(version, alias, model, signature, plain and not is_composite(model), classes)
    warm = Rows(
        signature.names,
        tuple([_WARM_VALUES[f.type]] for f in signature.features),
        1,
    )
    try:
        served.predict(warm, probabilities=True)
    except Exception as exc:  # the model's library raises anything
        raise ServeError(
            f"{version.ref}: the warm-up prediction failed: {type(exc).__name__}: {exc}"
        ) from exc
    return served


class ModelHolder:
    """The version being served; follows ``NAME@ALIAS`` when given one."""

    def __init__(self, repo: Repo, reference: str, poll: float = 2.0) -> None:
        from mlops.registry.tags import resolve

        self.repo = repo
        self.reference = reference
        self.name, _, self.alias = split_reference(reference)
        self.poll = poll
        self.problem: str | None = None
        self.on_switch: Callable[[Served], None] | None = None
        self._refs = self._alias_refs()
        self.current = load_served(repo, resolve(repo, reference), self.alias)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start following the alias (nothing to follow for ``NAME:VERSION``)."""
        if self.alias is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._follow, name="mlops-alias", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def check(self) -> bool:
        """Switch to the alias's holder if it moved; True when a new version is serving."""
        from mlops.registry.tags import resolve

        refs = self._alias_refs()
        if refs == self._refs:
            return False
        try:
            version = resolve(self.repo, self.reference)
            if version.id == self.current.version.id:
                self._refs, self.problem = refs, None
                return False
            served = load_served(self.repo, version, self.alias)
        except MlopsError as exc:
            message = f"{self.reference} moved, still serving {self.current.label}: {exc.message}"
            if message != self.problem:
                log.error("%s", message)
            self.problem = message
            return False
        previous = self.current.label
        self.current, self._refs, self.problem = served, refs, None
        log.info("%s moved: now serving %s (was %s)", self.reference, served.label, previous)
        if self.on_switch is not None:
            self.on_switch(served)
        return True

    def _follow(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.check()
            except Exception:  # the follower must outlive any surprise; the log says what
                log.exception("following %s failed", self.reference)

    def _alias_refs(self) -> bytes:
        """The alias's tag refs and objects: they change exactly when the alias moves."""
        from mlops.core.git import git

        if self.alias is None:
            return b""
        pattern = f"{REF_PREFIX}{self.name}/@{self.alias}"
        return git(self.repo.root, "for-each-ref", "--format=%(refname) %(objectname)", pattern)
