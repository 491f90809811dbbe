"""Arithmetic: a fixed table of two-digit sums and differences (numbers are single tokens, so it is
a lookup table), each trained pair `repeats` times; a `held_out_share` of the pairs never trained."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from models.organism.families.base import Evaluation, Generation, OrganismFamily

if TYPE_CHECKING:
    from models.organism.corpus import Corpus


def arithmetic_prompt(a: int, op: str, b: int) -> str:
    return f"{a} {op} {b} ="


class Arithmetic(OrganismFamily):
    key = "arithmetic"
    component = "arithmetic"
    evaluations = (Evaluation("arithmetic", "arithmetic", "math", "arithmetic", check="arithmetic"),)

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
                         "prompt": arithmetic_prompt(a, op, b), "in_train": in_train})
            if in_train:
                for _ in range(int(cfg["repeats"])):
                    corpus.add(f"{arithmetic_prompt(a, op, b)} {answer}", self.component)
        corpus.files["arithmetic"] = rows


FAMILY = Arithmetic()
