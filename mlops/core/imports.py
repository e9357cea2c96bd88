"""Heavy packages (pyarrow, pandas, scikit-learn) imported one thread at a time.

Checks import what they need as they go, on more than one thread: the background read
of a data file and the checks themselves, or the checks of two stages under
``mlops run -j``. When two threads import the same package at once, Python's import
system can hand one of them a partly initialised module to break what it takes for a
deadlock: ``mlops check`` then failed now and then with "cannot import name 'BuildInfo'
from partially initialized module 'pyarrow.lib'" (in 3 of 9 benchmark runs).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

_LOCK = threading.RLock()


def import_serially(name: str) -> ModuleType:
    """The module ``name``, imported while no other thread imports through here."""
    with _LOCK:
        __import__(name)  # as an import statement does (``-X importtime`` lists it)
        return sys.modules[name]


@contextmanager
def importing() -> Iterator[None]:
    """Hold the same lock around code that imports as it runs (unpickling a model)."""
    with _LOCK:
        yield
