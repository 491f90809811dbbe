"""The organism's synthetic corpus and its ground truth, generated from one seed by the registered
data families (models/organism/families/: planted passages, quotes, the world's facts, reading,
logic, copy, arithmetic, filler, side texts; docs/organism.md describes each).

Pure Python and one `random.Random(seed)` shared by the families in registry order: the same
settings give the same files byte for byte (tests/models/test_organism_families.py pins them).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Corpus:
    """The generated training documents and every ground-truth file's rows."""

    train: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)  # component name of each training doc
    # Burst id of each training doc (None: placed at random): the copies of one burst are trained
    # in consecutive steps (see models/organism/train.py::schedule_batches).
    bursts: list[int | None] = field(default_factory=list)
    files: dict[str, Any] = field(default_factory=dict)  # data file name -> rows or text lines
    bursts_opened: int = field(default=0, repr=False, compare=False)

    def add(self, doc: str, component: str, burst: int | None = None) -> None:
        self.train.append(doc)
        self.components.append(component)
        self.bursts.append(burst)

    def new_burst(self) -> int:
        """A new burst id (ids count up across all families)."""
        self.bursts_opened += 1
        return self.bursts_opened - 1


def generate_corpus(settings: Mapping[str, Any]) -> Corpus:
    """All documents and ground-truth rows for `settings` (the `organism:` config mapping): every
    registered family draws its invented names, then every family generates, in registry order."""
    from models.organism.families import Generation, check_settings, families
    from models.organism.text import reserved_words

    check_settings(settings)
    registry = families()
    gen = Generation(rng=random.Random(int(settings["seed"])), taken=reserved_words(),
                     withheld={f.component for f in registry.values() if f.component and not f.in_side_texts})
    for key, family in registry.items():
        family.draw_names(settings[key], gen)
    corpus = Corpus()
    for key, family in registry.items():
        family.generate(settings[key], gen, corpus)
    return corpus


def token_shares(corpus: Corpus) -> dict[str, float]:
    """Share of training words (= tokens) per component."""
    counts: dict[str, int] = {}
    for doc, comp in zip(corpus.train, corpus.components, strict=True):
        counts[comp] = counts.get(comp, 0) + len(doc.split()) + 1  # + EOS
    total = sum(counts.values())
    return {k: round(v / total, 4) for k, v in sorted(counts.items())}
