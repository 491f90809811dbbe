"""The interfaces a plugin author imports (Method, Task, LoadedModel, the registry, the run record)
load without torch, transformers, Hydra or pandas: lm-eval's users fought 15 s start-ups."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "hydra", "omegaconf", "pandas", "datasets", "lm_eval")
INTERFACES = ["methods.base", "tasks.base", "models.base", "models", "core.registry", "core.runrecord",
              "core.data", "core.families", "core.io", "core.hashing", "harness", "leaderboard"]


def heavy_modules_after_import(module: str) -> list[str]:
    code = f"import sys, {module}; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    return ast.literal_eval(out.stdout.strip())


@pytest.mark.parametrize("module", INTERFACES)
def test_interface_imports_without_heavy_libraries(module: str) -> None:
    assert heavy_modules_after_import(module) == []


def test_the_check_sees_a_heavy_import() -> None:
    """The check can fail: a module that imports torch at the top is caught."""
    assert "torch" in heavy_modules_after_import("methods.kfac")
