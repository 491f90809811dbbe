"""The curvature basis of each analysed matrix (from the K-FAC factor files the edit uses) and one
pass of an input set through the model that sums, per example, the norm of each band's output."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from analysis.bands import band_masks, band_norms, component_basis, mass_ranks, removed_mask
from analysis.inputs import InputSet
from core.errors import ConfigError


@dataclasses.dataclass
class MatrixBasis:
    name: str              # module name
    layer: int | None      # block index (None for modules chosen by method.module_pattern)
    role: str | None       # gate | up | down
    rho: float             # the rho the K-FAC setting edits this matrix with
    lam: torch.Tensor      # G's eigenvalues, descending
    mu: torch.Tensor       # A's eigenvalues, descending
    U_A: torch.Tensor
    C: torch.Tensor        # U_G^T W U_A
    removed: torch.Tensor  # (out, in) bool: the components the setting removes


def method_for_layers(method: Any, model: torch.nn.Module, layers: list[int] | None) -> tuple[Any, list[str]]:
    """The K-FAC setting whose factor files to read, and the module names to analyse. With
    `layers` inside the setting's edited layers the setting is kept (its cached factors serve);
    otherwise a copy of it that edits exactly `layers` (its own factor file)."""
    from models.architectures import find_mlp_linears, num_layers, resolve_matrices

    targets = method.targets(model)
    if layers is None:
        return method, list(targets)
    count = num_layers(model)
    bad = [i for i in layers if isinstance(i, bool) or not isinstance(i, int) or not -count <= i < count]
    if bad or not layers:
        raise ConfigError(f"analyze.layers must be a non-empty list of layer indices in {-count}..{count - 1}, got {layers!r}")
    wanted = sorted({i % count for i in layers})
    info = {f.name: f.layer for f in find_mlp_linears(model, method.layers, resolve_matrices(model, method.matrices)[0])} if method.module_pattern is None else {}
    names = [n for n in targets if info.get(n) in wanted]
    if sorted({info[n] for n in names}) == wanted:
        return method, names
    copy = type(method).__new__(type(method))
    copy.__dict__.update(method.__dict__, layers=wanted, overrides={})
    return copy, list(copy.targets(model))


def matrix_bases(method: Any, model: torch.nn.Module, names: list[str], ctx: Any) -> tuple[dict[str, MatrixBasis], dict[str, Any]]:
    """The basis, masses and removed set of each named matrix, from `method`'s (cached) factors."""
    from methods.kfac import eigh_descending, keep_counts
    from models.architectures import find_mlp_linears, resolve_matrices, weight_as_out_in

    targets = method.targets(model)
    factors, report = method.factors(model, {n: m for n, (m, _) in targets.items()}, ctx)
    where = {} if method.module_pattern is not None else {
        f.name: (f.layer, f.role) for f in find_mlp_linears(model, method.layers, resolve_matrices(model, method.matrices)[0])}
    eigen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    bases = {}
    for name in names:
        module, rho = targets[name]
        A, G = factors.A[name], factors.G[name]
        if id(A) not in eigen:
            eigen[id(A)] = eigh_descending(A)
        mu, U_A = eigen[id(A)]
        lam, U_G = eigh_descending(G)
        weight = weight_as_out_in(module).detach().float().cpu()
        counts = keep_counts(lam, mu, rho)
        layer, role = where.get(name, (None, None))
        bases[name] = MatrixBasis(name, layer, role, rho, lam, mu, U_A, component_basis(weight, U_A, U_G),
                                  removed_mask(counts, len(mu)))
    return bases, {"factor_cache": report.get("factor_cache"), "factor_file": report.get("factor_file"),
                   "positions": factors.positions}


def spectrum_masks(basis: MatrixBasis) -> dict[str, torch.Tensor]:
    """The bands (by mass rank), the removed set, and the whole matrix ('all')."""
    masks = band_masks(mass_ranks(basis.lam, basis.mu))
    masks["removed"] = basis.removed
    masks["all"] = torch.ones_like(basis.removed)
    return masks


@torch.no_grad()
def band_sums(model: torch.nn.Module, modules: dict[str, torch.nn.Module], bases: dict[str, MatrixBasis],
              masks: dict[str, dict[str, torch.Tensor]], inputs: InputSet, batch_size: int,
              device: torch.device) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Module name -> (sums (examples, bands) of the band output norms over each example's counted
    positions, counts (examples,) of those positions). Bands in the order of masks[name]."""
    stacked = {n: torch.stack(list(masks[n].values())).to(device) for n in bases}
    C = {n: b.C.to(device) for n, b in bases.items()}
    U_A = {n: b.U_A.to(device) for n, b in bases.items()}
    sums = {n: torch.zeros(inputs.examples, len(masks[n]), dtype=torch.float64) for n in bases}
    counts = torch.zeros(inputs.examples, dtype=torch.float64)
    state: dict[str, Any] = {}

    def hook(name: str):
        def record(module: torch.nn.Module, args: tuple) -> None:
            x, select = args[0], state["select"]
            if select is None:  # image classifiers: the CLS token
                rows, owner = x[:, 0], torch.arange(x.shape[0], device=x.device)
            else:
                select = select.to(x.device)
                rows, owner = x[select], select.nonzero()[:, 0]
            norms = band_norms(C[name], stacked[name], U_A[name], rows).double().cpu()
            sums[name].index_add_(0, owner.cpu() + state["offset"], norms)
        return record

    handles = [modules[n].register_forward_pre_hook(hook(n)) for n in bases]
    was_training = model.training
    model.eval()
    offset = 0
    try:
        for kwargs, select in inputs.batches(batch_size):
            state.update(select=select, offset=offset)
            model(**{k: v.to(device) for k, v in kwargs.items()})
            rows = next(iter(kwargs.values())).shape[0]
            counts[offset : offset + rows] += select.sum(1).double() if select is not None else 1.0
            offset += rows
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if offset != inputs.examples:
        raise RuntimeError(f"input set {inputs.name}: {offset} examples seen, {inputs.examples} expected")
    return {n: (sums[n], counts) for n in bases}
