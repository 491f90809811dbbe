"""Planted passages: the memorization the methods should remove.

Passages of `prefix + suffix` words, each trained `repeats` times in bursts of `burst` copies (a
burst's copies are trained in consecutive steps, as near-duplicates cluster in crawled data; it
lets a small share of tokens be memorized). The forget and validation splits are trained alike;
the controls, of the same form, never appear. Styles: `rare_words` (words that occur nowhere else
in the corpus), `random_words` (the general vocabulary) or `sentences` (text of the filler's kind,
so only its particular choices are new).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from models.organism.families.base import Evaluation, Generation, OrganismFamily
from models.organism.text import GENERAL_WORDS, filler_sentence, pseudo_words

if TYPE_CHECKING:
    from models.organism.corpus import Corpus

SPLITS = ("verbatim_forget", "verbatim_validation", "verbatim_control")


class Planted(OrganismFamily):
    key = "planted"
    component = "planted"
    in_side_texts = False  # statistics and retain text must not contain the passages
    evaluations = (
        Evaluation("verbatim_forget", "verbatim", "memorized", "verbatim_forget", check="planted_forget", goal=(">=", 0.90)),
        Evaluation("verbatim_validation", "verbatim", "memorized_val", "verbatim_validation",
                   check="planted_validation", goal=(">=", 0.90)),
        Evaluation("verbatim_control", "verbatim", "control", "verbatim_control", check="control", goal=("<=", 0.01)),
        Evaluation("perturbed_validation", "perturbed_recall", "stress", "verbatim_validation"),
    )

    def generate(self, cfg: Mapping[str, Any], gen: Generation, corpus: "Corpus") -> None:
        rng = gen.rng
        vocabulary = sorted(set(GENERAL_WORDS))
        rare_vocabulary = pseudo_words(rng, int(cfg.get("rare_vocabulary", 0)), gen.taken, syllables=4)
        prefix = int(cfg["prefix"])
        length = prefix + int(cfg["suffix"])
        counts = dict(zip(SPLITS, (int(cfg["forget"]), int(cfg["validation"]), int(cfg["control"])), strict=True))
        for split, count in counts.items():
            rows = []
            for i in range(count):
                if cfg["style"] == "random_words":
                    words = [rng.choice(vocabulary) for _ in range(length)]
                elif cfg["style"] == "rare_words":
                    words = [rng.choice(rare_vocabulary) for _ in range(length)]
                else:  # "sentences"
                    words = []
                    while len(words) < length:
                        words += filler_sentence(rng, gen.names["entities"]).split()
                    words = words[:length]
                rows.append({"id": f"{split.removeprefix('verbatim_')}-{i:03d}",
                             "prefix_text": " ".join(words[:prefix]), "suffix_text": " ".join(words[prefix:])})
                if split != "verbatim_control":
                    for copy_index in range(int(cfg["repeats"])):
                        if copy_index % int(cfg["burst"]) == 0:
                            burst = corpus.new_burst()
                        corpus.add(" ".join(words), self.component, burst)
            corpus.files[split] = rows

    def prepare_files(self, files: dict[str, Any], tokenizer: Any) -> None:
        """Planted passages are stored with their token ids, as docs/DESIGN.md specifies."""
        for split in SPLITS:
            for row in files[split]:
                for part in ("prefix", "suffix"):
                    row[f"{part}_ids"] = tokenizer(row[f"{part}_text"], add_special_tokens=False)["input_ids"]


FAMILY = Planted()
