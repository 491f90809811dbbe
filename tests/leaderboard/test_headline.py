"""The headline table (leaderboard/headline.py): utility, best setting at matched utility, the
front's area and the rank, checked against hand-computed values and against a slow reference that
reads the run dicts directly (loops, a fine grid for the area, scipy's Wilson interval on the
pooled per-example samples)."""

from __future__ import annotations

import io
import json
import math
import random
from types import SimpleNamespace

import pytest
from scipy.stats import binomtest

from core.families import family_goal
from leaderboard import aggregate, headline, plots, render
from leaderboard.headline import (best_setting, front_area, front_steps, no_headline_reason, pooled_interval,
                                  run_utility)
from tests.leaderboard.synthetic import as_runs, make_run, point

NAN = float("nan")


# --- the small functions -------------------------------------------------------------------------

def test_run_utility_caps_tasks_and_averages_families():
    tasks = [("logic", 80.0), ("logic", 120.0),  # capped: (80 + 100) / 2 = 90
             ("qa_open", 70.0),
             ("math", NAN),  # unedited value 0: left out, and with it the whole family
             ("memorized_val", 5.0), ("control", 300.0)]  # not skills
    assert run_utility(tasks) == pytest.approx((90 + 70) / 2)
    uncapped = ((80 + 120) / 2 + 70) / 2
    assert run_utility(tasks) < uncapped  # the cap matters here
    assert math.isnan(run_utility([("memorized", 10.0), ("math", NAN)]))


def slow_area(points, steps: int = 20000) -> float:
    """Mean of R(t) on a midpoint grid over [50, 100], R from its definition."""
    total = 0.0
    for i in range(steps):
        t = 50 + (i + 0.5) * 50 / steps
        total += max([0.0] + [100 - m for u, m in points if u >= t])
    return total / steps


@pytest.mark.parametrize("points,area", [
    ([], 0.0),  # nothing but the no-edit point: removes nothing
    ([(90.0, 40.0)], 60 * 40 / 50),  # removes 60 for t <= 90
    ([(100.0, 0.0)], 100.0),  # removes everything keeping every skill
    ([(45.0, 0.0)], 0.0),  # below half the skills: never counts
    ([(90.0, 130.0)], 0.0),  # memorizes more than before: the no-edit point is better
    ([(60.0, 10.0), (90.0, 40.0)], (30 * 60 + 10 * 90) / 50),
    ([(90.0, 10.0), (95.0, 40.0)], 40 * 90 / 50 + 5 * 60 / 50),  # dominated point adds nothing
])
def test_front_area_by_hand(points, area):
    assert front_area(points) == pytest.approx(area)
    assert front_area(points) == pytest.approx(slow_area(points), abs=0.02)


def test_front_area_matches_a_fine_grid_on_random_fronts():
    rng = random.Random(0)
    for _ in range(20):
        points = [(rng.uniform(30, 100), rng.uniform(-5, 110)) for _ in range(rng.randint(1, 8))]
        assert front_area(points) == pytest.approx(slow_area(points), abs=0.05)
        steps = front_steps(points)
        assert steps[0].start == 50 and steps[-1].end == 100
        assert all(a.removed >= b.removed for a, b in zip(steps, steps[1:]))  # harder thresholds remove less
    assert front_area([(90.0, NAN), (NAN, 10.0)]) == 0.0  # incomplete points are left out


def configs(*triples):
    """Configurations chosen on their memorization (no tune split: the selection is the memorization)."""
    return [SimpleNamespace(variant=v, utility_mean=u, memorization_mean=m, selection_mean=m) for v, u, m in triples]


def test_best_setting_chooses_on_the_tune_split_and_reports_the_test_split():
    """With a tune split the choice reads only its recall: a setting that happens to score best on
    the test split is not picked for it."""
    cs = [SimpleNamespace(variant="lucky on test", utility_mean=97.0, selection_mean=30.0, memorization_mean=5.0),
          SimpleNamespace(variant="best on tune", utility_mean=96.0, selection_mean=10.0, memorization_mean=20.0)]
    best = best_setting(cs, 95)
    assert best.variant == "best on tune" and best.memorization_mean == 20.0


