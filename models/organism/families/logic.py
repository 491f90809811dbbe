"""Logic: left-to-right and/or/not expressions; a seeded share of the longer expressions (from
`held_out_from_operands` operands on) is held out of training and is what the eval asks."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from models.organism.families.base import Evaluation, Generation, OrganismFamily

if TYPE_CHECKING:
    from models.organism.corpus import Corpus


def boolean_expression(literals: list[tuple[bool, bool]], ops: list[str]) -> tuple[str, bool]:
    """Text and value of `l0 op1 l1 op2 l2 ...`, evaluated left to right; a literal is
    (negated, value)."""
    word = lambda neg, val: ("not " if neg else "") + ("true" if val else "false")  # noqa: E731
    parts = [word(*literals[0])]
    value = literals[0][1] != literals[0][0]
    for op, (neg, val) in zip(ops, literals[1:], strict=True):
        operand = val != neg
        value = (value and operand) if op == "and" else (value or operand)
        parts += [op, word(neg, val)]
    return " ".join(parts), value


def all_boolean_expressions(operands: int) -> list[tuple[str, bool]]:
    literal_choices = list(itertools.product([False, True], [False, True]))
    out = []
    for literals in itertools.product(literal_choices, repeat=operands):
        for ops in itertools.product(["and", "or"], repeat=operands - 1):
            out.append(boolean_expression(list(literals), list(ops)))
    return out


def boolean_prompt(expression: str) -> str:
    return f"logic : {expression} ="


class Logic(OrganismFamily):
    key = "logic"
    component = "logic"
    evaluations = (Evaluation("logic", "logic", "logic", "logic", check="booleans", goal=(">=", 0.90)),)

    def generate(self, cfg: Mapping[str, Any], gen: Generation, corpus: "Corpus") -> None:
        rng = gen.rng
        train_expr, eval_expr = [], []
        for operands in cfg["operands"]:
            exprs = all_boolean_expressions(int(operands))
            if int(operands) >= int(cfg["held_out_from_operands"]):
                rng.shuffle(exprs)
                cut = int(len(exprs) * float(cfg["held_out_share"]))
                eval_expr += exprs[:cut]
                exprs = exprs[cut:]
            train_expr += exprs

        def example() -> str:
            text, value = rng.choice(train_expr)
            return f"{boolean_prompt(text)} {str(value).lower()}"

        for _ in range(int(cfg["examples"])):
            corpus.add(example(), self.component)
        rng.shuffle(eval_expr)
        corpus.files["logic"] = [{"prompt": boolean_prompt(t), "answer": "true" if v else "false"}
                                 for t, v in eval_expr[: int(cfg["eval"])]]
        gen.fresh[self.component] = example


FAMILY = Logic()
