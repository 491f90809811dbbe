import json
import math
from pathlib import Path

import pytest

from core.families import family_goal
from leaderboard.aggregate import (config_key, data_needed_label, family_table, long_table, pct_kept,
                                   summary_table, variant_labels)
from leaderboard.collect import collect

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def tables():
    runs, _ = collect([FIXTURES], warn=lambda line: None)
    long = long_table(runs)
    return runs, long, summary_table(long)


def test_pct_kept_orientation():
    assert pct_kept(0.2, 0.8, "memorized", True) == pytest.approx(25.0)  # share of recall left
    assert pct_kept(0.6, 0.8, "logic", True) == pytest.approx(75.0)
    # Lower-is-better skill (mean NLL 3.0 → 4.0): baseline / edited, below 100 = worse.
    assert pct_kept(4.0, 3.0, "coherence", False) == pytest.approx(75.0)
    assert math.isnan(pct_kept(0.1, 0.0, "control", True))
    assert [family_goal(f) for f in ("memorized_val", "stress", "control", "qa_open", "new_family")] == \
        ["remove", "remove", "reference", "keep", "keep"]


def test_data_needed_label():
    assert [data_needed_label(x) for x in ([], ["forget"], ["retain", "forget"])] == ["none", "forget", "forget+retain"]


def test_variant_labels_show_only_varying_settings():
    configs = {"a": {"method": {"name": "kfac", "rho": 0.9, "tokens": 10}},
               "b": {"method": {"name": "kfac", "rho": 0.6, "tokens": 10}},
               "c": {"method": {"name": "svd", "fractions": {"up": 0.5}}},
               "d": {"method": {"name": "svd", "fractions": {"up": 0.5}}, "eval": {"batch_size": 1}}}
    labels = variant_labels(configs, {k: c["method"]["name"] for k, c in configs.items()})
    assert labels["a"][0] == "kfac (rho=0.9)" and labels["b"][0] == "kfac (rho=0.6)"
    assert labels["b"][1] < labels["a"][1]  # numeric order within a method
    assert labels["c"][0] == "svd #c" and labels["d"][0] == "svd #d"  # differ outside the method


def test_config_key_ignores_seed_and_runtime_keys():
    cfg = {"method": {"name": "kfac"}, "seed": 0, "runs_dir": "runs"}
    assert config_key(cfg) == config_key({**cfg, "seed": 3, "runs_dir": "elsewhere"})
    assert config_key(cfg) != config_key({**cfg, "method": {"name": "svd"}})


def test_long_table_one_row_per_run_task_metric(tables):
    runs, long, _ = tables
    expected_rows = sum(len(t["metrics"]) for _, r in runs for t in r["edited"]["tasks"].values())
    assert len(long) == expected_rows
    row = long[(long.variant == "balanced_subnet") & (long.task == "qa_open") & (long.metric == "exact_match")].iloc[0]
    assert row.data_needed == "forget+retain" and row.kind == "proportion"
    assert row.pct_kept == pytest.approx(100 * row.edited / row.baseline)
    assert row.edited_ci_low < row.edited < row.edited_ci_high


def test_three_seeds_aggregate_to_mean_and_std(tables):
    _, _, summary = tables
    row = summary[(summary.suite == "organism_full") & (summary.variant == "kfac (rho=0.8)")
                  & (summary.task == "verbatim_forget")].iloc[0]
    # Straight from the three files.
    pcts = []
    for path in sorted((FIXTURES / "organism" / "organism_full" / "kfac").glob("*.json")):
        run = json.loads(path.read_text())
        if run["config"]["method"]["rho"] == 0.8:
            e = run["edited"]["tasks"]["verbatim_forget"]["metrics"]["strict"]
            b = run["baseline"]["tasks"]["verbatim_forget"]["metrics"]["strict"]
            pcts.append(100 * e / b)
    assert len(pcts) == 3 and row.seeds == 3
    mean = sum(pcts) / 3
    std = math.sqrt(sum((p - mean) ** 2 for p in pcts) / 2)
    assert row.pct_kept_mean == pytest.approx(mean) and row.pct_kept_std == pytest.approx(std)
    assert math.isnan(row.edited_ci_low)  # several seeds: the spread is the std, not one run's CI


def test_family_table_averages_tasks_of_a_family(tables):
    _, long, _ = tables
    fam = family_table(long)
    one = long[(long.variant == "svd") & (long.suite == "organism_full") & long.primary & (long.family == "logic")]
    assert len(one) == 2  # logic and copy
    got = fam[(fam.variant == "svd") & (fam.suite == "organism_full") & (fam.family == "logic")].pct_kept.iloc[0]
    assert got == pytest.approx(one.pct_kept.mean())


def test_a_task_s_own_interval_wins_over_the_computed_one():
    from leaderboard.aggregate import own_interval

    assert own_interval({"intervals": {"auc_min_k": [0.8, 0.97]}}, "auc_min_k") == (0.8, 0.97)
    assert own_interval({"intervals": {}}, "auc_min_k") is None and own_interval({}, "strict") is None
