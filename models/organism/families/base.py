"""What an organism data family is: a generator of training documents and ground-truth files,
and the evaluations that read them (models/organism/families/__init__.py registers them)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from models.organism.corpus import Corpus


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of a family's data: an entry of the `organism_full` suite and, where `check`
    names one, a target of `python -m models.organism.check`."""

    name: str  # the suite entry's name
    task: str  # a registered task (`harness.tasks` entry point)
    family: str  # its task family (core/families.py)
    data: str  # the organism data file it reads (`model:<data>`)
    params: Mapping[str, Any] = field(default_factory=dict)  # further task settings
    check: str | None = None  # name of its organism check target (also used by train.quick_check.names)
    metric: str | None = None  # the task metric the check reads; None: the task's primary metric
    goal: tuple[Literal[">=", "<="], float] = (">=", 0.0)  # the check target's bound; 0.0: report only

    def suite_entry(self) -> dict[str, Any]:
        return {"task": self.task, "family": self.family, "data": f"model:{self.data}", **self.params}


@dataclass
class Generation:
    """What the families of one corpus share while it is generated. One random stream for all of
    them: the order of their draws is part of the corpus (so the registry order is fixed)."""

    rng: random.Random
    taken: set[str]  # words an invented name must avoid; grows as names are drawn
    names: dict[str, list[str]] = field(default_factory=dict)  # invented names by what they name
    fresh: dict[str, Callable[[], str]] = field(default_factory=dict)  # component -> a new document of its kind
    withheld: set[str] = field(default_factory=set)  # components kept out of the side texts


class OrganismFamily:
    """A data family of the organism. Generation runs in two passes over the registered families:
    `draw_names` (invented names other families may use, e.g. the world's entities), then
    `generate` (training documents via `corpus.add` and ground-truth rows in `corpus.files`)."""

    key: ClassVar[str]  # its block in the `organism:` settings and its registry key
    component: ClassVar[str | None] = None  # the name of its training documents (token shares)
    in_side_texts: ClassVar[bool] = True  # may stats/retain text be drawn from its documents
    evaluations: ClassVar[tuple[Evaluation, ...]] = ()

    def draw_names(self, cfg: Mapping[str, Any], gen: Generation) -> None:
        """Draw the names this family invents for others (before any document is generated)."""

    def generate(self, cfg: Mapping[str, Any], gen: Generation, corpus: "Corpus") -> None:
        raise NotImplementedError

    def prepare_files(self, files: dict[str, Any], tokenizer: Any) -> None:
        """Complete its ground-truth rows once the tokenizer exists (e.g. token ids)."""
