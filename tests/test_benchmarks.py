"""The benchmark scripts still import what they measure: a renamed or moved function in
cnnlab breaks `python benchmarks/<name>.py` without any other test noticing. (Their timings
are not run here: speed is measured in benchmarks/, never asserted in a test.)"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).parent.parent / "benchmarks").glob("*.py"))


def test_there_are_benchmarks() -> None:
    assert len(BENCHMARKS) >= 10


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_each_benchmark_imports_and_waits_for_main(
    script: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loaded as a module (their shared `timing` helper beside them), each script's imports
    resolve and it defines its entry point, `main()`, behind `if __name__ == "__main__"`."""
    monkeypatch.syspath_prepend(str(script.parent))
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    if script.stem != "timing":  # the helper the others import
        assert callable(getattr(module, "main", None)), f"{script.name} has no main()"
