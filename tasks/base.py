"""The interface every evaluation task implements.

A task scores a model on one data set and returns a `TaskResult`: named metrics, the number of
examples, which metric is the headline one, and per-example values so that the leaderboard can
put confidence intervals on every rate (Wilson for proportions, bootstrap for means).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from core.errors import ConfigError, DataError

if TYPE_CHECKING:  # the interface imports cheaply: torch loads when a task runs
    import torch

MetricKind = Literal["proportion", "mean", "value"]


@dataclasses.dataclass
class TaskResult:
    metrics: dict[str, float]
    n: int
    primary: str  # headline metric, used for "% of baseline"
    kinds: dict[str, MetricKind]  # proportion: mean of 0/1 per example; mean: mean of reals
    higher_is_better: dict[str, bool]
    samples: dict[str, list[float]] = dataclasses.field(default_factory=dict)  # per-example values
    # metric -> [low, high]: an interval the task computes itself, where per-example samples cannot
    # give one (e.g. a bootstrap over an AUC of members against nonmembers).
    intervals: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)  # how to read the numbers (JSON values)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "TaskResult":
        return cls(**d)


@dataclasses.dataclass
class TaskContext:
    device: "torch.device"
    seed: int
    batch_size: int
    role: Literal["baseline", "edited"]
    # A folder shared by the baseline and edited evaluations of one model + suite, for tasks that
    # compare against the baseline's outputs (e.g. nDCG@10 of next-token rankings).
    artifacts_dir: Path
    progress: Any = None


class TaskSkipped(DataError):
    """A task whose data cannot be had here (an lm-eval dataset off the hub, offline): the suite
    prints its one-line message and goes on with the other tasks; nothing is recorded for it."""


class Task(ABC):
    """Subclasses take their settings as keyword arguments (the suite entry's keys, less `task`
    and `family`) and implement `evaluate`."""

    # Default family for reports; a suite entry may override it.
    family: ClassVar[str] = "other"
    # Settings that name data: the pipeline resolves each (a `model:<name>` reference or a path, or
    # a list of them) to an absolute path before the task is built.
    data_keys: ClassVar[tuple[str, ...]] = ("data",)

    @classmethod
    def check_settings(cls, settings: dict[str, Any], where: str) -> None:
        """Check what can be checked without the model: the pipeline calls this before the model
        loads. `where` is the config path of the entry (e.g. "suite.tasks.quotes"). Default: a
        `limit` (how many rows to use) is a positive integer or null; raise ConfigError."""
        limit = settings.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ConfigError(f"{where}.limit must be a positive integer (how many rows to use) or null "
                              f"(all of them), got {limit!r}")

    def check(self, model: "torch.nn.Module", tokenizer: Any) -> None:
        """Check the task's data against the loaded model (token ids inside the vocabulary, lengths
        within its positions); the pipeline calls this before any evaluation, so bad data fails
        before the slow work. Raise `core.errors.DataError`. Default: nothing to check."""

    @abstractmethod
    def evaluate(self, model: "torch.nn.Module", tokenizer: Any, ctx: TaskContext) -> TaskResult:
        ...
