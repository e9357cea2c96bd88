"""Check results, as JSON-able dicts and as JUnit XML for CI systems."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class CheckStatus(StrEnum):
    """How one check ended: it held, it did not, or it could not be judged."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"


PASS, FAIL, ERROR = CheckStatus.PASS, CheckStatus.FAIL, CheckStatus.ERROR


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one column (or on the whole data, model or file).

    ``failing`` counts the rows or values that broke the check and ``examples``
    shows a few of them; ``observed`` is JSON-able.
    """

    suite: str
    check: str
    column: str | None
    status: CheckStatus
    observed: Any
    expected: str
    message: str = ""
    failing: int = 0
    examples: tuple[Any, ...] = ()
    where: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "check": self.check,
            "column": self.column,
            "status": self.status,
            "observed": self.observed,
            "expected": self.expected,
            "message": self.message,
            "failing": self.failing,
            "examples": list(self.examples),
            "where": self.where,
            "seconds": round(self.seconds, 6),
        }


@dataclass(frozen=True)
class SuiteResult:
    """Every result of one suite; it passes when none failed or errored."""

    suite: str
    results: tuple[CheckResult, ...]
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(r.status == PASS for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "passed": self.passed,
            "seconds": round(self.seconds, 6),
            "results": [r.to_dict() for r in self.results],
        }


@dataclass(frozen=True)
class ChecksReport:
    """The results of several suites run together."""

    suites: tuple[SuiteResult, ...]
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.suites)

    @property
    def results(self) -> tuple[CheckResult, ...]:
        return tuple(r for s in self.suites for r in s.results)

    def counts(self) -> dict[CheckStatus, int]:
        """How many results passed, failed and errored."""
        counts = {PASS: 0, FAIL: 0, ERROR: 0}
        for result in self.results:
            counts[result.status] += 1
        return counts

    def summary(self, limit: int = 3) -> str:
        """One line: how many checks did not pass, and the first few of them."""
        bad = [r for r in self.results if r.status != PASS]
        if not bad:
            return f"all {len(self.results)} checks passed"
        shown = "; ".join(describe(r) for r in bad[:limit])
        more = f"; and {len(bad) - limit} more" if len(bad) > limit else ""
        return f"{len(bad)} of {len(self.results)} checks did not pass: {shown}{more}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by ``mlops check --json`` and the run records."""
        return {
            "passed": self.passed,
            "counts": self.counts(),
            "seconds": round(self.seconds, 6),
            "suites": [s.to_dict() for s in self.suites],
        }


def describe(result: CheckResult) -> str:
    """One line naming the suite, check and column, then what went wrong."""
    if result.status == ERROR:
        return result.message  # already names the file, suite, check and key
    column = f" > {result.column}" if result.column else ""
    return f"{result.suite} > {result.check}{column}: {result.message}"


def to_junit(report: ChecksReport) -> str:
    """JUnit XML: one ``testsuite`` per suite, one ``testcase`` per result."""
    import json
    import xml.etree.ElementTree as ET

    counts = report.counts()
    root = ET.Element(
        "testsuites",
        name="mlops check",
        tests=str(len(report.results)),
        failures=str(counts[FAIL]),
        errors=str(counts[ERROR]),
        time=f"{report.seconds:.3f}",
    )
    for suite in report.suites:
        node = ET.SubElement(
            root,
            "testsuite",
            name=suite.suite,
            tests=str(len(suite.results)),
            failures=str(sum(r.status == FAIL for r in suite.results)),
            errors=str(sum(r.status == ERROR for r in suite.results)),
            time=f"{suite.seconds:.3f}",
        )
        names = [r.check + (f"[{r.column}]" if r.column else "") for r in suite.results]
        for result, name in zip(suite.results, names, strict=True):
            if names.count(name) > 1:  # two command: or metric: checks: CI tools merge those
                name += f" ({result.where})"
            case = ET.SubElement(
                node,
                "testcase",
                classname=f"mlops.checks.{suite.suite}",
                name=name,
                time=f"{result.seconds:.3f}",
            )
            if result.status != PASS:
                detail = ET.SubElement(
                    case, "failure" if result.status == FAIL else "error", message=result.message
                )
                detail.text = "\n".join(
                    [
                        f"observed: {result.observed}",
                        f"expected: {result.expected}",
                        f"failing: {result.failing}",
                        *(json.dumps(e, default=str) for e in result.examples),
                        f"declared at {result.where}",
                    ]
                )
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode")
    # ElementTree writes control characters (a command's colour codes...) as they are,
    # which XML 1.0 forbids even escaped: parsers would reject the whole file.
    text = re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]", "", text)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n"
