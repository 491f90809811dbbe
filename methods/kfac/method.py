"""The K-FAC method: its settings, which modules it edits at which rho, the cached statistics
and the edit of every target (the maths: methods/kfac/__init__.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from core.errors import ConfigError, DataError
from core.hashing import canonical_hash
from core.io import file_lock
from core.runcolumns import MethodColumn
from methods.base import Method, MethodContext
import methods.kfac.statistics as statistics  # called through the module: tools and tests may wrap the collector
from methods.kfac.cache import FACTOR_FORMAT, load_factors, save_factors
from methods.kfac.distributed import distributed_world
from methods.kfac.edit import kfac_edit_weight
from methods.kfac.spectrum import eigh_descending
from methods.kfac.statistics import DTYPES, LABELS, Factors, check_finite, factors_to, layer_of, merge_factors


def _check_fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigError(f"{name} must be a number in (0, 1], got {value!r}")
    return float(value)


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


def duration(seconds: float) -> str:
    """'45 s', '12 min', '3 h 20 min'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes // 60} h {minutes % 60} min"


class StatisticsClock:
    """The statistics pass's per-batch callback: advances the progress bar, and after the first
    batches prints once the units the pass will read and the time reading them all takes, at the
    rate measured over batches 2..MEASURED+1 (the first one pays for warm-up); a stream of fewer
    batches is measured over all of them."""

    MEASURED = 3

    def __init__(self, mine: int, total: int, unit: str, passes: int, processes: int, echo: bool = True,
                 advance: Callable[[int], None] | None = None, out: Callable[[str], None] | None = None) -> None:
        self.mine, self.total, self.unit, self.passes, self.processes = mine, total, unit, passes, processes
        self.echo, self.advance = echo, advance
        self.out = out or (lambda line: print(line, flush=True))
        self.start = time.perf_counter()
        self.batches = self.done = 0
        self.after_first: tuple[float, int] | None = None
        self.said = False

    def __call__(self, count: int) -> None:
        now = time.perf_counter()
        self.batches, self.done = self.batches + 1, self.done + count
        if self.advance is not None:
            self.advance(count)
        if self.batches == 1:
            self.after_first = (now, self.done)
        if self.said or not self.echo or (self.batches <= self.MEASURED and self.done < self.mine):
            return
        self.said = True
        since, done_then = self.after_first if self.batches > 1 else (self.start, 0)
        rate = (self.done - done_then) / max(now - since, 1e-9)
        over = (f"{self.passes} passes over {self.total // self.passes:,}" if self.passes > 1 else "one pass")
        over += f", {self.processes} processes" if self.processes > 1 else ""
        self.out(f"K-FAC statistics: reading {self.total:,} {self.unit} ({over}); about "
                 f"{duration(self.mine / rate)} in all at {rate:,.0f} {self.unit}/s "
                 f"(measured over {self.batches - (self.batches > 1)} batch{'es' if self.batches > 2 else ''})")


