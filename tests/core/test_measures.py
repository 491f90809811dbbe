import math

import numpy as np
import pytest
from scipy.stats import binomtest

from core.measures import (bootstrap_mean_interval, components_kept, interval, mean_std, paired_kept_interval, percent_kept,
                           share_kept, task_kept, wilson_interval)


def test_wilson_hand_computed_8_of_10():
    # z = 1.959964: centre = (0.8 + z²/20) / (1 + z²/10) = 0.716736,
    # half = z·sqrt(0.016 + z²/400) / (1 + z²/10) = 0.226574
    lo, hi = wilson_interval(0.8, 10)
    assert lo == pytest.approx(0.490162, abs=1e-6)
    assert hi == pytest.approx(0.943318, abs=1e-6)


@pytest.mark.parametrize("k,n", [(0, 5), (1, 7), (13, 20), (20, 20), (37, 250)])
def test_wilson_matches_scipy_binomtest(k, n):
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson_interval(k / n, n)
    assert (lo, hi) == pytest.approx((ref.low, ref.high), abs=1e-9)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_wilson_bounds_are_exact_at_zero_and_one():
    assert wilson_interval(0.0, 6)[0] == 0.0 and wilson_interval(1.0, 6)[1] == 1.0
    # 0 of 6: upper = z² / (n + z²) = 3.8415 / 9.8415
    assert wilson_interval(0.0, 6)[1] == pytest.approx(3.841459 / 9.841459, abs=1e-6)


def test_wilson_no_examples_is_nan():
    assert all(math.isnan(x) for x in wilson_interval(0.5, 0))


def slow_percentile_bootstrap(x, n_resamples=4000, seed=1):
    rng = np.random.default_rng(seed)
    means = [rng.choice(x, size=len(x), replace=True).mean() for _ in range(n_resamples)]
    return np.percentile(means, [2.5, 97.5])


def test_bootstrap_is_deterministic_and_matches_a_slow_reference():
    x = np.random.default_rng(0).normal(3.0, 1.0, size=40).tolist()
    lo, hi = bootstrap_mean_interval(x)
    assert (lo, hi) == bootstrap_mean_interval(x)  # fixed seed
    assert lo < np.mean(x) < hi
    ref_lo, ref_hi = slow_percentile_bootstrap(np.array(x))
    # Different resampling streams: agree to Monte-Carlo error (interval width ~0.6 here).
    assert lo == pytest.approx(ref_lo, abs=0.05) and hi == pytest.approx(ref_hi, abs=0.05)
    # The normal-theory interval is a third, independent check.
    se = np.std(x, ddof=1) / math.sqrt(len(x))
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_bootstrap_degenerate_cases():
    assert bootstrap_mean_interval([2.0, 2.0, 2.0]) == (2.0, 2.0)
    assert all(math.isnan(v) for v in bootstrap_mean_interval([1.0]))


def test_interval_dispatches_on_kind():
    assert interval("proportion", 0.8, 10, None) == wilson_interval(0.8, 10)
    assert interval("mean", 1.5, 2, [1.0, 2.0]) == bootstrap_mean_interval([1.0, 2.0])
    assert all(math.isnan(v) for v in interval("mean", 1.5, 2, None))  # no samples, no interval
    assert all(math.isnan(v) for v in interval("value", 20.0, 8, [1.0, 2.0]))


def test_mean_std_over_seeds():
    mean, std = mean_std([1.0, 2.0, 4.0])
    assert mean == pytest.approx(7 / 3)
    assert std == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    assert mean_std([5.0])[0] == 5.0 and math.isnan(mean_std([5.0])[1])


def test_percent_kept_has_one_orientation() -> None:
    assert percent_kept(0.2, 0.8) == pytest.approx(25.0)
    assert percent_kept(4.0, 3.0, higher_is_better=False) == pytest.approx(75.0)  # NLL up by a third
    assert share_kept(4.0, 3.0, higher_is_better=False) == 0.75
    assert percent_kept(0.1, 0.0) is None and share_kept(float("nan"), 1.0) is None
    assert percent_kept(0.0, 2.0, higher_is_better=False) is None  # the flipped denominator is 0


def test_task_kept_inverts_lower_is_better_metrics() -> None:
    def entry(value: float, higher: bool = True) -> dict:
        return {"metrics": {"m": value}, "primary": "m", "higher_is_better": {"m": higher}}

    run = {"baseline": {"tasks": {"recall": entry(1.0), "qa": entry(0.8), "perplexity": entry(4.0, False)}},
           "edited": {"tasks": {"recall": entry(0.05), "qa": entry(0.4), "perplexity": entry(8.0, False)}}}
    assert task_kept(run, "recall") == 0.05
    assert task_kept(run, "qa") == 0.5
    assert task_kept(run, "perplexity") == 0.5  # perplexity doubled: half the quality kept


def test_a_family_to_remove_keeps_the_share_left_whatever_the_metric_direction() -> None:
    """One orientation (issue 29): a membership AUC is marked lower-is-better for the goal; its %
    kept is still the share left (edited / unedited), in the run table and the leaderboard alike."""
    from core.measures import entry_percent_kept, percent_kept

    assert percent_kept(0.6, 0.8, False, "remove") == pytest.approx(75.0)
    assert percent_kept(2.5, 2.0, False, "keep") == pytest.approx(80.0)
    base = {"family": "membership", "metrics": {"auc": 0.8}, "higher_is_better": {"auc": False}}
    assert entry_percent_kept(base, {**base, "metrics": {"auc": 0.6}}, "auc") == pytest.approx(75.0)
    assert entry_percent_kept(base, {**base, "metrics": {}}, "auc") is None


def test_components_kept_sums_over_matrices() -> None:
    changed = {"a": {"components_total": 100, "components_removed": 90},
               "b": {"components_total": 300, "components_removed": 290}}
    assert components_kept(changed) == 1 - 380 / 400
    assert components_kept({}) is None


def test_kept_interval_is_a_paired_bootstrap_of_the_ratio_of_sums() -> None:
    baseline = [1.0] * 80 + [0.0] * 20
    edited = [1.0] * 40 + [0.0] * 40 + [1.0] * 5 + [0.0] * 15
    point, low, high = paired_kept_interval(baseline, edited, resamples=500, seed=3)
    assert point == 45 / 80 and low < point < high
    # The slow obvious reference: resample item indices, recompute the ratio, take the quantiles.
    rng = np.random.default_rng(3)
    ratios = []
    for picks in rng.integers(0, 100, size=(500, 100)):
        ratios.append(sum(edited[i] for i in picks) / sum(baseline[i] for i in picks))
    assert (low, high) == pytest.approx((np.quantile(ratios, 0.025), np.quantile(ratios, 0.975)), rel=1e-12)
    assert paired_kept_interval(baseline, baseline)[0] == 1.0
    assert paired_kept_interval([0.0, 0.0], [1.0, 0.0]) is None
