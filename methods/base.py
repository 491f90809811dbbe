"""The interface every editing method implements.

A method receives the model and a `MethodContext`, edits the model **in place**, and returns a
report (a JSON-serialisable dict) of what it changed. The pipeline builds the context and hands a
method only the data it declares in `needs`: a method that does not ask for the forget set never
sees it, and no method ever sees the validation split.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from core.runcolumns import MethodColumn

if TYPE_CHECKING:  # the interface imports cheaply: torch loads when a method runs
    import torch

    from models.base import StatisticsSource

# What a method may ask for. "forget": memorized examples it should remove; "retain": clean text
# it should keep working on. The statistics stream (general text) is always available.
DATA_KINDS = ("forget", "retain")


class DataNotProvided(RuntimeError):
    """A method used a data set it did not declare in `Method.needs`."""


@dataclasses.dataclass
class MethodContext:
    """Everything a method may use besides the model itself."""

    tokenizer: Any
    device: "torch.device"
    seed: int
    cache_dir: Path  # per-model cache (factor files etc.); methods key files by their own settings
    model_key: str  # stable identity of the loaded weights, for cache keys
    # The model's statistics stream (general text windows, or training images) with its loss and
    # counted positions: curvature methods use it without knowing the model kind.
    stats: "StatisticsSource | None" = None
    forget_set: list[list[int]] | None = None  # token ids of memorized examples (prefix + suffix)
    retain_set: list[list[int]] | None = None  # token ids of clean text windows
    progress: Any = None  # a rich.progress.Progress or core.progress.LogProgress (same calls), or None

    def forget(self) -> list[list[int]]:
        if self.forget_set is None:
            raise DataNotProvided("this method did not declare needs = ('forget', ...)")
        return self.forget_set

    def retain(self) -> list[list[int]]:
        if self.retain_set is None:
            raise DataNotProvided("this method did not declare needs = (..., 'retain')")
        return self.retain_set


class Method(ABC):
    """Base class. Subclasses take their settings as keyword arguments (the YAML's keys, less
    `name`), validate them in `__init__` (raise `core.errors.ConfigError`), and implement
    `apply`."""

    # Data the method needs besides the statistics stream: a subset of DATA_KINDS.
    needs: ClassVar[tuple[str, ...]] = ()
    # True if the method reads the statistics stream (K-FAC and its relatives): the pipeline then
    # checks the model's statistics data with the suite's data, before the baseline.
    reads_statistics: ClassVar[bool] = False
    # Under torchrun: True if every rank reads a shard of the statistics stream and the method
    # adds the ranks' statistics up itself (K-FAC); False: ranks other than 0 stop after loading.
    shards_statistics: ClassVar[bool] = False
    # Columns the method adds to the run table and the leaderboard (core.runcolumns); the
    # pipeline records them in the run file, the leaderboard reads them from there.
    columns: ClassVar[tuple[MethodColumn, ...]] = ()

    def data_used(self) -> tuple[str, ...]:
        """The model data sets this method reads: "stats" if it reads the statistics stream, then
        `needs` (models.base.ModelData.check reads each before the baseline)."""
        return (("stats",) if self.reads_statistics else ()) + tuple(self.needs)

    def check(self, model: "torch.nn.Module") -> None:
        """Check the settings against the loaded model (e.g. that the layers named exist); the
        pipeline calls this right after loading, before the baseline evaluation. Raise
        `core.errors.ConfigError`. Default: nothing to check."""

    def check_data(self, data: Any) -> None:
        """Check the settings against the data the method reads (`data`: the model's
        models.base.ModelData, already checked by its own `check`), e.g. that the forget examples
        are longer than prefix_len; the pipeline calls this before the baseline. Raise
        `core.errors.ConfigError`. Default: nothing to check."""

    @abstractmethod
    def apply(self, model: "torch.nn.Module", ctx: MethodContext) -> dict[str, Any]:
        """Edit `model` in place; return a JSON-serialisable report of what changed. Its
        `changed` maps each edited matrix to facts about it; a method that removes components
        (eigenbasis pairs, singular values, neurons, weights) says how many of how many as
        `components_removed` and `components_total`: the guard on destructive edits
        (core.measures.removal_warning) warns when more than 90 % of them went."""


def build_method(method_cfg: dict[str, Any]) -> Method:
    """The method a config's `method:` block names, built with its settings (a bad setting is
    one ConfigError line naming the method)."""
    from core import registry

    params = {k: v for k, v in method_cfg.items() if k != "name"}
    cls = registry.load_class("method", method_cfg["name"], Method)
    return registry.instantiate(cls, params, f"method {method_cfg['name']}")
