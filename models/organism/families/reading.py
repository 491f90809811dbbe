"""Reading: open-book questions about FRESH invented entities, the fact given in context (one or
two facts, the question asks about one): reading cannot be memorized, only learned. Evaluated on
the world's questions with their facts in context (`facts`, open mode)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from models.organism.families.base import Evaluation, Generation, OrganismFamily
from models.organism.text import CONTEXT, QUESTION, RELATIONS, pseudo_words

if TYPE_CHECKING:
    from models.organism.corpus import Corpus


def reading_example(rng: random.Random, fresh_entities: list[str], distractor_share: float) -> str:
    """An open-book question about a fresh entity; with a second, distracting fact (same
    relation, another entity) in `distractor_share` of the examples."""
    rel = rng.choice(list(RELATIONS))
    ent, other = rng.sample(fresh_entities, 2)
    ans, other_ans = rng.choice(RELATIONS[rel]), rng.choice(RELATIONS[rel])
    context = [CONTEXT.format(rel=rel, ent=ent, ans=ans)]
    if rng.random() < distractor_share:
        distractor = CONTEXT.format(rel=rel, ent=other, ans=other_ans).removeprefix("context : ")
        context.insert(rng.randint(0, 1), distractor)
        context = ["context : " + " ".join(c.removeprefix("context : ") for c in context)]
    return f"{context[0]} {QUESTION.format(rel=rel, ent=ent)} {ans}"


class Reading(OrganismFamily):
    key = "reading"
    component = "reading"
    evaluations = (Evaluation("qa_open", "qa", "qa_open", "facts", {"mode": "open"}, check="open_book", goal=(">=", 0.90)),)

    def draw_names(self, cfg: Mapping[str, Any], gen: Generation) -> None:
        gen.names["fresh_entities"] = pseudo_words(gen.rng, int(cfg["fresh_entities"]), gen.taken)

    def generate(self, cfg: Mapping[str, Any], gen: Generation, corpus: "Corpus") -> None:
        def example() -> str:
            return reading_example(gen.rng, gen.names["fresh_entities"], float(cfg["distractor_share"]))

        for _ in range(int(cfg["examples"])):
            corpus.add(example(), self.component)
        gen.fresh[self.component] = example


FAMILY = Reading()
