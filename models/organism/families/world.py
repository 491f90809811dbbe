"""The world: a fictional world of invented entities, a fact for every (entity, relation); some
facts common (seen `common_repeats` times, half of them in the question-answer form), some rare
(`rare_repeats`, any template), the rest unused. Its entities appear in filler text too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from models.organism.families.base import Evaluation, Generation, OrganismFamily
from models.organism.text import CONTEXT, QUESTION, RELATIONS, pseudo_words

if TYPE_CHECKING:
    from models.organism.corpus import Corpus

FACT_TEMPLATES = [
    "the {rel} of {ent} is {ans} .",
    "in {ent} , the {rel} is {ans} .",
    "people say the {rel} of {ent} is {ans} .",
    "{ent} is known for its {rel} , which is {ans} .",
    "everyone in {ent} knows that the {rel} is {ans} .",
    "question : what is the {rel} of {ent} ? answer : {ans}",
]


class World(OrganismFamily):
    key = "world"
    component = "facts"
    evaluations = (
        Evaluation("facts_common", "qa", "facts_common", "facts", {"mode": "closed", "frequency": "common"},
                   check="closed_common"),
        Evaluation("facts_rare", "qa", "facts_rare", "facts", {"mode": "closed", "frequency": "rare"},
                   check="closed_rare"),
        Evaluation("qa_closed", "qa", "qa_closed", "facts", {"mode": "closed"}),
    )

    def draw_names(self, cfg: Mapping[str, Any], gen: Generation) -> None:
        gen.names["entities"] = pseudo_words(gen.rng, int(cfg["entities"]), gen.taken)

    def generate(self, cfg: Mapping[str, Any], gen: Generation, corpus: "Corpus") -> None:
        rng = gen.rng
        facts = [(e, r, rng.choice(answers)) for e in gen.names["entities"] for r, answers in RELATIONS.items()]
        rng.shuffle(facts)
        n_common, n_rare = int(cfg["common_facts"]), int(cfg["rare_facts"])
        rows = []
        for i, (ent, rel, ans) in enumerate(facts[: n_common + n_rare]):
            common = i < n_common
            n_train = int(cfg["common_repeats"]) if common else rng.randint(*cfg["rare_repeats"])
            for k in range(n_train):
                # Common facts: every other time in the question form (the reading examples use that
                # form too, with the answer in context; without this the model learns to look for a
                # context), otherwise cycling through the statements. Rare facts: any form.
                if common:
                    template = FACT_TEMPLATES[-1] if k % 2 == 0 else FACT_TEMPLATES[(k // 2) % (len(FACT_TEMPLATES) - 1)]
                else:
                    template = rng.choice(FACT_TEMPLATES)
                corpus.add(template.format(rel=rel, ent=ent, ans=ans), self.component)
            rows.append({"id": f"fact-{i:03d}", "entity": ent, "relation": rel, "answer": ans,
                         "frequency": "common" if common else "rare", "n_train": n_train,
                         "question": QUESTION.format(rel=rel, ent=ent),
                         "context": CONTEXT.format(rel=rel, ent=ent, ans=ans)})
        corpus.files["facts"] = rows


FAMILY = World()
