"""Reading YAML with the C parser when present, and errors that carry the line."""

from __future__ import annotations

from typing import Any


class YamlProblem(Exception):
    """The text is not valid YAML; ``line`` is 1-based when known."""

    def __init__(self, line: int | None, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem

    def located(self, where: str) -> str:
        """``where:LINE: problem``, for a one-line error message."""
        at = f":{self.line}" if self.line else ""
        return f"{where}{at}: invalid YAML: {self.problem}"


def parse_yaml(text: str | bytes) -> Any:
    """The YAML document in ``text``; a syntax error raises ``YamlProblem``."""
    import yaml

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise YamlProblem(
            mark.line + 1 if mark is not None else None,
            getattr(exc, "problem", None) or "not valid YAML",
        ) from None
