"""The fidelity arithmetic on hand-made run records (the real runs: tests/regression/)."""

from harness.fidelity import claims, components_kept, kept, reference_differences, summary


def entry(value: float, higher: bool = True, kind: str = "proportion") -> dict:
    return {"metrics": {"m": value}, "primary": "m", "higher_is_better": {"m": higher}, "kinds": {"m": kind}}


def run(base: dict[str, float], edited: dict[str, float]) -> dict:
    lower = {"perplexity"}
    return {"baseline": {"tasks": {t: entry(v, t not in lower, "value" if t in lower else "proportion") for t, v in base.items()}},
            "edited": {"tasks": {t: entry(v, t not in lower, "value" if t in lower else "proportion") for t, v in edited.items()}},
            "method": {"report": {}}}


BASE = {"verbatim_validation": 1.0, "logic": 0.9, "qa_open": 0.8, "perplexity": 4.0}


def test_kept_inverts_lower_is_better_metrics() -> None:
    r = run(BASE, {"verbatim_validation": 0.05, "logic": 0.9, "qa_open": 0.4, "perplexity": 8.0})
    assert kept(r, "verbatim_validation") == 0.05
    assert kept(r, "qa_open") == 0.5
    assert kept(r, "perplexity") == 0.5  # perplexity doubled: half the quality kept


def test_claims_hold_and_fail_where_they_should() -> None:
    good = run(BASE, {"verbatim_validation": 0.05, "logic": 0.88, "qa_open": 0.8, "perplexity": 4.2})
    rand = run(BASE, {"verbatim_validation": 0.0, "logic": 0.5, "qa_open": 0.1, "perplexity": 50.0})
    assert all(holds for holds, _ in claims({"kfac": good, "random_ablation": rand}).values())
    # a K-FAC that keeps the passages, or loses the skills, or does worse than random, fails
    bad = run(BASE, {"verbatim_validation": 0.5, "logic": 0.4, "qa_open": 0.05, "perplexity": 9.0})
    results = claims({"kfac": bad, "random_ablation": rand})
    assert [holds for holds, _ in results.values()] == [False, False, False, False, False]
    # keeping booleans and open-book but wrecking perplexity (the lowest-curvature K-FAC) fails
    incoherent = run(BASE, {"verbatim_validation": 0.0, "logic": 0.85, "qa_open": 0.78, "perplexity": 6.6})
    failed = [name for name, (holds, _) in claims({"kfac": incoherent, "random_ablation": rand}).items() if not holds]
    assert failed == ["kfac keeps perplexity (>= 90% kept: mean NLL rises <= 11%)"]


def test_reference_differences_use_the_stated_tolerance() -> None:
    current = {"kfac": summary(run(BASE, {"verbatim_validation": 0.05, "logic": 0.88, "qa_open": 0.8, "perplexity": 4.2}))}
    assert reference_differences(current, current) == []
    shifted = {"kfac": {t: dict(v) for t, v in current["kfac"].items()}}
    shifted["kfac"]["logic"]["edited"] = 0.88 - 0.2
    shifted["kfac"]["perplexity"]["edited"] = 4.2 * 1.05  # inside the 10 % relative bound
    problems = reference_differences(current, shifted)
    assert len(problems) == 1 and problems[0].startswith("kfac/logic edited")
    assert reference_differences({}, current)[0].endswith("missing from the current results")


def test_components_kept_sums_over_matrices() -> None:
    r = run(BASE, BASE)
    r["method"]["report"]["changed"] = {"a": {"components_total": 100, "components_removed": 90},
                                        "b": {"components_total": 300, "components_removed": 290}}
    assert components_kept(r) == 1 - 380 / 400
    assert components_kept(run(BASE, BASE)) is None