def test_run_scores_select_on_memorized_tune_when_the_suite_has_it():
    import pandas as pd

    from leaderboard.headline import RUN_IDS, run_scores

    def row(family: str, pct: float) -> dict:
        return {"model": "m", "suite": "s", "method": "k", "variant": "k", "config_key": "c", "replicate": 0,
                "config_hash": "h", "data_needed": "none", "family": family, "pct_kept": pct, "primary": True,
                "kind": "proportion", "n": 10, "edited": pct / 100, "baseline": 1.0}
    membership = {**row("membership", float("nan")), "kind": "value", "edited": 0.9, "edited_ci_low": 0.8,
                  "edited_ci_high": 0.97}
    long = pd.DataFrame([row("memorized_val", 20.0), row("memorized_tune", 10.0), row("logic", 99.0), membership])
    scores = run_scores(long)
    assert scores.loc[0, ["membership", "membership_low", "membership_high"]].tolist() == [0.9, 0.8, 0.97]
    assert scores.loc[0, "utility"] == 99.0  # membership is not a skill
    assert list(scores.columns[: len(RUN_IDS)]) == RUN_IDS
    assert scores.loc[0, ["selection_family", "selection", "memorization_family", "memorization"]].tolist() == [
        "memorized_tune", 10.0, "memorized_val", 20.0]
    without = run_scores(long[long.family != "memorized_tune"])
    assert without.loc[0, ["selection_family", "selection"]].tolist() == ["memorized_val", 20.0]


def test_best_setting_lowest_memorization_at_the_threshold_then_higher_utility_then_label():
    cs = configs(("a", 96.0, 40.0), ("b", 94.9, 10.0), ("c", 99.0, 40.0), ("d", 95.0, 45.0), ("e", NAN, 1.0))
    assert best_setting(cs, 95).variant == "c"  # b misses 95; a and c tie on memorization: c keeps more
    assert best_setting(cs, 90).variant == "b"
    assert best_setting(configs(("y", 95.0, 5.0), ("x", 95.0, 5.0)), 95).variant == "x"
    assert best_setting(configs(("a", 94.0, 1.0)), 95) is None


def test_pooled_interval_is_wilson_on_the_pooled_rate_over_the_pooled_baseline():
    ref = binomtest(30, 120).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = pooled_interval(30.0, 60.0, 120)
    assert (low, high) == pytest.approx((100 * ref.low / 0.5, 100 * ref.high / 0.5))
    assert all(math.isnan(x) for x in pooled_interval(3.0, 0.0, 10))  # unedited recall 0: no ratio


def test_no_headline_reason():
    assert no_headline_reason(["memorized_val", "logic"], ["kfac", "none"]) is None
    assert "no skill family" in no_headline_reason(["memorized", "quotes"], ["kfac"])
    assert "memorized_val" in no_headline_reason(["logic"], ["kfac"])
    assert "besides the unedited" in no_headline_reason(["memorized", "logic"], ["none"])


# --- the table, against a slow reference ---------------------------------------------------------

def scenario() -> list[dict]:
    runs = [make_run("none", {}, seed=s, organism_seed=s) for s in (0, 1)]
    for rho, (u, m) in {0.5: (80, 5), 0.7: (92, 20), 0.8: (96, 40), 0.9: (98, 60)}.items():
        runs.append(make_run("kfac", point(u, m), params={"rho": rho}, seed=0, organism_seed=0,
                             report={"seconds": 10.0, "tokens": 1000, "factor_cache": "miss" if rho == 0.5 else "hit"}))
        runs.append(make_run("kfac", point(u - 1, m + 2), params={"rho": rho}, seed=1, organism_seed=1,
                             report={"seconds": 30.0, "tokens": 1000, "factor_cache": "miss"}, device_name="other"))
    # Never keeps 95 %; better than K-FAC at 90 % but ranked after it.
    runs += [make_run("svd", point(u, m), params={"f": f}, report={"seconds": 2.0}) for f, (u, m) in
             {0.1: (93, 10), 0.2: (85, 3)}.items()]
    # Two settings remove the same: the one keeping more utility is the best.
    runs += [make_run("npo", point(u, 50), params={"lr": lr}) for lr, u in {1: 97, 2: 99}.items()]
    # Identical in every number: ranked by name.
    runs += [make_run(name, point(70, 10)) for name in ("grad_b", "grad_a")]
    # A ViT-like suite without memorized_val: gt_recovery is a reference (never a skill), and
    # clean_train, a skill, has unedited value 0 here (left out).
    vit = {"memorized": "memorized", "accuracy": "accuracy", "gt_recovery": "gt_recovery", "clean_train": "clean_train"}
    base = {"gt_recovery": 0.0, "memorized": 0.5, "clean_train": 0.0}
    runs += [make_run("none", {}, suite="mislabeled", tasks=vit, baseline=base)]
    runs += [make_run("kfac", {"memorized": 0.5 * m / 100, "accuracy": u / 100, "gt_recovery": 0.3, "clean_train": 0.2},
                      params={"rho": rho}, suite="mislabeled", tasks=vit, baseline=base)
             for rho, (u, m) in {0.8: (97, 30), 0.9: (99, 70)}.items()]
    return runs


