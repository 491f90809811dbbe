"""What every loaded model is: the module, its tokenizer, its identity, and the data it brings.

Knowledge of a model kind lives here and in its loader, not in the methods: a method asks the
loaded model for its statistics stream (`StatisticsSource`: batches, the loss of a batch, which
positions count) and for its forget / retain sets, and never branches on what kind of model it is.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from core.errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch

DTYPE_NAMES = ("float32", "bfloat16", "float16")


class StatisticsSource(ABC):
    """A model kind's statistics stream, for curvature methods (K-FAC and its relatives)."""

    unit: ClassVar[str]  # what a budget counts: "tokens" or "images"

    @abstractmethod
    def batches(self, budget: int, batch_size: int, seq_len: int) -> Iterator[Any]:
        """Batches of training-distribution inputs, `budget` units in all (seq_len: LMs only)."""

    @abstractmethod
    def loss(self, model: "torch.nn.Module", batch: Any, labels: str,
             generator: "torch.Generator") -> tuple["torch.Tensor", int]:
        """(mean loss of the batch, positions it averages over); labels 'sampled' draws them from
        the model's softmax (true Fisher), 'empirical' uses the gold ones."""

    @abstractmethod
    def positions(self, activations: "torch.Tensor") -> "torch.Tensor":
        """The rows of a layer's inputs or output gradients that count, as (n, d)."""

    @abstractmethod
    def count(self, batch: Any) -> int:
        """Units (tokens or images) in a batch."""

    @abstractmethod
    def fingerprint(self, seq_len: int) -> str | None:
        """Identity of the stream's first batch (for cache keys), or None if it is empty."""

    def available(self, budget: int, seq_len: int) -> int:
        """Units `batches(budget, ...)` gives: `budget` or less, less where the stream ends first
        (counted by reading the stream; a source that knows its size may answer faster)."""
        return sum(self.count(batch) for batch in self.batches(budget, 1, seq_len))


def sample_labels(logits: "torch.Tensor", generator: "torch.Generator") -> "torch.Tensor":
    """One label per row of (n, classes) logits, drawn from the model's own softmax.

    Memory: one fp32 (n, classes) buffer, the probabilities (softmax upcasts bf16 logits itself,
    no separate fp32 copy), and the finiteness check looks at the n row sums, not an n x classes
    mask (a NaN or inf logit makes its row's softmax, hence its sum, NaN)."""
    import torch

    probs = torch.softmax(logits.detach(), dim=-1, dtype=torch.float32)
    if not torch.isfinite(probs.sum(dim=-1)).all():
        raise DataError("the model produced NaN/inf logits in the statistics pass "
                        "(try method.dtype=float32, or check the model's weights)")
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def batched(items: Iterable[Any], size: int, stack: Callable[[list], Any]) -> Iterator[Any]:
    """Groups of `size` items (the last may be shorter), each combined by `stack`."""
    rows: list = []
    for item in items:
        rows.append(item)
        if len(rows) == size:
            yield stack(rows)
            rows = []
    if rows:
        yield stack(rows)


class ModelData:
    """The data sets a model brings for methods. The base brings none: each reader says so in one
    line. Loaders return a subclass that knows where its model's data is."""

    def statistics(self) -> StatisticsSource | None:
        """The statistics stream, or None when the model brings none."""
        return None

    def forget(self) -> list[list[int]]:
        raise DataError("this model brings no forget set (memorized examples)")

    def retain(self) -> list[list[int]]:
        raise DataError("this model brings no retain set (clean text)")

    def check(self, kinds: Iterable[str]) -> None:
        """Read the data sets `kinds` ("stats", "forget", "retain": what a method reads) far enough
        that a missing, empty or unreadable one is a one-line error now: the pipeline calls this
        with the suite's data checks, before the baseline. Default: the statistics stream exists
        and the forget / retain sets are read (each must hold at least one example)."""
        for kind in kinds:
            if kind == "stats":
                if self.statistics() is None:
                    raise DataError("this method reads a statistics stream, and the model brings none")
            elif kind in ("forget", "retain"):
                getattr(self, kind)()


@dataclasses.dataclass
class LoadedModel:
    model: "torch.nn.Module"
    tokenizer: Any  # None for image classifiers
    name: str
    key: str  # identity of the weights, for cache keys (factor files, baselines)
    data: dict[str, Path]  # files the model brings (organism ground truth), by name: `model:<name>`
    device: "torch.device"
    kind: str = "causal_lm"  # "causal_lm" | "image_classifier": what its tasks can ask of it
    sources: ModelData = dataclasses.field(default_factory=ModelData)  # statistics, forget, retain


def pick_device(spec: str) -> "torch.device":
    """'auto' picks CUDA, then Apple MPS, then CPU; anything else is passed to torch.device."""
    import torch

    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device '{spec}' is not valid; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{spec}' asked for, but CUDA is not available here; use device=auto or cpu")
    return device


def parse_dtype(name: str, device: "torch.device") -> "torch.dtype":
    """'auto' is bf16 where it is fast (CUDA) and fp32 elsewhere; else one of DTYPE_NAMES."""
    import torch

    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name not in DTYPE_NAMES:
        raise ConfigError(f"model.dtype '{name}' is not valid; use auto, {', '.join(DTYPE_NAMES)}")
    return getattr(torch, name)
