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


def test_run_table_and_leaderboard_give_the_same_percent_kept():
    """One orientation (core.measures.percent_kept): the run table printed after a run and the
    leaderboard's long table show the same % kept for every metric of the same run, including a
    lower-is-better skill (perplexity) and lower-is-better metrics of families to remove."""
    import io

    from rich.console import Console

    from harness.report import print_table, run_table

    def task(family, metrics, hib, n=10):
        return {"family": family, "n": n, "primary": next(iter(metrics)), "metrics": metrics,
                "kinds": {m: "mean" for m in metrics}, "higher_is_better": hib, "samples": {}}

    base = {"perplexity": task("coherence", {"mean_nll": 2.0}, {"mean_nll": False}),
            "membership": task("membership", {"auc": 0.8}, {"auc": False}),
            "verbatim": task("memorized", {"strict": 0.5, "lev_norm": 0.2}, {"strict": True, "lev_norm": False})}
    edit = {"perplexity": task("coherence", {"mean_nll": 2.5}, {"mean_nll": False}),
            "membership": task("membership", {"auc": 0.6}, {"auc": False}),
            "verbatim": task("memorized", {"strict": 0.25, "lev_norm": 0.4}, {"strict": True, "lev_norm": False})}
    for entry in (base["verbatim"], edit["verbatim"]):  # a sub-metric scored on 4 of the task's 10 examples
        entry["samples"] = {"lev_norm": [entry["metrics"]["lev_norm"]] * 4}
    config = {"method": {"name": "kfac"}, "seed": 0}
    run = {"identity": {"model": "m", "suite": "s", "method": "kfac", "seed": 0, "config_hash": "ab" * 8},
           "config": config, "method": {"data_needed": []},
           "baseline": {"key": "k", "tasks": base}, "edited": {"tasks": edit}}
    long = long_table([(Path("r.json"), run)])
    out = io.StringIO()
    print_table(Console(file=out, width=200), run_table(run))
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in out.getvalue().splitlines() if line.count("│") > 6]
    assert {(c[1], c[2].rstrip(" ↓")): c[3] for c in rows} == {(r.task, r.metric): str(r.n) for r in long.itertuples()}
    assert dict(zip(long.metric, long.n))["lev_norm"] == 4  # its own n, not the task's 10
    printed = {(cells[1], cells[2].rstrip(" ↓")): cells[6] for cells in
               ([c.strip() for c in line.split("│")[1:-1]] for line in out.getvalue().splitlines() if line.count("│") > 6)}
    for row in long.itertuples():
        assert printed[(row.task, row.metric)] == f"{row.pct_kept:.1f}", (row.task, row.metric)
    assert printed[("perplexity", "mean_nll")] == "80.0"  # unedited / edited: below 100 = worse
    assert printed[("membership", "auc")] == "75.0"  # a family to remove: the share left


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
    # Same method settings, differing outside the method: told apart by that setting, not a hash.
    assert labels["c"][0] == "svd (eval.batch_size=null)" and labels["d"][0] == "svd (eval.batch_size=1)"


def test_two_configs_differing_in_one_key_are_labelled_by_it_not_by_hash():
    base = {"model": {"name": "hf", "path": "/m/smollm2", "data": {"stats": "/data/wiki.txt"}},
            "method": {"name": "kfac", "rho": 0.99, "layers": None}, "seed": 0, "runs_dir": "runs"}
    other = {**base, "model": {**base["model"], "data": {"stats": "/data/books.txt"}}}
    rho = {**base, "method": {**base["method"], "rho": 0.6}, "seed": 3, "runs_dir": "elsewhere"}
    labels = variant_labels({"a": base, "b": other}, {"a": "kfac", "b": "kfac"})
    assert labels["a"][0] == "kfac (model.data.stats=wiki.txt)"  # a path shows its file name
    assert labels["b"][0] == "kfac (model.data.stats=books.txt)"
    labels = variant_labels({"a": base, "c": rho}, {"a": "kfac", "c": "kfac"})
    assert labels["a"][0] == "kfac (rho=0.99)" and labels["c"][0] == "kfac (rho=0.6)"  # seed, runs_dir: not settings
    assert not any("#" in label for label, _ in labels.values())


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