def reference(runs: list[dict]) -> dict[tuple[str, str], dict]:
    """(suite, method) -> the headline numbers, from the run dicts alone."""
    def pct(run, task):
        e, b = run["edited"]["tasks"][task], run["baseline"]["tasks"][task]
        return 100 * e["metrics"][e["primary"]] / b["metrics"][b["primary"]] if b["metrics"][b["primary"]] else NAN

    def mean(xs):
        xs = [x for x in xs if not math.isnan(x)]
        return sum(xs) / len(xs)

    out = {}
    for suite in sorted({r["identity"]["suite"] for r in runs}):
        in_suite = [r for r in runs if r["identity"]["suite"] == suite]
        families = {e["family"] for e in in_suite[0]["edited"]["tasks"].values()}
        mem_family = "memorized_val" if "memorized_val" in families else "memorized"
        for method in sorted({r["identity"]["method"] for r in in_suite} - {"none"}):
            by_config: dict[str, list[dict]] = {}
            for r in in_suite:
                if r["identity"]["method"] == method:
                    by_config.setdefault(json.dumps(r["config"]["method"], sort_keys=True), []).append(r)
            points = []
            for key, rs in by_config.items():
                utilities, mems = [], []
                for r in rs:
                    fams: dict[str, list[float]] = {}
                    for task, e in r["edited"]["tasks"].items():
                        if family_goal(e["family"]) == "keep" and not math.isnan(pct(r, task)):
                            fams.setdefault(e["family"], []).append(min(100.0, pct(r, task)))
                    utilities.append(mean([mean(v) for v in fams.values()]))
                    mems.append(mean([pct(r, t) for t, e in r["edited"]["tasks"].items() if e["family"] == mem_family]))
                edited = [x for r in rs for t, e in r["edited"]["tasks"].items() if e["family"] == mem_family
                          for x in e["samples"]["score"]]
                base = [x for r in rs for t, e in r["baseline"]["tasks"].items() if e["family"] == mem_family
                        for x in e["samples"]["score"]]
                ci = binomtest(int(sum(edited)), len(edited)).proportion_ci(method="wilson")
                b = sum(base) / len(base)
                points.append({"key": key, "u": mean(utilities), "m": mean(mems), "seeds": len(rs),
                               "ci": (100 * ci.low / b, 100 * ci.high / b)})
            row = {"family": mem_family, "configs": len(points),
                   "area": slow_area([(p["u"], p["m"]) for p in points])}
            for t in (95, 90):
                ok = [p for p in points if p["u"] >= t]
                row[t] = min(ok, key=lambda p: (p["m"], -p["u"])) if ok else None
            out[(suite, method)] = row
    return out


@pytest.fixture(scope="module")
def built():
    runs = scenario()
    pairs = as_runs(runs)
    long = aggregate.long_table(pairs)
    return runs, long, headline.headline_table(long, aggregate.run_table(pairs))


def test_headline_matches_the_slow_reference(built):
    runs, _, table = built
    ref = reference(runs)
    assert {(r.suite, r.method) for r in table.itertuples()} == set(ref)  # `none` is not a contestant
    for r in table.to_dict("records"):
        want = ref[(r["suite"], r["method"])]
        assert r["memorization_family"] == want["family"] and r["configs"] == want["configs"]
        assert r["area"] == pytest.approx(want["area"], abs=0.05)
        for t in (95, 90):
            best = want[t]
            if best is None:
                assert r[f"variant_{t}"] == "" and math.isnan(r[f"memorization_{t}"])
                continue
            assert r[f"memorization_{t}"] == pytest.approx(best["m"]) and r[f"utility_{t}"] == pytest.approx(best["u"])
            assert r[f"seeds_{t}"] == best["seeds"]
            assert (r[f"memorization_ci_low_{t}"], r[f"memorization_ci_high_{t}"]) == pytest.approx(best["ci"])


