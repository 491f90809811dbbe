"""K-FAC's statistics: the factors A = E[x x^T] and G = E[g g^T] of every edited linear layer,
collected by forward and backward hooks in one pass over the model's statistics stream.

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

Gradient checkpointing (transformers' `gradient_checkpointing_enable()`, reentrant or not, with or
without `enable_input_require_grads()`; or the method's `checkpointing: true`): each checkpointed
block runs forward twice, once in the forward pass and again in the backward pass to rebuild its
activations, so the hooks fire twice. Each module's A is taken from its first call of a batch (the
recompute sees the very same values: dropout is off), and its G hook goes on the first of its
outputs that is part of the graph the backward pass runs (the recomputed one under reentrant
checkpointing, whose forward runs without grad). Inputs are not made leaves then (the recompute
must build the same graph); the embedding output is made to require grad instead, and the
backward pass runs down to it (reentrant checkpointing allows no `inputs` to stop at): the pass
costs more compute than the plain one, for less memory. The factors equal the plain pass's
(tests/methods/test_kfac.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

from core.errors import ConfigError, DataError
from methods.kfac.distributed import all_reduce_sums, distributed_world
from models.base import DTYPE_NAMES, StatisticsSource

LABELS = ("sampled", "empirical")
# Autocast dtype of the statistics pass: None (off) or a model dtype name (models/base.py).
DTYPES = {None: None, **{name: getattr(torch, name) for name in DTYPE_NAMES}}


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


def checkpointing_on(model: torch.nn.Module) -> bool:
    """Whether the model recomputes activations in the backward pass: transformers marks every
    checkpointed block with `gradient_checkpointing = True` (its own `is_activation_checkpointing`
    reads the same flags)."""
    return any(getattr(m, "gradient_checkpointing", False) is True for m in model.modules())


def check_checkpointing(model: torch.nn.Module) -> None:
    """K-FAC's `checkpointing: true` needs a model transformers can checkpoint."""
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise ConfigError(f"checkpointing: {type(model).__name__} does not support gradient checkpointing "
                          "(transformers' supports_gradient_checkpointing); set method.checkpointing=false")


@contextlib.contextmanager
def activation_checkpointing(model: torch.nn.Module, wanted: bool) -> Iterator[None]:
    """K-FAC's `checkpointing: true`: transformers' gradient checkpointing (non-reentrant) on for
    the statistics pass and off again after it, unless the model already had it on."""
    if not wanted or checkpointing_on(model):
        yield
        return
    check_checkpointing(model)
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:  # transformers >= 5 (the older name warns there)
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
        disable = model.activation_checkpointing_disable
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        disable = model.gradient_checkpointing_disable
    try:
        yield
    finally:
        disable()


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
    first edited layer: gradients are taken w.r.t. the edited layers' inputs, never the weights
    (under gradient checkpointing down to the embedding output: module docstring).

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
    checkpointing = checkpointing_on(model)  # hooks fire again in the recompute (module docstring)
    a_seen: set[str] = set()  # checkpointing: modules whose A this batch has added (their first call)
    g_seen: set[str] = set()  # checkpointing: modules whose output gradient this batch has a hook on

    def add_outer(sums: dict[str, torch.Tensor], name: str, rows: torch.Tensor, alpha: float = 1.0) -> None:
        rows = rows.float()
        if name not in sums:
            sums[name] = torch.zeros(rows.shape[-1], rows.shape[-1], dtype=torch.float32, device=rows.device)
        sums[name].addmm_(rows.T, rows, alpha=alpha)

    def before_forward(name: str):
        def hook(module: torch.nn.Module, args: tuple) -> tuple | None:
            if checkpointing and name in a_seen:  # the recompute of a checkpointed block: A is in
                return None
            a_seen.add(name)
            x = args[0]
            entry = batch_inputs.get(id(x))
            if entry is None or entry[0] is not x:
                # Parameters are frozen, so the first edited layer's input carries no graph: make
                # it a leaf that requires grad; later edited layers' inputs already do. Under
                # checkpointing the recompute must build the graph the forward built: no leaf.
                used = x if x.requires_grad or checkpointing else x.detach().requires_grad_()
                entry = batch_inputs[id(x)] = (x, used, name)
                add_outer(a_sums, name, positions_of(x.detach()))
            if a_owner.setdefault(name, entry[2]) != entry[2]:
                raise RuntimeError(f"{name} shared its input with {a_owner[name]} before, now with {entry[2]}")
            return (entry[1],) + tuple(args[1:])
        return hook

    def after_forward(name: str):
        def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
            if checkpointing and (name in g_seen or not output.requires_grad):  # see the module docstring
                return
            g_seen.add(name)

            def on_grad(grad: torch.Tensor) -> None:
                # G is accumulated here, layer by layer as the backward pass reaches it: no
                # layer's output gradient outlives its own hook.
                add_outer(g_sums, name, positions_of(grad.detach()), alpha=scale[0] ** 2)
            output.register_hook(on_grad)
        return hook

    def embedding_requires_grad(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
        if isinstance(output, torch.Tensor) and not output.requires_grad and output.is_floating_point():
            output.requires_grad_(True)  # what transformers' enable_input_require_grads() does

    handles = []
    for name, module in modules.items():
        handles.append(module.register_forward_pre_hook(before_forward(name)))
        handles.append(module.register_forward_hook(after_forward(name)))
    if checkpointing:
        embeddings = getattr(model, "get_input_embeddings", lambda: None)()
        if not isinstance(embeddings, torch.nn.Module):
            raise ConfigError(f"{type(model).__name__} has gradient checkpointing on but no input embeddings "
                              "(get_input_embeddings) to carry the gradient: turn checkpointing off for K-FAC")
        handles.append(embeddings.register_forward_hook(embedding_requires_grad))
    requires_grad = {p: p.requires_grad for p in model.parameters()}
    was_training = model.training
    dropout_p = {m: m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    config = getattr(model, "config", None)
    use_cache = getattr(config, "use_cache", None)
    positions = inputs = 0
    try:
        if checkpointing and use_cache:  # no cache to keep: transformers would warn that it drops it
            config.use_cache = False
        for p in model.parameters():
            p.requires_grad_(False)
        model.train()  # as the paper; dropout is switched off so train mode changes nothing else
        for m in dropout_p:
            m.p = 0.0
        for index, batch in enumerate(batches):
            if index % world != rank:
                continue
            batch_inputs.clear()
            a_seen.clear()
            g_seen.clear()
            with torch.enable_grad(), torch.autocast(device.type, dtype=autocast_dtype or torch.bfloat16,
                                                     enabled=autocast_dtype not in (None, torch.float32)):
                loss, n = source.loss(model, batch, labels, label_generator(seed, index, device))
            scale[0] = float(n)
            # Only the leaves made above (the first edited layer's input): the backward pass runs
            # through every hooked output on its way there, and no other input's gradient is made.
            leaves = [used for x, used, _ in batch_inputs.values() if used is not x]
            if checkpointing and loss.requires_grad:  # down to the embedding output (module docstring)
                loss.backward()
            elif leaves:
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
        if checkpointing and use_cache:
            config.use_cache = use_cache
        batch_inputs.clear()
    if world > 1 and distributed_world()[1] == world:  # a bare shard (tests, tools) is not reduced
        positions, inputs = all_reduce_sums(a_sums, g_sums, a_owner, modules, positions, inputs, device)
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
