"""Side texts: training-distribution text for curvature statistics (`stats`), retain sets
(`retain`) and perplexity (`heldout`), ~`words` words each. stats and retain are drawn from the
training documents less the withheld components (planted passages, quotes); heldout is new
documents of every component that can make them (facts and arithmetic are fixed tables, so they
are left out of it). Registered last: it samples what the other families generated."""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

from models.organism.families.base import Evaluation, Generation, OrganismFamily

if TYPE_CHECKING:
    from models.organism.corpus import Corpus


def distribution_sample(rng: random.Random, corpus: "Corpus", words: int, withheld: Collection[str]) -> list[str]:
    """Training documents of the components not `withheld`, drawn at random, ~`words` words."""
    pool = [d for d, c in zip(corpus.train, corpus.components, strict=True) if c not in withheld]
    out, total = [], 0
    while total < words:
        doc = rng.choice(pool)
        out.append(doc)
        total += len(doc.split())
    return out


def fresh_sample(rng: random.Random, corpus: "Corpus", generators: Mapping[str, Callable[[], str]], words: int) -> list[str]:
    """New documents of the generated components, in their training proportions, ~`words` words."""
    components = [c for c in corpus.components if c in generators]
    out, total = [], 0
    while total < words:
        doc = generators[rng.choice(components)]()
        out.append(doc)
        total += len(doc.split())
    return out


class SideTexts(OrganismFamily):
    key = "side_texts"
    evaluations = (
        Evaluation("perplexity", "perplexity", "coherence", "heldout"),
        Evaluation("ndcg10", "ndcg10", "coherence", "heldout"),
    )

    def generate(self, cfg: Mapping[str, Any], gen: Generation, corpus: "Corpus") -> None:
        for name in ("stats", "retain"):
            corpus.files[name] = distribution_sample(gen.rng, corpus, int(cfg[name]), gen.withheld)
        corpus.files["heldout"] = fresh_sample(gen.rng, corpus, gen.fresh, int(cfg["heldout"]))


FAMILY = SideTexts()
