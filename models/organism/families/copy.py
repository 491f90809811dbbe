"""Copy: "copy : a b c | a b c" over fresh sequences of invented symbols (in-context copying);
the eval sequences are new draws."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from models.organism.families.base import Evaluation, Generation, OrganismFamily
from models.organism.text import pseudo_words

if TYPE_CHECKING:
    from models.organism.corpus import Corpus


def copy_prompt(symbols: list[str]) -> str:
    return "copy : " + " ".join(symbols) + " |"


class Copy(OrganismFamily):
    key = "copy"
    component = "copy"
    evaluations = (Evaluation("copy", "logic", "logic", "copy", check="copy", goal=(">=", 0.80)),)

    def draw_names(self, cfg: Mapping[str, Any], gen: Generation) -> None:
        gen.names["symbols"] = pseudo_words(gen.rng, int(cfg["symbols"]), gen.taken, syllables=2)

    def generate(self, cfg: Mapping[str, Any], gen: Generation, corpus: "Corpus") -> None:
        rng, symbols = gen.rng, gen.names["symbols"]

        def sequence() -> list[str]:
            return [rng.choice(symbols) for _ in range(rng.randint(*cfg["length"]))]

        def example() -> str:
            seq = sequence()
            return f"{copy_prompt(seq)} {' '.join(seq)}"

        for _ in range(int(cfg["examples"])):
            corpus.add(example(), self.component)
        corpus.files["copy"] = []
        for _ in range(int(cfg["eval"])):
            seq = sequence()
            corpus.files["copy"].append({"prompt": copy_prompt(seq), "answer": " ".join(seq)})
        gen.fresh[self.component] = example


FAMILY = Copy()
