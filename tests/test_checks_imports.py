"""Packages imported by two threads at once: what checks import goes one thread at a time.

The package below is slow to initialise and imports a submodule that imports it back,
as pyarrow does. When one thread imports it while another imports that submodule,
Python's import system gives one of them a partly initialised module (pyarrow failed
this way in `mlops check`: "cannot import name 'BuildInfo' from partially initialized
module 'pyarrow.lib'"). Each case runs in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


@pytest.fixture
def slow_package(tmp_path: Path) -> Path:
    package = tmp_path / "slowpkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import time\ntime.sleep(0.4)\nX = 1\nfrom slowpkg.b import helper\n"
    )
    (package / "a.py").write_text(
        "class Model:\n    def predict(self, rows):\n        return [0] * len(rows)\n"
    )
    (package / "b.py").write_text("from slowpkg import X\n\n\ndef helper():\n    return X\n")
    return tmp_path


def run_threads(root: Path, first: str, second: str) -> str:
    """Run ``first`` on one thread and, 0.1 s later, ``second`` on another; the errors."""
    script = textwrap.dedent(
        f"""
        import importlib, sys, threading, time
        import joblib  # loaded before the threads start: only the race is timed
        from pathlib import Path
        sys.path.insert(0, {str(root)!r})
        from mlops.checks.files import DataStore
        from mlops.core.imports import import_serially
        root = Path({str(root)!r})
        errors = []

        def run(code, delay):
            time.sleep(delay)
            try:
                exec(code)
            except Exception as exc:
                errors.append(f"{{type(exc).__name__}}: {{exc}}")

        threads = [
            threading.Thread(target=run, args=({first!r}, 0.0)),
            threading.Thread(target=run, args=({second!r}, 0.1)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print("; ".join(errors) or "ok")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_plain_imports_on_two_threads_break(slow_package: Path) -> None:
    """The hazard itself, so that the cases below are known to exercise it."""
    found = run_threads(
        slow_package, "importlib.import_module('slowpkg.a')", "importlib.import_module('slowpkg.b')"
    )
    assert "partially initialized module" in found


def test_imports_through_mlops_take_turns(slow_package: Path) -> None:
    found = run_threads(
        slow_package, "import_serially('slowpkg.a')", "import_serially('slowpkg.b')"
    )
    assert found == "ok"


def test_loading_a_model_takes_its_turn(slow_package: Path) -> None:
    """Unpickling a model imports its package: on the store's thread, while another
    thread imports a module of the same package."""
    script = (
        "import sys, joblib\n"
        f"sys.path.insert(0, {str(slow_package)!r})\n"
        "from slowpkg.a import Model\n"
        f"joblib.dump(Model(), {str(slow_package / 'model.joblib')!r})\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    found = run_threads(
        slow_package,
        "DataStore(root).model('model.joblib', 'model')",
        "import_serially('slowpkg.b')",
    )
    assert found == "ok"


def test_importing_a_custom_check_takes_its_turn(slow_package: Path) -> None:
    found = run_threads(
        slow_package,
        "from mlops.checks.data_checks import import_function\n"
        "import_function('slowpkg.a:Model', root)",
        "import_serially('slowpkg.b')",
    )
    assert found == "ok"
