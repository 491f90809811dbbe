"""The interface every attack implements.

An attack asks whether removed memorization comes back: it disturbs a **deep copy** of the model
(further training, quantization) or decodes differently (sampling), and scores the result with the
suite's memorization tasks. The model it is given is never changed, so the edited model's own
scores stay what they were.

An attack's work is split into *units* (e.g. one quantization scheme, or one relearning
trajectory's checkpoint), each with a key such as `relearn.retain.k50`. `run` hands each finished
unit to `emit` as soon as it exists (the caller saves the run file there) and skips the keys in
`done`, so an interrupted run resumes where it stopped, like tasks do.
"""

from __future__ import annotations

import copy
import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.attackrecords import column_record

if TYPE_CHECKING:  # the interface imports cheaply: torch loads when an attack runs
    import torch

    from models.base import ModelData
    from tasks.base import Task


@dataclasses.dataclass
class AttackContext:
    """Everything an attack may use besides the model itself."""

    tokenizer: Any
    device: "torch.device"
    seed: int
    batch_size: int
    # The scoring tasks, name -> (task, family): the suite's memorization tasks.
    tasks: dict[str, tuple["Task", str]]
    # score(model, task names or None for all) -> {task name: task entry as in the run file}.
    score: Callable[..., dict[str, dict[str, Any]]]
    sources: "ModelData"  # forget / retain sets the model brings
    # The scoring task that reads the same file as the model's forget set (its rows in the same
    # order), or None: relearning on half the forget set splits that task's score in two.
    forget_task: str | None
    data: dict[str, Any]  # files the model brings, by name (for `model:<name>` references)
    progress: Any = None


@dataclasses.dataclass
class AttackUnit:
    """One finished piece of an attack: its key, what it was, and its task entries."""

    key: str
    setting: str  # e.g. 'retain', 'int4_g128', 'n32'
    tasks: dict[str, dict[str, Any]]
    steps: int | None = None  # relearning steps, when the attack trains
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self, attack: str, column: dict[str, Any] | None = None) -> dict[str, Any]:
        """The run file's record of the unit; `column`: Attack.column's, for the leaderboard."""
        return {"attack": attack, "setting": self.setting, "steps": self.steps, "info": self.info,
                "tasks": self.tasks, **({"column": column} if column is not None else {})}


class Attack(ABC):
    """Subclasses take their settings as keyword arguments (the config entry's keys, less
    `attack`), validate them in `__init__` (raise `core.errors.ConfigError`), and implement
    `unit_keys` and `run`."""

    @abstractmethod
    def unit_keys(self, name: str) -> list[str]:
        """Every unit key this attack will produce under the instance name `name`."""

    @abstractmethod
    def run(self, model: "torch.nn.Module", ctx: AttackContext, name: str, done: set[str],
            emit: Callable[[AttackUnit], None]) -> None:
        """emit(unit) for every unit not in `done`; never change `model` (work on `copy_model(model)`)."""

    def column(self, unit: AttackUnit, attack: str) -> dict[str, Any]:
        """The unit's leaderboard column (core.attackrecords.column_record): its header, and its
        rank among the columns (attacks ordered by their first rank, then the rest). Recorded in
        the run file, so the leaderboard needs no attack's code. Default: after the built-in
        attacks, headed by the attack's registered name and the setting."""
        return column_record([4, 3, unit.steps or 0], f"{attack} {unit.setting}")


def copy_model(model: "torch.nn.Module") -> "torch.nn.Module":
    """An independent copy of the model (weights and buffers), in eval mode."""
    clone = copy.deepcopy(model)
    clone.eval()
    return clone


def subset_entry(entry: dict[str, Any], indices: list[int]) -> dict[str, Any] | None:
    """A task entry restricted to some of its examples, its metrics recomputed from the
    per-example samples (each metric is their mean); None if the primary metric has no samples."""
    samples = entry.get("samples") or {}
    if entry["primary"] not in samples or not indices:
        return None
    kept = {m: [v[i] for i in indices] for m, v in samples.items() if len(v) == entry["n"]}
    return {**entry, "n": len(indices), "metrics": {m: sum(v) / len(v) for m, v in kept.items()},
            "kinds": {m: entry["kinds"][m] for m in kept},
            "higher_is_better": {m: entry["higher_is_better"][m] for m in kept}, "samples": kept}
