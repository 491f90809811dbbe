"""Filler: template sentences about the world, so planted text stays a small share of tokens."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from models.organism.families.base import Generation, OrganismFamily
from models.organism.text import filler_document

if TYPE_CHECKING:
    from models.organism.corpus import Corpus


class Filler(OrganismFamily):
    key = "filler"
    component = "filler"

    def generate(self, cfg: Mapping[str, Any], gen: Generation, corpus: "Corpus") -> None:
        def document() -> str:
            return filler_document(gen.rng, gen.names["entities"], tuple(cfg["sentences"]))

        for _ in range(int(cfg["documents"])):
            corpus.add(document(), self.component)
        gen.fresh[self.component] = document


FAMILY = Filler()
