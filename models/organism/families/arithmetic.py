"""Arithmetic the model computes: two-digit addition and subtraction written digit by digit
("4 7 + 3 8 = 8 5"; every digit is its own token), `examples` problems drawn from the operand
pairs in training, a `held_out_share` of all pairs never trained. The eval asks `eval` held-out
pairs (which only a model that adds can answer) and `eval` / 2 trained ones; the check target is
the held-out accuracy. `answer_digits: reversed` writes the answer's digits least significant
first (the carry then comes before the digit it changes), a known aid for small models.
`math_facts` is the stored-table counterpart (numbers as single tokens)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from models.organism.families.base import Evaluation, Generation, OrganismFamily

if TYPE_CHECKING:
    from models.organism.corpus import Corpus

ANSWER_DIGITS = ("natural", "reversed")


def digits(n: int) -> str:
    return " ".join(str(n))


def problem_prompt(a: int, op: str, b: int) -> str:
    return f"{digits(a)} {op} {digits(b)} ="


def problem_answer(a: int, op: str, b: int, answer_digits: str) -> str:
    value = str(a + b if op == "+" else a - b)
    return " ".join(value[::-1] if answer_digits == "reversed" else value)


def all_pairs() -> list[tuple[int, str, int]]:
    """Every two-digit sum, and every two-digit difference with a non-negative result."""
    return [(a, op, b) for a in range(10, 100) for b in range(10, 100) for op in "+-" if op == "+" or a >= b]


class Arithmetic(OrganismFamily):
    key = "arithmetic"
    component = "arithmetic"
    evaluations = (Evaluation("arithmetic", "arithmetic", "arithmetic", "arithmetic", check="arithmetic",
                              metric="exact_match_heldout", goal=(">=", 0.80)),)

    def generate(self, cfg: Mapping[str, Any], gen: Generation, corpus: "Corpus") -> None:
        rng, order = gen.rng, str(cfg.get("answer_digits", "natural"))
        if order not in ANSWER_DIGITS:
            from core.errors import ConfigError

            raise ConfigError(f"organism.arithmetic.answer_digits: '{order}' is not one of {', '.join(ANSWER_DIGITS)}")
        pairs = all_pairs()
        rng.shuffle(pairs)
        held = int(len(pairs) * float(cfg["held_out_share"]))
        held_out, trained = pairs[:held], pairs[held:]

        def example() -> str:
            a, op, b = rng.choice(trained)
            return f"{problem_prompt(a, op, b)} {problem_answer(a, op, b, order)}"

        for _ in range(int(cfg["examples"])):
            corpus.add(example(), self.component)
        n_eval = int(cfg["eval"])
        corpus.files["arithmetic"] = [
            {"a": a, "op": op, "b": b, "prompt": problem_prompt(a, op, b), "answer": problem_answer(a, op, b, order),
             "in_train": in_train}
            for in_train, chosen in ((False, held_out[:n_eval]), (True, trained[: n_eval // 2]))
            for a, op, b in chosen
        ]
        gen.fresh[self.component] = example


FAMILY = Arithmetic()