class KFAC(Method):
    """K-FAC curvature edit. Settings are the keys of conf/method/kfac.yaml."""

    needs = ()
    reads_statistics = True  # the factors come from the model's statistics stream
    shards_statistics = True  # under torchrun every rank reads a shard of the statistics stream
    columns = (
        MethodColumn("rho", ("config.method.rho",), "setting", label="ρ"),
        MethodColumn("factor_cache", ("method.report.factor_cache",), "count", what="reused cached statistics",
                     counts="hit"),
        MethodColumn("statistics", ("method.report.tokens", "method.report.images"), "amount"),
    )

    def __init__(self, rho: float = 0.99, layers: list[int] | None = None,
                 matrices: tuple[str, ...] = ("gate", "up", "down"), overrides: dict | None = None,
                 labels: str = "sampled", tokens: int = 200_000, seq_len: int = 128,
                 batch_size: int = 8, dtype: str | None = None, module_pattern: str | None = None,
                 images: int = 10_000, layers_per_pass: int | None = None, checkpointing: bool = False,
                 band_at: float | None = None, band_size: int = 3) -> None:
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
        if band_at is not None and (isinstance(band_at, bool) or not isinstance(band_at, (int, float))
                                    or not 0 <= band_at <= 1):
            raise ConfigError(f"band_at must be null or a fraction of the depth in [0, 1], got {band_at!r}")
        self.band_at = None if band_at is None else float(band_at)
        self.band_size = _check_positive_int("band_size", band_size)
        if self.band_at is not None and layers is not None:
            raise ConfigError(f"layers {layers!r} and band_at {band_at!r} both choose layers: set "
                              "method.band_at=null to name layers, or method.layers=null to use the band")
        if module_pattern is not None and (self.overrides or layers is not None or self.band_at is not None):
            raise ConfigError("module_pattern selects modules by name: leave layers, band_at and overrides unset with it")
        self.module_pattern = module_pattern
        self.layers_per_pass = None if layers_per_pass is None else _check_positive_int("layers_per_pass", layers_per_pass)
        if not isinstance(checkpointing, bool):
            raise ConfigError(f"checkpointing must be true or false, got {checkpointing!r}")
        self.checkpointing = checkpointing

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
    def chosen_layers(self, depth: int) -> list[int] | None:
        """The layers edited in a model of `depth` blocks: `layers` as given, or the band of
        `band_size` consecutive layers around layer floor(band_at * depth) (that layer and
        (band_size - 1) // 2 below it, the rest above), moved inside 0..depth-1. band_at 0.75:
        23-25 of 32 (the paper's 7B layers), 11-13 of 16, 21-23 of 30."""
        if self.band_at is None:
            return self.layers
        size = min(self.band_size, depth)
        start = int(self.band_at * depth) - (size - 1) // 2
        start = max(0, min(start, depth - size))
        return list(range(start, start + size))

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
        found = find_mlp_linears(model, self.chosen_layers(count), resolve_matrices(model, self.matrices)[0])
        for layer, per_matrix in overrides.items():
            for matrix in per_matrix:
                if not any(f.layer == layer and f.role == matrix for f in found):
                    raise ConfigError(f"overrides names layer {layer} {matrix}, which is not among the "
                                      f"edited layers/matrices ({self.chosen_layers(count) or 'all'} x {list(self.matrices)})")
        return {f.name: (f.module, overrides.get(f.layer, {}).get(f.role, self.rho)) for f in found}

    def check(self, model: torch.nn.Module) -> None:
        self.targets(model)  # raises ConfigError for layers / overrides / patterns the model lacks
        if self.checkpointing:
            statistics.check_checkpointing(model)
        positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        if self.reads_statistics and isinstance(positions, int) and self.seq_len > positions:
            raise ConfigError(f"seq_len={self.seq_len} is longer than the model's {positions} positions; "
                              f"set method.seq_len={positions} or less")

    def check_data(self, data: Any) -> None:
        """The statistics text must fill one window of seq_len tokens (read up to there only)."""
        stats = data.statistics() if self.reads_statistics else None
        if stats is not None and stats.unit == "tokens" and stats.available(self.seq_len, self.seq_len) == 0:
            raise ConfigError(f"the statistics text (model.data.stats) holds fewer than seq_len={self.seq_len} "
                              f"tokens; lower method.seq_len or give more text")

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
                # The budget is a setting, reported the same whether the factors were computed or read
                return cached, {"factor_cache": "hit", "factor_file": str(path),
                                f"{source.unit}_requested": budget, "collection_seconds": 0.0}
            start = time.perf_counter()
            passes = self.passes(modules)
            available = source.available(budget, self.seq_len)
            # A budget the stream cannot fill is said, not silently capped (a window is the token unit)
            if rank == 0 and available + (self.seq_len if source.unit == "tokens" else 1) <= budget:
                print(f"K-FAC {source.unit}: {budget:,} requested, the stream has {available:,}; "
                      f"using {available:,}", flush=True)
            progress_task = None
            if ctx.progress is not None:
                progress_task = ctx.progress.add_task("K-FAC statistics", total=available * len(passes) // world)
            clock = StatisticsClock(available * len(passes) // world, available * len(passes), source.unit,
                                    len(passes), world, echo=rank == 0,
                                    advance=None if progress_task is None else
                                    (lambda count: ctx.progress.advance(progress_task, count)))
            parts = []
            with statistics.activation_checkpointing(model, self.checkpointing):
                for chunk in passes:
                    part = statistics.collect_kfac_factors(
                        model, chunk, source.batches(budget, self.batch_size, self.seq_len), labels=self.labels,
                        source=source, autocast_dtype=DTYPES[self.dtype], seed=ctx.seed, on_batch=clock)
                    # Several passes: finished factors wait in host memory, so the accelerator holds one
                    # pass's factors at a time (the edit moves each back for its eigendecomposition).
                    parts.append(factors_to(part, torch.device("cpu")) if len(passes) > 1 else part)
            factors = merge_factors(parts)
            check_finite(factors, self.dtype)
            if rank == 0:
                save_factors(path, factors, settings)
        return factors, {"factor_cache": "miss", "factor_file": str(path), f"{source.unit}_requested": budget,
                         "passes": len(parts),
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
        if self.band_at is not None:  # the layers the band chose in this model
            from models.architectures import num_layers

            report["layers"] = self.chosen_layers(num_layers(model))
        report.update({"changed": changed, "positions": factors.positions,
                       ctx.stats.unit: factors.inputs,
                       "labels": self.labels, **absent})
        return report
