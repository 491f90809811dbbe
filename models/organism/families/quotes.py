"""Quotes: real public-domain quotations (tasks/data/quotes.txt), each repeated in varied frames."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.organism.families.base import Evaluation, Generation, OrganismFamily
from models.organism.text import normalize

if TYPE_CHECKING:
    from models.organism.corpus import Corpus

QUOTES_FILE = Path(__file__).resolve().parents[3] / "tasks" / "data" / "quotes.txt"
QUOTE_FRAMES = ["{q} .", "as they say , {q} .", "he remembered the words : {q} .",
                "{q} , wrote the poet .", "the old book reads : {q} .", "she said : {q} ."]


def read_quotes(path: Path = QUOTES_FILE) -> list[str]:
    return [normalize(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class Quotes(OrganismFamily):
    key = "quotes"
    component = "quotes"
    in_side_texts = False
    evaluations = (Evaluation("quotes", "quotes", "quotes", "quotes", check="quotes", goal=(">=", 0.80)),)

    def generate(self, cfg: Mapping[str, Any], gen: Generation, corpus: "Corpus") -> None:
        quotes = read_quotes()[: int(cfg["count"])]
        corpus.files["quotes"] = [{"id": f"quote-{i:03d}", "full_quote": q} for i, q in enumerate(quotes)]
        for q in quotes:
            for copy_index in range(int(cfg["repeats"])):
                if copy_index % int(cfg["burst"]) == 0:
                    burst = corpus.new_burst()
                corpus.add(gen.rng.choice(QUOTE_FRAMES).format(q=q), self.component, burst)


FAMILY = Quotes()
