"""The rule for model and alias names: one safe component of a Git tag name."""

from __future__ import annotations

import re

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def name_problem(name: object, what: str) -> str | None:
    """Why ``name`` cannot be a ``what`` ("model", "alias") name, or None when it can."""
    if (
        isinstance(name, str)
        and _NAME.fullmatch(name)
        and ".." not in name
        and not name.endswith((".lock", "."))
    ):
        return None
    return (
        f"invalid {what} name {name!r}: use letters, digits, '_', '-' and '.' "
        "(at most 100, starting with a letter or digit)"
    )