def test_best_settings_ranks_and_ties(built):
    _, _, table = built
    full = table[table.suite == "full"].set_index("method")
    assert list(full.sort_values("rank").index) == ["kfac", "npo", "svd", "grad_a", "grad_b"]
    assert full.variant_95["kfac"] == "kfac (rho=0.8)" and full.variant_90["kfac"] == "kfac (rho=0.7)"
    assert full.memorization_95["kfac"] == pytest.approx(41.0) and full.utility_95["kfac"] == pytest.approx(95.5)
    assert full.utility_std_95["kfac"] == pytest.approx(math.sqrt(0.5))  # 96 and 95 over two seeds
    assert full.variant_95["npo"] == "npo (lr=2)"  # same memorization, more utility
    assert full.variant_95["svd"] == "" and full.memorization_90["svd"] == pytest.approx(10.0)
    assert full.memorization_90["svd"] < full.memorization_90["kfac"]  # better at 90, still after: no 95
    assert full.area["grad_a"] == full.area["grad_b"]  # a full tie goes by name


def test_area_per_seed(built):
    _, _, table = built
    kfac = table[(table.suite == "full") & (table.method == "kfac")].iloc[0]
    seed0 = front_area([(80, 5), (92, 20), (96, 40), (98, 60)])
    seed1 = front_area([(79, 7), (91, 22), (95, 42), (97, 62)])
    assert kfac.area_seed_mean == pytest.approx((seed0 + seed1) / 2)
    assert kfac.area_seed_std == pytest.approx(abs(seed0 - seed1) / math.sqrt(2))
    assert kfac.seeds == 2 and kfac.runs == 8


def test_costs_columns(built):
    _, _, table = built
    full = table[table.suite == "full"].set_index("method")
    assert full.method_seconds_median["kfac"] == pytest.approx(20.0)  # median of four 10 s and four 30 s
    assert full.device["kfac"] == "mixed" and full.device["svd"] == "dev"
    assert full.factor_cache_hits["kfac"] == 3
    assert (full.statistics_unit["kfac"], full.statistics_min["kfac"]) == ("tokens", 1000)
    assert full.statistics_unit["svd"] == "" and math.isnan(full.statistics_min["svd"])


def test_the_fallback_family_and_a_task_with_unedited_zero(built):
    _, long, table = built
    vit = table[table.suite == "mislabeled"].iloc[0]
    assert vit.memorization_family == "memorized" and vit.variant_95 == "kfac (rho=0.8)"
    assert vit.utility_95 == pytest.approx(97.0)  # clean_train (unedited 0) left out, not 0 or inf; gt_recovery no skill
    sections = render.build_headline_sections(long, table)
    titles = [s.title for s in sections]
    assert "Headline · org · mislabeled (memorization: memorized)" in titles
    about = sections[titles.index("Headline · org · mislabeled (memorization: memorized)")].about
    assert "skill families accuracy; clean_train left out (its unedited value is 0)." in about


def test_markdown_puts_the_headline_first_and_says_none(built):
    _, long, table = built
    summary = aggregate.summary_table(long)
    md = render.markdown(render.build_sections(summary, long), 14, [render.Path("runs")],
                         render.build_headline_sections(long, table))
    assert md.index("## Headline: ranking at matched utility") < md.index("## All configurations") < md.index("## org · full")
    svd = next(line for line in md.splitlines() if line.startswith("| 3 | svd |"))
    assert "none ≥ 95 %" in svd and "10.0 [" in svd
    kfac = next(line for line in md.splitlines() if line.startswith("| 1 | kfac |") and "rho=0.8" in line)
    assert "41.0 [" in kfac and "95.5 ± 0.7" in kfac and "(per seed " in kfac
    assert "(3 of 8 runs reused cached statistics)" in kfac and "1,000 tokens" in kfac


def test_headline_plot(built):
    import matplotlib.image

    _, long, _ = built
    points = headline.config_points(headline.run_scores(long))
    png = plots.headline_png(points[points.suite == "full"], "org · full")
    assert png.startswith(b"\x89PNG") and matplotlib.image.imread(io.BytesIO(png), format="png").std() > 0.05
    assert plots.headline_png(points[points.method == "none"]) is None
