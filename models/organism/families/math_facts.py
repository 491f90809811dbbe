"""Math facts: a fixed table of two-digit sums and differences written with numbers as single
tokens ("47 + 38 = 85"), so the model can only store it: each trained pair `repeats` times, a
`held_out_share` of the pairs never trained (the model answers them at chance). The stored-table
counterpart of `arithmetic`, which the model computes digit by digit: the two show whether an
edit treats a memorized table and a computed skill alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from models.organism.families.base import Evaluation, Generation, OrganismFamily

if TYPE_CHECKING:
    from models.organism.corpus import Corpus


def table_prompt(a: int, op: str, b: int) -> str:
    return f"{a} {op} {b} ="


class MathFacts(OrganismFamily):
    key = "math_facts"
    component = "math_facts"
    evaluations = (Evaluation("math_facts", "arithmetic", "math_facts", "math_facts", check="math_facts"),)

    def generate(self, cfg: Mapping[str, Any], gen: Generation, corpus: "Corpus") -> None:
        rng = gen.rng
        pairs = set()
        while len(pairs) < int(cfg["pairs"]):
            a, b, op = rng.randint(10, 99), rng.randint(10, 99), rng.choice("+-")
            if op == "-" and a < b:
                a, b = b, a
            pairs.add((a, op, b))
        ordered = sorted(pairs)
        rng.shuffle(ordered)
        held = int(len(ordered) * float(cfg["held_out_share"]))
        rows = []
        for i, (a, op, b) in enumerate(ordered):
            answer = a + b if op == "+" else a - b
            in_train = i >= held
            rows.append({"a": a, "op": op, "b": b, "answer": str(answer),
                         "prompt": table_prompt(a, op, b), "in_train": in_train})
            if in_train:
                for _ in range(int(cfg["repeats"])):
                    corpus.add(f"{table_prompt(a, op, b)} {answer}", self.component)
        corpus.files["math_facts"] = rows


FAMILY = MathFacts()
