"""Evaluation harness for memorization-removal methods. Importing this package does nothing
heavy: torch, transformers and Hydra load only when a run starts.

Python API (harness/api.py, docs/python_api.md): `harness.evaluate(*overrides)` runs what
`python -m harness` runs and returns the run record; `harness.edit(model, tokenizer=...,
method="kfac", data=..., **settings)` edits an in-memory Hugging Face model and returns it with
the method's report.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["evaluate", "edit"]


def __getattr__(name: str) -> Any:
    if name in __all__:  # loaded on first use, so that `import harness` stays cheap
        from harness import api

        return getattr(api, name)
    raise AttributeError(f"module 'harness' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
