"""Family drops from run files and the rank correlation, on hand-made runs."""

from __future__ import annotations

import math

import pytest

from analysis.predict import family_drops, removed_share, spearman


def task(value: float, higher: bool = True) -> dict:
    return {"metrics": {"m": value}, "primary": "m", "higher_is_better": {"m": higher}}


def test_family_drops_average_share_kept_per_family() -> None:
    run = {"baseline": {"tasks": {"a": task(0.8), "b": task(0.5), "c": task(10.0, higher=False), "z": task(0.0)}},
           "edited": {"tasks": {"a": task(0.4), "b": task(0.5), "c": task(20.0, higher=False), "z": task(0.3)}}}
    drops = family_drops(run, {"a": "logic", "b": "logic", "c": "coherence", "z": "control", "missing": "math"})
    # logic: kept 0.5 and 1.0 -> drop 0.25; coherence: perplexity doubled -> kept 0.5; control: baseline 0.
    assert drops == pytest.approx({"logic": 0.25, "coherence": 0.5})


def test_spearman_and_shares() -> None:
    assert spearman([0.1, 0.2, 0.3, 0.4], [1.0, 5.0, 6.0, 9.0])[0] == pytest.approx(1.0)
    assert spearman([0.1, 0.2, 0.3, 0.4], [9.0, 5.0, 2.0, 1.0])[0] == pytest.approx(-1.0)
    rho, p, n = spearman([0.1, float("nan"), 0.3], [1.0, 2.0, 3.0])
    assert n == 2 and math.isnan(rho) and math.isnan(p)
    assert removed_share(1.0, 4.0) == 0.25 and math.isnan(removed_share(1.0, 0.0))
