"""The factor cache: one safetensors file per settings hash, written atomically, validated on
reading (a bad file is reported in one line and recomputed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from core.errors import warn
from core.io import atomic_path
from methods.kfac.statistics import Factors

FACTOR_FORMAT = 2  # bump when the meaning of cached factor files changes (2: labels seeded per batch)


def save_factors(path: Path, factors: Factors, settings: dict[str, Any]) -> None:
    """Written atomically: a killed write never leaves a readable file at `path`."""
    from safetensors.torch import save_file

    owners: dict[int, str] = {}
    a_owner = {name: owners.setdefault(id(matrix), name) for name, matrix in factors.A.items()}
    tensors = {f"A:{name}": factors.A[name].contiguous() for name in set(a_owner.values())}
    tensors.update({f"G:{name}": matrix.contiguous() for name, matrix in factors.G.items()})
    metadata = {"settings": json.dumps(settings, sort_keys=True), "a_owner": json.dumps(a_owner),
                "positions": str(factors.positions), "inputs": str(factors.inputs)}
    with atomic_path(path) as temp:
        save_file(tensors, str(temp), metadata=metadata)


def load_factors(path: Path, settings: dict[str, Any],
                 modules: dict[str, torch.nn.Module] | None = None) -> Factors | None:
    """The cached factors, or None when the file is absent. A file that fails validation
    (unreadable or truncated, other settings, a shape that does not fit `modules`, NaN/inf
    entries) is reported in one warning line naming it, and None is returned so that the
    factors are recomputed and the file overwritten."""
    if not path.is_file():
        return None
    try:
        factors, problem = _read_factors(path, settings)
    except Exception as e:  # truncated, corrupted or foreign file: safetensors raises several types
        factors, problem = None, f"unreadable ({type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''})"
    if factors is not None and problem is None:
        problem = factors_problem(factors, modules)
    if problem is not None:
        warn(f"discarding cached K-FAC factors {path}: {problem}; recomputing them")
        return None
    return factors


def _read_factors(path: Path, settings: dict[str, Any]) -> tuple[Factors | None, str | None]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        if json.loads(metadata["settings"]) != json.loads(json.dumps(settings, sort_keys=True)):
            return None, "its settings differ from the ones its name hashes"
        a_owner = json.loads(metadata["a_owner"])
        shared = {owner: f.get_tensor(f"A:{owner}") for owner in set(a_owner.values())}
        return Factors(A={name: shared[owner] for name, owner in a_owner.items()},
                       G={name: f.get_tensor(f"G:{name}") for name in a_owner},
                       positions=int(metadata["positions"]), inputs=int(metadata["inputs"])), None


def factors_problem(factors: Factors, modules: dict[str, torch.nn.Module] | None = None) -> str | None:
    """Why cached factors cannot be used (None if they can): NaN/inf entries, or, given the
    modules they are for, a missing module or a shape other than (in, in) and (out, out)."""
    from models.architectures import weight_as_out_in

    for kind, table in (("A", factors.A), ("G", factors.G)):
        for name, matrix in table.items():
            if not torch.isfinite(matrix).all():
                return f"factor {kind} of {name} has NaN/inf entries"
    for name, module in (modules or {}).items():
        if name not in factors.A or name not in factors.G:
            return f"no factors for {name}"
        out_features, in_features = weight_as_out_in(module).shape
        if tuple(factors.A[name].shape) != (in_features, in_features) or tuple(factors.G[name].shape) != (out_features, out_features):
            return (f"factors of {name} have shapes {tuple(factors.A[name].shape)}, {tuple(factors.G[name].shape)}; "
                    f"the module needs ({in_features}, {in_features}), ({out_features}, {out_features})")
    return None
