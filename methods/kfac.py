"""K-FAC curvature edit (Merullo et al. 2025, "From Memorization to Reasoning in the Spectrum of
Loss Curvature"): remove the low-curvature components of MLP weights.

For each edited linear layer with weight W (out x in):
  1. A = E[x x^T] over the layer's inputs, G = E[g g^T] over the loss gradient w.r.t. its outputs,
     both averaged over positions of a general text stream (no memorized examples needed).
  2. A = U_A diag(mu) U_A^T, G = U_G diag(lam) U_G^T (fp32 eigh, no damping; tiny negative
     eigenvalues from rounding are clamped to 0).
  3. C = U_G^T W U_A; component (i, j) carries curvature mass lam_i * mu_j.
  4. Keep the fewest components, largest mass first, whose mass sums to >= rho * sum(lam) * sum(mu).
  5. W' = U_G (C * M) U_A^T, written as W - U_G (C * (1 - M)) U_A^T: the same matrix, but W stays
     bit-identical when nothing is removed and rounding scales with what is removed.

Convention for G. The loss of a batch is the mean cross-entropy over its n counted positions, so
the gradient autograd hands the output at position t is (1/n) g_t, where g_t = d(sum of the
sequence's per-position losses)/d out_t (position t's own loss plus, through attention, the later
ones). We multiply it back by n before the outer product: G = (1/N) sum_t g_t g_t^T over all N
counted positions, an expectation over positions that does not depend on the batch size (the
paper's code accumulates per batch; with equal batches the two differ only by a constant factor,
which rho, a ratio of masses, ignores). This is curvlinops' KFACLinearOperator convention for
CrossEntropyLoss(reduction="mean"), kfac_approx="expand"; tests/methods/test_kfac.py checks it
against curvlinops and against a per-window autograd loop. Labels are sampled from the
model's softmax (true Fisher, `labels: sampled`) or are the gold next tokens (`labels: empirical`).
Which positions count and what the loss is come with the model (models/base.py,
StatisticsSource): language models count every position but the last (it has no next token);
image classifiers count the CLS token only and use the classification loss.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from core.errors import ConfigError, DataError, warn
from core.hashing import canonical_hash
from core.io import atomic_path, file_lock
from methods.base import Method, MethodContext
from models.base import DTYPE_NAMES, StatisticsSource

LABELS = ("sampled", "empirical")
# Autocast dtype of the statistics pass: None (off) or a model dtype name (models/base.py).
DTYPES = {None: None, **{name: getattr(torch, name) for name in DTYPE_NAMES}}
FACTOR_FORMAT = 2  # bump when the meaning of cached factor files changes (2: labels seeded per batch)


@dataclasses.dataclass
class Factors:
    A: dict[str, torch.Tensor]  # module name -> (in, in) fp32; modules reading one input share one tensor
    G: dict[str, torch.Tensor]  # module name -> (out, out) fp32
    positions: int              # positions averaged over
    inputs: int                 # tokens (language models) or images run through the model


def label_generator(seed: int, batch_index: int, device: torch.device) -> torch.Generator:
    """The generator that samples batch `batch_index`'s labels: seeded per batch, so the labels of
    a batch do not depend on which process reads it or which layers a pass hooks (distributed
    shards and layers-per-pass chunks see the very same labels as one process in one pass)."""
    return torch.Generator(device=device).manual_seed((seed * 1_000_003 + batch_index) % (1 << 63))


def distributed_world() -> tuple[int, int]:
    """(rank, world size) of the default torch.distributed process group; (0, 1) without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def collect_kfac_factors(model: torch.nn.Module, modules: dict[str, torch.nn.Module],
                         batches: Iterable[Any], *, labels: str = "sampled",
                         source: StatisticsSource | None = None,
                         autocast_dtype: torch.dtype | None = None, seed: int = 0,
                         on_batch: Callable[[int], None] | None = None,
                         shard: tuple[int, int] | None = None) -> Factors:
    """A and G of every module in `modules`, in one pass over `batches`; `source` (the model's
    statistics stream, models/base.py) says what the loss of a batch is and which positions count
    (default: a causal LM over LongTensor[B, T] batches). Sums are kept in fp32.

    Modules that read the very same input tensor (gate_proj and up_proj) share one A, computed
    once. Parameters are frozen during the pass and the backward pass only reaches down to the
    first edited layer: gradients are taken w.r.t. the edited layers' inputs, never the weights.

    Several processes: `shard=(rank, world)` makes this process read every world-th batch only
    (batch i goes to rank i % world); the fp32 sums and the position counts are then all-reduced
    once over the default torch.distributed group, so every rank returns the factors of the whole
    stream (equal to one process's within fp32 summation order). Default: the default group's
    rank and size if one is initialised (torchrun), else one process."""
    if labels not in LABELS:
        raise ConfigError(f"labels must be one of {', '.join(LABELS)}, got {labels!r}")
    if source is None:
        from models.hf import TokenStatistics

        source = TokenStatistics()
    rank, world = shard if shard is not None else distributed_world()
    positions_of = source.positions
    device = next(model.parameters()).device
    a_sums: dict[str, torch.Tensor] = {}
    g_sums: dict[str, torch.Tensor] = {}
    a_owner: dict[str, str] = {}  # module name -> module whose A it shares (itself if it owns one)
    batch_inputs: dict[int, tuple[torch.Tensor, torch.Tensor, str]] = {}  # id(x) -> (x, x used, owner)
    scale = [1.0]  # n of the current batch: undoes the mean reduction (see module docstring)

    def add_outer(sums: dict[str, torch.Tensor], name: str, rows: torch.Tensor, alpha: float = 1.0) -> None:
        rows = rows.float()
        if name not in sums:
            sums[name] = torch.zeros(rows.shape[-1], rows.shape[-1], dtype=torch.float32, device=rows.device)
        sums[name].addmm_(rows.T, rows, alpha=alpha)

    def before_forward(name: str):
        def hook(module: torch.nn.Module, args: tuple) -> tuple:
            x = args[0]
            entry = batch_inputs.get(id(x))
            if entry is None or entry[0] is not x:
                # Parameters are frozen, so the first edited layer's input carries no graph: make
                # it a leaf that requires grad; later edited layers' inputs already do.
                used = x if x.requires_grad else x.detach().requires_grad_()
                entry = batch_inputs[id(x)] = (x, used, name)
                add_outer(a_sums, name, positions_of(x.detach()))
            if a_owner.setdefault(name, entry[2]) != entry[2]:
                raise RuntimeError(f"{name} shared its input with {a_owner[name]} before, now with {entry[2]}")
            return (entry[1],) + tuple(args[1:])
        return hook

    def after_forward(name: str):
        def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
            def on_grad(grad: torch.Tensor) -> None:
                # G is accumulated here, layer by layer as the backward pass reaches it: no
                # layer's output gradient outlives its own hook.
                add_outer(g_sums, name, positions_of(grad.detach()), alpha=scale[0] ** 2)
            output.register_hook(on_grad)
        return hook

    handles = []
    for name, module in modules.items():
        handles.append(module.register_forward_pre_hook(before_forward(name)))
        handles.append(module.register_forward_hook(after_forward(name)))
    requires_grad = {p: p.requires_grad for p in model.parameters()}
    was_training = model.training
    dropout_p = {m: m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    positions = inputs = 0
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        model.train()  # as the paper; dropout is switched off so train mode changes nothing else
        for m in dropout_p:
            m.p = 0.0
        for index, batch in enumerate(batches):
            if index % world != rank:
                continue
            batch_inputs.clear()
            with torch.enable_grad(), torch.autocast(device.type, dtype=autocast_dtype or torch.bfloat16,
                                                     enabled=autocast_dtype not in (None, torch.float32)):
                loss, n = source.loss(model, batch, labels, label_generator(seed, index, device))
            scale[0] = float(n)
            # Only the leaves made above (the first edited layer's input): the backward pass runs
            # through every hooked output on its way there, and no other input's gradient is made.
            leaves = [used for x, used, _ in batch_inputs.values() if used is not x]
            if leaves:
                torch.autograd.grad(loss, leaves, allow_unused=True)
            del loss
            count = source.count(batch)
            positions, inputs = positions + n, inputs + count
            if on_batch is not None:
                on_batch(count)
    finally:
        for handle in handles:
            handle.remove()
        for p, flag in requires_grad.items():
            p.requires_grad_(flag)
        for m, p in dropout_p.items():
            m.p = p
        model.train(was_training)
        batch_inputs.clear()
    if world > 1 and distributed_world()[1] == world:  # a bare shard (tests, tools) is not reduced
        positions, inputs = _all_reduce_sums(a_sums, g_sums, a_owner, modules, positions, inputs, device)
    if positions == 0:
        raise DataError("the statistics stream gave no batches: K-FAC needs some general text "
                        "(model.data.stats) with at least seq_len tokens")
    missing = [name for name in modules if name not in g_sums]
    if missing:
        raise DataError(f"no gradient reached {', '.join(missing)}: the loss does not depend on these layers")
    # Divided in place: a second copy of every factor would double the peak (8,192² fp32 is 268 MB).
    shared = {owner: a_sums[owner].div_(positions) for owner in set(a_owner.values())}
    return Factors(A={name: shared[a_owner[name]] for name in modules},
                   G={name: g_sums[name].div_(positions) for name in modules},
                   positions=positions, inputs=inputs)


def _all_reduce_sums(a_sums: dict[str, torch.Tensor], g_sums: dict[str, torch.Tensor],
                     a_owner: dict[str, str], modules: dict[str, torch.nn.Module], positions: int,
                     inputs: int, device: torch.device) -> tuple[int, int]:
    """Sum every rank's fp32 sums and counts in place (one all-reduce per factor, in name order);
    returns the global (positions, inputs). A rank that read no batch has no sums: every rank
    then raises the same one-line error instead of hanging in a mismatched collective."""
    import torch.distributed as dist

    counts = torch.tensor([positions, inputs], dtype=torch.float64, device=device)
    empty = torch.tensor([0 if positions else 1], dtype=torch.float64, device=device)
    dist.all_reduce(counts)
    dist.all_reduce(empty)
    if empty.item() > 0:
        raise DataError(f"{int(empty.item())} of {dist.get_world_size()} processes got no statistics batch: "
                        "give the stream at least one batch per process (raise method.tokens or lower batch_size)")
    for name in sorted(set(a_owner.values())):
        dist.all_reduce(a_sums[name])
    for name in sorted(modules):
        if name in g_sums:
            dist.all_reduce(g_sums[name])
    return int(counts[0].item()), int(counts[1].item())


def layer_of(name: str) -> Any:
    """The layer a module belongs to: the first all-digit part of its dotted name
    ("model.layers.11.mlp.up_proj" -> 11); a name without one is its own group."""
    return next((int(part) for part in name.split(".") if part.isdigit()), name)


def factors_to(factors: Factors, device: torch.device) -> Factors:
    """The factors on `device`; an A shared by several modules stays one tensor."""
    moved: dict[int, torch.Tensor] = {}
    A = {name: moved.setdefault(id(m), m.to(device)) for name, m in factors.A.items()}
    return dataclasses.replace(factors, A=A, G={name: m.to(device) for name, m in factors.G.items()})


def merge_factors(parts: list[Factors]) -> Factors:
    """One Factors from passes over disjoint module sets and the same stream."""
    if len({(p.positions, p.inputs) for p in parts}) != 1:
        raise DataError("the statistics passes read different amounts of data: the stream is not "
                        "repeatable (K-FAC with layers_per_pass reads it once per pass)")
    return Factors(A={k: v for p in parts for k, v in p.A.items()}, G={k: v for p in parts for k, v in p.G.items()},
                   positions=parts[0].positions, inputs=parts[0].inputs)


def check_finite(factors: Factors, dtype: str | None = None) -> None:
    """Freshly collected factors must be finite; reduced-precision autocast (`dtype`) is the
    usual cause of overflow, otherwise the model itself produces NaN on the statistics text."""
    for kind, table in (("A", factors.A), ("G", factors.G)):
        for name, matrix in table.items():
            if not torch.isfinite(matrix).all():
                cause = (f"the {dtype} statistics pass overflowed (try method.dtype=float32)"
                         if dtype in ("bfloat16", "float16") else
                         "the model produces NaN/inf on the statistics text (check its weights)")
                raise DataError(f"K-FAC factor {kind} of {name} has NaN/inf entries: {cause}")


# ---------------------------------------------------------------------------------------------
# Factor cache: one safetensors file per settings hash, written atomically
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# The edit: pure functions on eigenvalues and matrices
# ---------------------------------------------------------------------------------------------

def eigh_descending(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(eigenvalues, eigenvectors as columns) of a symmetric PSD matrix, largest first, fp32.
    Rounding makes some eigenvalues of a PSD matrix slightly negative: they are clamped to 0."""
    values, vectors = torch.linalg.eigh(matrix.float())
    return values.flip(0).clamp_min(0), vectors.flip(1)


def keep_counts(lam: torch.Tensor, mu: torch.Tensor, rho: float, band_limit: int = 1 << 16) -> torch.Tensor:
    """How many components to keep in each row: the kept set is {(i, j): j < counts[i]}, with
    lam (rows) and mu (columns) sorted descending and >= 0. It is the smallest set of largest
    products lam_i * mu_j whose sum reaches rho * sum(lam) * sum(mu); rho >= 1 keeps everything.

    Never materialises all out x in products: a bisection on the product threshold t (counts per
    row by searchsorted, masses by prefix sums: O(out log in) a step) narrows the boundary to a
    band of at most `band_limit` pairs (or to a tie), which is then sorted exactly."""
    lam, mu = lam.double().cpu(), mu.double().cpu()
    out, inn = len(lam), len(mu)
    if rho >= 1:
        return torch.full((out,), inn, dtype=torch.long)
    target = rho * lam.sum().item() * mu.sum().item()
    if target <= 0:
        return torch.zeros(out, dtype=torch.long)
    mu_ascending = mu.flip(0)
    mu_prefix = torch.cat([mu.new_zeros(1), mu.cumsum(0)])  # mu_prefix[k] = sum of the k largest

    def counts_at_least(t: float) -> torch.Tensor:  # per row, #{j : lam_i * mu_j >= t}, t > 0
        return inn - torch.searchsorted(mu_ascending, t / lam, right=False)

    def mass(counts: torch.Tensor) -> float:
        return (lam * mu_prefix[counts]).sum().item()

    lo = (lam[lam > 0].min() * mu[mu > 0].min()).item() / 2  # every positive pair: mass = total >= target
    hi = (lam[0] * mu[0]).item() * 2.0                    # no pair: mass 0 < target
    lo_counts, hi_counts = counts_at_least(lo), counts_at_least(hi)
    for _ in range(400):
        if int((lo_counts - hi_counts).sum()) <= band_limit:
            break
        mid = (lo * hi) ** 0.5  # geometric: products span many orders of magnitude
        if not lo < mid < hi:
            break
        mid_counts = counts_at_least(mid)
        if mass(mid_counts) >= target:
            lo, lo_counts = mid, mid_counts
        else:
            hi, hi_counts = mid, mid_counts
    # Exact finish on the band lo <= product < hi: rows in order, columns ascending within a row,
    # so a stable descending sort keeps each row's choice a prefix even among equal products.
    widths = lo_counts - hi_counts
    rows = torch.repeat_interleave(torch.arange(out), widths)
    cols = hi_counts[rows] + (torch.arange(len(rows)) - torch.repeat_interleave(widths.cumsum(0) - widths, widths))
    values = lam[rows] * mu[cols]
    order = torch.sort(values, descending=True, stable=True).indices
    need = target - mass(hi_counts)
    taken = int(torch.searchsorted(values[order].cumsum(0), torch.tensor([need], dtype=torch.float64)).item()) + 1
    taken = min(taken, len(order)) if need > 0 else 0
    return hi_counts + torch.bincount(rows[order[:taken]], minlength=out)


def kfac_edit_weight(weight: torch.Tensor, A: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
                     G: torch.Tensor | tuple[torch.Tensor, torch.Tensor], rho: float
                     ) -> tuple[torch.Tensor, dict[str, Any]]:
    """W' (fp32, out x in) keeping the top-curvature components of `weight` (out x in). A and G are
    the factors or their precomputed eigh_descending results."""
    mu, U_A = A if isinstance(A, tuple) else eigh_descending(A)
    lam, U_G = G if isinstance(G, tuple) else eigh_descending(G)
    W = weight.detach().float()
    counts = keep_counts(lam, mu, rho).to(W.device)
    removed = torch.arange(W.shape[1], device=W.device)[None, :] >= counts[:, None]
    C = U_G.T @ W @ U_A
    W_new = W - U_G @ (C * removed) @ U_A.T if removed.any() else W.clone()
    lam64, mu64 = lam.double().cpu(), mu.double().cpu()
    total = lam64.sum() * mu64.sum()
    mu_prefix = torch.cat([mu64.new_zeros(1), mu64.cumsum(0)])
    kept_mass = (lam64 * mu_prefix[counts.cpu()]).sum()
    kept = int(counts.sum())
    return W_new, {"mass_kept": float(kept_mass / total) if total > 0 else 1.0,
                   "components_total": W.numel(), "components_kept": kept,
                   "components_removed": W.numel() - kept}


# ---------------------------------------------------------------------------------------------
# The method
# ---------------------------------------------------------------------------------------------

def _check_fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigError(f"{name} must be a number in (0, 1], got {value!r}")
    return float(value)


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


class KFAC(Method):
    """K-FAC curvature edit. Settings are the keys of conf/method/kfac.yaml."""

    needs = ()
    shards_statistics = True  # under torchrun every rank reads a shard of the statistics stream

    def __init__(self, rho: float = 0.99, layers: list[int] | None = None,
                 matrices: tuple[str, ...] = ("gate", "up", "down"), overrides: dict | None = None,
                 labels: str = "sampled", tokens: int = 200_000, seq_len: int = 128,
                 batch_size: int = 8, dtype: str | None = None, module_pattern: str | None = None,
                 images: int = 10_000, layers_per_pass: int | None = None) -> None:
        from models.architectures import check_layers_setting, check_matrices_setting

        self.rho = _check_fraction("rho", rho)
        self.layers = check_layers_setting(layers)
        self.matrices = check_matrices_setting(matrices)
        self.overrides = self._check_overrides(overrides or {})
        if labels not in LABELS:
            raise ConfigError(f"labels must be one of {', '.join(LABELS)}, got {labels!r}")
        self.labels = labels
        self.tokens = _check_positive_int("tokens", tokens)
        self.seq_len = _check_positive_int("seq_len", seq_len)
        if self.seq_len < 2:
            raise ConfigError(f"seq_len must be >= 2 (the last position is dropped), got {seq_len}")
        self.batch_size = _check_positive_int("batch_size", batch_size)
        self.images = _check_positive_int("images", images)
        if dtype not in DTYPES:
            raise ConfigError(f"dtype (autocast for the statistics pass) must be one of "
                              f"{', '.join(str(d) for d in DTYPES)}, got {dtype!r}")
        self.dtype = dtype
        if module_pattern is not None and (self.overrides or layers is not None):
            raise ConfigError("module_pattern selects modules by name: leave layers and overrides unset with it")
        self.module_pattern = module_pattern
        self.layers_per_pass = None if layers_per_pass is None else _check_positive_int("layers_per_pass", layers_per_pass)

    @staticmethod
    def _check_overrides(overrides: Any) -> dict[int, dict[str, float]]:
        """{"23": {"gate": 0.6}} -> {23: {"gate": 0.6}}."""
        from models.architectures import MATRICES

        if not isinstance(overrides, dict):
            raise ConfigError(f"overrides must map layer index -> {{matrix: rho}}, got {overrides!r}")
        checked: dict[int, dict[str, float]] = {}
        for layer, per_matrix in overrides.items():
            try:
                index = int(layer)
            except (TypeError, ValueError):
                raise ConfigError(f"overrides keys must be layer indices, got {layer!r}") from None
            if not isinstance(per_matrix, dict) or any(m not in MATRICES for m in per_matrix):
                raise ConfigError(f"overrides[{layer!r}] must map matrices {list(MATRICES)} to rho, got {per_matrix!r}")
            checked[index] = {m: _check_fraction(f"overrides[{layer!r}][{m!r}]", r) for m, r in per_matrix.items()}
        return checked

    # -- which modules, at which rho -------------------------------------------------------
    def targets(self, model: torch.nn.Module) -> dict[str, tuple[torch.nn.Module, float]]:
        """Module name -> (module, rho) for every matrix to edit."""
        from models.architectures import find_mlp_linears, modules_matching, num_layers, resolve_matrices

        if self.module_pattern is not None:
            return {name: (m, self.rho) for name, m in modules_matching(model, self.module_pattern).items()}
        count = num_layers(model)
        overrides = {}
        for layer, per_matrix in self.overrides.items():
            if not -count <= layer < count:
                raise ConfigError(f"overrides names layer {layer}: the model has layers 0..{count - 1}")
            overrides[layer % count] = per_matrix
        found = find_mlp_linears(model, self.layers, resolve_matrices(model, self.matrices)[0])
        for layer, per_matrix in overrides.items():
            for matrix in per_matrix:
                if not any(f.layer == layer and f.role == matrix for f in found):
                    raise ConfigError(f"overrides names layer {layer} {matrix}, which is not among the "
                                      f"edited layers/matrices ({self.layers or 'all'} x {list(self.matrices)})")
        return {f.name: (f.module, overrides.get(f.layer, {}).get(f.role, self.rho)) for f in found}

    def check(self, model: torch.nn.Module) -> None:
        self.targets(model)  # raises ConfigError for layers / overrides / patterns the model lacks

    # -- statistics, cached ------------------------------------------------------------------
    def factors(self, model: torch.nn.Module, modules: dict[str, torch.nn.Module],
                ctx: MethodContext) -> tuple[Factors, dict[str, Any]]:
        """The factors from the cache if present, else collected and cached; plus report facts."""
        source = ctx.stats
        if source is None:
            raise DataError("K-FAC needs a statistics stream: the model brings neither text nor images")
        budget = {"tokens": self.tokens, "images": self.images}[source.unit]
        settings = {"format": FACTOR_FORMAT, "model_key": ctx.model_key, "unit": source.unit,
                    "model_dtype": str(next(model.parameters()).dtype),
                    "data_fingerprint": source.fingerprint(self.seq_len), "budget": budget,
                    "seq_len": self.seq_len if source.unit == "tokens" else None, "batch_size": self.batch_size,
                    "labels": self.labels, "seed": ctx.seed if self.labels == "sampled" else None,
                    "dtype": self.dtype, "modules": sorted(modules)}
        path = Path(ctx.cache_dir) / "kfac" / f"{canonical_hash(settings, 24)}.safetensors"
        rank, world = distributed_world()
        # Jobs sharing the cache compute the file once: the first takes the lock and writes it,
        # the others wait and read it. Under torchrun rank 0 decides hit or miss for all ranks.
        with file_lock(path) if rank == 0 else contextlib.nullcontext():
            cached = load_factors(path, settings, modules) if rank == 0 else None
            if world > 1:
                import torch.distributed as dist

                decision = [cached is not None]
                dist.broadcast_object_list(decision, src=0)
                if decision[0] and rank != 0:  # rank 0 edits from its copy; this rank is done
                    return Factors(A={}, G={}, positions=0, inputs=0), {"factor_cache": "hit", "rank": rank}
            if cached is not None:
                return cached, {"factor_cache": "hit", "factor_file": str(path), "collection_seconds": 0.0}
            start = time.perf_counter()
            step = None
            if ctx.progress is not None:
                task = ctx.progress.add_task("K-FAC statistics", total=budget * len(self.passes(modules)) // world)
                step = lambda count: ctx.progress.advance(task, count)  # noqa: E731
            passes = self.passes(modules)
            parts = []
            for chunk in passes:
                part = collect_kfac_factors(model, chunk, source.batches(budget, self.batch_size, self.seq_len),
                                            labels=self.labels, source=source, autocast_dtype=DTYPES[self.dtype],
                                            seed=ctx.seed, on_batch=step)
                # Several passes: finished factors wait in host memory, so the accelerator holds one
                # pass's factors at a time (the edit moves each back for its eigendecomposition).
                parts.append(factors_to(part, torch.device("cpu")) if len(passes) > 1 else part)
            factors = merge_factors(parts)
            check_finite(factors, self.dtype)
            if rank == 0:
                save_factors(path, factors, settings)
        return factors, {"factor_cache": "miss", "factor_file": str(path), "passes": len(parts),
                         "processes": world, "collection_seconds": round(time.perf_counter() - start, 3)}

    def passes(self, modules: dict[str, torch.nn.Module]) -> list[dict[str, torch.nn.Module]]:
        """The modules hooked in each statistics pass: all at once, or `layers_per_pass` layers at
        a time when all factors do not fit in memory together (each pass reads the whole stream)."""
        if self.layers_per_pass is None:
            return [modules]
        by_layer: dict[Any, dict[str, torch.nn.Module]] = {}
        for name, module in modules.items():
            by_layer.setdefault(layer_of(name), {})[name] = module
        groups = list(by_layer.values())
        return [{name: m for group in groups[i:i + self.layers_per_pass] for name, m in group.items()}
                for i in range(0, len(groups), self.layers_per_pass)]

    # -- the edit ----------------------------------------------------------------------------
    def edit(self, weight: torch.Tensor, A_eig: tuple[torch.Tensor, torch.Tensor],
             G_eig: tuple[torch.Tensor, torch.Tensor], rho: float,
             generator: torch.Generator) -> tuple[torch.Tensor, dict[str, Any]]:
        """The new (out, in) weight and the facts to report; subclasses choose other components."""
        return kfac_edit_weight(weight, A_eig, G_eig, rho)

    def apply(self, model: torch.nn.Module, ctx: MethodContext) -> dict[str, Any]:
        from models.architectures import absent_note, resolve_matrices, set_weight_out_in, weight_as_out_in

        targets = self.targets(model)
        absent = {} if self.module_pattern is not None else absent_note(model, *resolve_matrices(model, self.matrices))
        factors, report = self.factors(model, {name: m for name, (m, _) in targets.items()}, ctx)
        if distributed_world()[0] != 0:  # under torchrun rank 0 edits and evaluates
            return {**report, "changed": {}}
        eigen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # shared A: decompose once
        generator = torch.Generator().manual_seed(ctx.seed)  # used by random_ablation only
        changed = {}
        for name, (module, rho) in targets.items():
            start = time.perf_counter()
            weight = weight_as_out_in(module)
            A, G = factors.A[name], factors.G[name]
            if id(A) not in eigen:
                eigen[id(A)] = eigh_descending(A.to(weight.device))
            lam_U = eigh_descending(G.to(weight.device))
            if rho < 1 and float(lam_U[0].sum()) * float(eigen[id(A)][0].sum()) <= 0:
                raise DataError(f"{name} has zero curvature mass (A or G is 0): the statistics never "
                                "reached this layer; nothing to rank components by")
            new_weight, facts = self.edit(weight, eigen[id(A)], lam_U, rho, generator)
            set_weight_out_in(module, new_weight)
            changed[f"{name}.weight"] = {"rho": rho, **facts, "seconds": round(time.perf_counter() - start, 4)}
        report.update({"changed": changed, "positions": factors.positions,
                       ctx.stats.unit: factors.inputs,
                       "labels": self.labels, **absent})
        return report
