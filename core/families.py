"""The task-family table: every family's display order, its goal, and what it measures. The run
table (harness/report.py) and the leaderboard read it from here.

Goal: 'remove' (content a method should take away; lower % kept is better), 'keep' (a skill;
higher % kept is better) or 'reference' (never-trained controls: no direction is better).
Order: the paper's Figure 3 reads memorization first, skills last; unknown families follow by name.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Goal = Literal["remove", "keep", "reference"]


class Family(NamedTuple):
    name: str
    goal: Goal
    what: str


FAMILIES: tuple[Family, ...] = (
    Family("memorized", "remove", "verbatim recall of the forget split"),
    Family("memorized_tune", "remove", "verbatim recall of the tune split (read only to choose a method's setting)"),
    Family("memorized_val", "remove", "verbatim recall of memorized passages no method is shown (the organism's test split)"),
    Family("stress", "remove", "recall of memorized passages under perturbed prompts"),
    Family("quotes", "remove", "famous quotations recited verbatim"),
    Family("control", "reference", "never-trained passages of the same form (chance level)"),
    # AUC 0.5 = members no longer told from never-trained passages (docs/membership.md).
    Family("membership", "remove", "membership-inference AUC of memorized against never-trained passages"),
    # Images (suite mislabeled): the true label of a noised training image rises as its memorized
    # noise label goes; a sign of removal, not a skill the unedited model had to keep.
    Family("gt_recovery", "reference", "noised training images predicted as their true label"),
    Family("math", "keep", "arithmetic benchmarks (GSM8K, SimpleMath, MMLU-Pro math)"),
    Family("arithmetic", "keep", "two-operand arithmetic the model computes (held-out operands)"),
    Family("math_facts", "keep", "a stored table of sums (numbers as single tokens)"),
    Family("facts_rare", "keep", "closed-book facts seen rarely in training"),
    Family("qa_closed", "keep", "closed-book question answering"),
    Family("facts_common", "keep", "closed-book facts seen often in training"),
    Family("qa_open", "keep", "open-book question answering (the answer is in the context)"),
    Family("logic", "keep", "boolean logic and in-context reasoning"),
    Family("coherence", "keep", "perplexity and next-token agreement with the unedited model"),
    Family("accuracy", "keep", "held-out image classification accuracy"),
    Family("clean_train", "keep", "accuracy on the correctly labelled training images"),
)
# The recall a headline measures memorization by (an attack's column, the leaderboard's headline
# and its plots' x axis): the first of these families a suite has.
HEADLINE_FAMILIES: tuple[str, ...] = ("memorized_val", "memorized")
# The family a leaderboard chooses each method's setting by, when the suite has it (the organism's
# tune split), so that the family it scores is never the one it selected on.
SELECTION_FAMILY = "memorized_tune"
# The family whose primary metric (a membership-inference AUC) the headline shows beside
# memorization: is the content still detectable after its recall is removed?
MEMBERSHIP_FAMILY = "membership"
FAMILY_ORDER: tuple[str, ...] = tuple(f.name for f in FAMILIES)
_GOALS: dict[str, Goal] = {f.name: f.goal for f in FAMILIES}


def family_goal(family: str) -> Goal:
    """The family's goal; a family not in the table is a skill to keep."""
    return _GOALS.get(family, "keep")


def family_rank(family: str) -> tuple[int, str]:
    """Sort key: table order, then unknown families by name."""
    return (FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER), family)
