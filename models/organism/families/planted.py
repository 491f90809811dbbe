"""Planted passages: the memorization the methods should remove.

Passages of `prefix + suffix` words, each trained `repeats` times in bursts of `burst` copies (a
burst's copies are trained in consecutive steps, as near-duplicates cluster in crawled data; it
lets a small share of tokens be memorized). Three trained splits, trained alike, with one role each
so that a method's score is honest (organism v3):
  forget   given to methods that need data (`model.data.forget`),
  tune     used only to choose a method's setting (the leaderboard's selection),
  test     scored (the `memorized_val` family: memorized passages no method is shown);
plus never-trained controls of the test split's form.
Styles: `rare_words` (words that occur nowhere else in the corpus), `random_words` (the general
vocabulary) or `sentences` (text of the filler's kind, so only its particular choices are new).
With `rare_words`, `vocabulary: per_split` gives forget, tune and test (with the controls) rare
vocabularies of their own, so a method shown the forget split cannot remove the test split by
suppressing the words that make a passage memorable; `shared` (organism v2) draws every split from
one vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from models.organism.families.base import Evaluation, Generation, OrganismFamily
from models.organism.text import GENERAL_WORDS, filler_sentence, pseudo_words

if TYPE_CHECKING:
    from models.organism.corpus import Corpus

# Split -> its count's key in the `planted:` settings; trained splits first, the controls last.
SPLITS = {"verbatim_forget": "forget", "verbatim_tune": "tune", "verbatim_test": "test", "verbatim_control": "control"}
# Split -> the vocabulary group it draws from under `vocabulary: per_split` (controls: the test's).
VOCABULARY_GROUP = {"verbatim_forget": "forget", "verbatim_tune": "tune", "verbatim_test": "test",
                    "verbatim_control": "test"}
VOCABULARIES = ("shared", "per_split")


def rare_vocabularies(cfg: Mapping[str, Any], rng: Any, taken: set[str]) -> dict[str, list[str]]:
    """Split -> the rare words its passages draw from: one vocabulary of `rare_vocabulary` words
    (`shared`) or one of that size per vocabulary group (`per_split`), disjoint."""
    from core.errors import ConfigError

    mode = str(cfg.get("vocabulary", "shared"))
    if mode not in VOCABULARIES:
        raise ConfigError(f"organism settings: planted.vocabulary={mode!r}; valid: {', '.join(VOCABULARIES)}")
    size = int(cfg.get("rare_vocabulary", 0))
    if mode == "shared":
        words = pseudo_words(rng, size, taken, syllables=4)
        return {split: words for split in SPLITS}
    groups = {group: pseudo_words(rng, size, taken, syllables=4) for group in dict.fromkeys(VOCABULARY_GROUP.values())}
    return {split: groups[VOCABULARY_GROUP[split]] for split in SPLITS}


class Planted(OrganismFamily):
    key = "planted"
    component = "planted"
    in_side_texts = False  # statistics and retain text must not contain the passages
    evaluations = (
        Evaluation("verbatim_forget", "verbatim", "memorized", "verbatim_forget", check="planted_forget", goal=(">=", 0.90)),
        Evaluation("verbatim_tune", "verbatim", "memorized_tune", "verbatim_tune", check="planted_tune",
                   goal=(">=", 0.90)),
        Evaluation("verbatim_test", "verbatim", "memorized_val", "verbatim_test", check="planted_test", goal=(">=", 0.90)),
        Evaluation("verbatim_control", "verbatim", "control", "verbatim_control", check="control", goal=("<=", 0.01)),
        Evaluation("perturbed_test", "perturbed_recall", "stress", "verbatim_test"),
        # Is it still in there? Membership inference of the test passages against the controls of
        # their own vocabulary (tasks/membership.py); the forget split has no controls of its own
        # vocabulary, so it gets none.
        Evaluation("membership_test", "membership", "membership", "verbatim_test",
                   params={"nonmembers": "model:verbatim_control"}),
    )

    def generate(self, cfg: Mapping[str, Any], gen: Generation, corpus: "Corpus") -> None:
        rng = gen.rng
        vocabulary = sorted(set(GENERAL_WORDS))
        rare = rare_vocabularies(cfg, rng, gen.taken)
        prefix = int(cfg["prefix"])
        length = prefix + int(cfg["suffix"])
        for split, count_key in SPLITS.items():
            rows = []
            for i in range(int(cfg[count_key])):
                if cfg["style"] == "random_words":
                    words = [rng.choice(vocabulary) for _ in range(length)]
                elif cfg["style"] == "rare_words":
                    words = [rng.choice(rare[split]) for _ in range(length)]
                else:  # "sentences"
                    words = []
                    while len(words) < length:
                        words += filler_sentence(rng, gen.names["entities"]).split()
                    words = words[:length]
                rows.append({"id": f"{split.removeprefix('verbatim_')}-{i:03d}",
                             "prefix_text": " ".join(words[:prefix]), "suffix_text": " ".join(words[prefix:])})
                # `train_forget: false` builds the reference that never saw the forget split (the
                # same corpus otherwise: its rows are still drawn, so the random stream is unchanged).
                trained = split != "verbatim_control" and (split != "verbatim_forget" or cfg.get("train_forget", True))
                if trained:
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
