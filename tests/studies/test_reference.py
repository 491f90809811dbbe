"""The regression reference: one entry per shipped organism, tolerances from measured differences."""

import json
from pathlib import Path

import pytest

from studies.reference import (add_reference_entry, compare_with_reference, largest_differences, read_reference,
                               reference_differences, tolerance_bound)

SEED0 = {"seed": 0, "settings_hash": "s", "weights_sha256": "w0", "shipped": True}
SEED1 = {"seed": 1, "settings_hash": "s", "weights_sha256": "w1", "shipped": True}


def numbers(logic: float, quotes_edited: float, ppl: float = 3.0) -> dict:
    return {"kfac": {"logic": {"baseline": logic, "edited": logic, "kind": "proportion", "n": 200},
                     "quotes": {"baseline": 1.0, "edited": quotes_edited, "kind": "proportion", "n": 40},
                     "perplexity": {"baseline": ppl, "edited": ppl, "kind": "mean", "n": 85}}}


def test_tolerance_is_the_largest_difference_and_at_least_the_resolution() -> None:
    assert tolerance_bound("proportion", 40, 0.0) == 0.025  # one example of 40
    assert tolerance_bound("proportion", 40, 0.05) == 0.05
    assert tolerance_bound("mean", 85, 0.0) == 1e-4  # the reference's rounding
    assert tolerance_bound("mean", 85, 0.0123) == 0.0123


def test_largest_differences_span_every_setting_run_and_role() -> None:
    a, b, c = numbers(0.9, 0.1), numbers(0.9, 0.15), numbers(0.895, 0.1, ppl=3.01)
    got = largest_differences([a, b, c])
    assert got["kfac/quotes"] == {"kind": "proportion", "n": 40, "largest_difference": 0.05}
    assert got["kfac/logic"]["largest_difference"] == 0.005
    assert got["kfac/perplexity"]["largest_difference"] == 0.01
    # the slow, obvious reference: every pair of settings, every number
    for task in ("logic", "quotes", "perplexity"):
        diffs = [abs(x["kfac"][task][r] - y["kfac"][task][r]) for x in (a, b, c) for y in (a, b, c)
                 for r in ("baseline", "edited")]
        assert got[f"kfac/{task}"]["largest_difference"] == pytest.approx(max(diffs))
    # seeds pool into one tolerance per run and task; a run one summary lacks is compared among the
    # summaries that have it (a partial reference must not hide another setting's difference)
    seeded = largest_differences([{"seed0/kfac": a["kfac"], "seed1/kfac": b["kfac"], "seed1/svd": b["kfac"]},
                                  {"seed0/kfac": b["kfac"], "seed1/kfac": b["kfac"]},
                                  {"seed1/svd": c["kfac"]}])
    assert set(seeded) == {f"{run}/{task}" for run in ("kfac", "svd") for task in ("logic", "quotes", "perplexity")}
    assert seeded["kfac/quotes"]["largest_difference"] == 0.05
    assert seeded["svd/quotes"]["largest_difference"] == 0.05 and seeded["svd/logic"]["largest_difference"] == 0.005
    # a run one summary alone has is not compared with anything
    assert largest_differences([{"seed0/kfac": a["kfac"]}, {"seed1/svd": b["kfac"]}]) == {}


def test_every_number_is_compared_with_its_own_tolerance() -> None:
    current = numbers(0.9, 0.1)
    tolerances = {"kfac/logic": 0.005, "kfac/quotes": 0.025, "kfac/perplexity": 1e-4}
    assert reference_differences(current, numbers(0.9, 0.1), tolerances) == []
    assert reference_differences(current, numbers(0.905, 0.125), tolerances) == []  # both at the bound
    problems = reference_differences(current, numbers(0.9, 0.15), tolerances)
    assert problems == ["kfac/quotes edited: 0.1 vs reference 0.15 (±0.025)"]
    problems = reference_differences(current, numbers(0.9, 0.1, ppl=3.001), tolerances)
    assert len(problems) == 2 and all("perplexity" in line for line in problems)  # baseline and edited
    assert reference_differences({}, current, tolerances)[0].endswith("missing from the current results")
    assert reference_differences(numbers(0.9, 0.1), numbers(0.9, 0.1 + 1e-12), {}) == []  # exact, less float noise


def test_the_entry_of_the_same_organism_is_the_one_compared(tmp_path: Path) -> None:
    entries = [{"organism": SEED0, "runs": numbers(0.9, 0.1)}, {"organism": SEED1, "runs": numbers(0.8, 0.5)}]
    tol = {"kfac/logic": 0.0, "kfac/quotes": 0.0, "kfac/perplexity": 0.0}
    assert compare_with_reference({"organism": SEED1, "runs": numbers(0.8, 0.5)}, entries, tol, "ref.json") == []
    assert compare_with_reference({"organism": SEED0, "runs": numbers(0.8, 0.5)}, entries, tol, "ref.json")
    other = {"seed": 1, "settings_hash": "s", "weights_sha256": "built-here", "shipped": False}
    [problem] = compare_with_reference({"organism": other, "runs": numbers(0.8, 0.5)}, entries, tol, "ref.json")
    assert "ref.json has no entry for organism seed 1 (settings s, weights built-here)" in problem
    assert "weights w0" in problem and "weights w1" in problem


def test_write_keeps_other_organisms_and_replaces_the_same_one(tmp_path: Path) -> None:
    ref = tmp_path / "reference.json"
    add_reference_entry(ref, {"organism": SEED1, "runs": numbers(0.8, 0.5)})
    add_reference_entry(ref, {"organism": SEED0, "runs": numbers(0.9, 0.1)})
    add_reference_entry(ref, {"organism": SEED1, "runs": numbers(0.7, 0.5)})
    entries = read_reference(ref)
    assert [e["organism"]["seed"] for e in entries] == [0, 1]
    assert entries[1]["runs"]["kfac"]["logic"]["baseline"] == 0.7
    ref.write_text(json.dumps({"builds": []}))
    with pytest.raises(ValueError, match="not a regression reference"):
        read_reference(ref)
