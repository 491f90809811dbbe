"""The fidelity arithmetic on hand-made run records (the real runs: tests/regression/)."""

import json
from pathlib import Path

from harness.fidelity import (add_reference_entry, claims, compare_with_reference, components_kept, kept,
                              read_reference, reference_differences, summary)


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


# Per-build references: small hand-made entries, no organism.
XEON = {"cpu": "Xeon, avx512f", "settings_hash": "s1", "weights_sha256": "w-xeon", "threads": 2}
EPYC = {"cpu": "EPYC, avx512f", "settings_hash": "s1", "weights_sha256": "w-epyc", "threads": 2}
NEW = {"cpu": "Other, avx2", "settings_hash": "s1", "weights_sha256": "w-new", "threads": 2}


def numbers(logic_base: float, quotes_edited: float) -> dict:
    """A one-run reference record's numbers: kfac on logic (baseline = edited) and quotes."""
    return {"kfac": {"logic": {"baseline": logic_base, "edited": logic_base, "kind": "proportion"},
                     "quotes": {"baseline": 1.0, "edited": quotes_edited, "kind": "proportion"}}}


def test_same_build_compares_edited_numbers_too() -> None:
    entries = [{"build": XEON, "runs": numbers(0.75, 0.6)}, {"build": EPYC, "runs": numbers(0.82, 0.3)}]
    assert compare_with_reference({"build": EPYC, "runs": numbers(0.82, 0.3)}, entries, "ref.json") == ([], [])
    # only an edited number moved, by more than the tolerance: caught, with no note
    problems, notes = compare_with_reference({"build": EPYC, "runs": numbers(0.82, 0.6)}, entries, "ref.json")
    assert problems == ["kfac/quotes edited: 0.6 vs reference 0.3 (±0.1)"] and notes == []
    # the other build's matching edited number does not rescue it: a known build uses its own entry only
    assert compare_with_reference({"build": XEON, "runs": numbers(0.75, 0.3)}, entries, "ref.json")[0]


def test_unknown_build_compares_baselines_only_and_says_so() -> None:
    entries = [{"build": XEON, "runs": numbers(0.75, 0.6)}, {"build": EPYC, "runs": numbers(0.82, 0.3)}]
    # the edited quotes (0.95) match neither build; the baseline logic matches EPYC's only
    problems, notes = compare_with_reference({"build": NEW, "runs": numbers(0.9, 0.95)}, entries, "ref.json")
    assert problems == []
    assert "edited numbers NOT compared" in notes[0] and "w-new" in notes[0]
    assert "python -m harness.fidelity write-reference --out ref.json" in notes[0]
    assert "w-epyc" in notes[1]


def test_unknown_build_catches_a_baseline_regression() -> None:
    entries = [{"build": XEON, "runs": numbers(0.75, 0.6)}, {"build": EPYC, "runs": numbers(0.82, 0.3)}]
    problems, notes = compare_with_reference({"build": NEW, "runs": numbers(0.5, 0.6)}, entries, "ref.json")
    assert "kfac/logic baseline: 0.5 vs reference 0.75 (±0.1) [build Xeon, avx512f (settings s1, weights w-xeon)]" in problems
    assert "kfac/logic baseline: 0.5 vs reference 0.82 (±0.1) [build EPYC, avx512f (settings s1, weights w-epyc)]" in problems
    assert problems[-1] == "baseline numbers agree with none of the recorded builds"
    assert not any("edited" in line for line in problems)
    assert "edited numbers NOT compared" in notes[0]
    # a baseline task missing from the results is a difference too
    missing = {"kfac": {"logic": numbers(0.75, 0.6)["kfac"]["logic"]}}
    assert compare_with_reference({"build": NEW, "runs": missing}, entries, "ref.json")[0]


def test_a_reference_without_builds_fails() -> None:
    assert compare_with_reference({"build": NEW, "runs": numbers(0.75, 0.6)}, [], "ref.json")[0]


def test_write_reference_adds_and_replaces_build_entries(tmp_path: Path) -> None:
    ref = tmp_path / "reference.json"
    add_reference_entry(ref, {"build": XEON, "runs": numbers(0.75, 0.6)})
    add_reference_entry(ref, {"build": EPYC, "runs": numbers(0.82, 0.3)})
    assert [e["build"]["weights_sha256"] for e in read_reference(ref)] == ["w-xeon", "w-epyc"]
    # the same build (settings and weights; the CPU name may differ) replaces its entry in place
    add_reference_entry(ref, {"build": dict(XEON, threads=4), "runs": numbers(0.7, 0.65)})
    entries = read_reference(ref)
    assert [e["build"]["weights_sha256"] for e in entries] == ["w-xeon", "w-epyc"]
    assert entries[0] == {"build": dict(XEON, threads=4), "runs": numbers(0.7, 0.65)}
    assert entries[1] == {"build": EPYC, "runs": numbers(0.82, 0.3)}
    text = ref.read_text()
    assert text == json.dumps(json.loads(text), indent=1, sort_keys=True) + "\n"  # sorted keys
    assert [p.name for p in tmp_path.iterdir()] == ["reference.json"]  # no temporary file left


def test_old_single_build_reference_is_read_as_one_entry(tmp_path: Path) -> None:
    ref = tmp_path / "reference.json"
    old = {"build": XEON, "runs": numbers(0.75, 0.6)}
    ref.write_text(json.dumps(old))
    assert read_reference(ref) == [old]
    add_reference_entry(ref, {"build": EPYC, "runs": numbers(0.82, 0.3)})
    assert json.loads(ref.read_text()) == {"builds": [old, {"build": EPYC, "runs": numbers(0.82, 0.3)}]}


def test_finished_only_finds_the_run_file_the_pipeline_writes(tmp_path: Path) -> None:
    """`sweep --finished-only` looks a run up where run_experiment files it, and runs nothing."""
    from core.runrecord import run_path
    from hydra import compose, initialize_config_dir

    from core.buildcache import CONF_DIR
    from harness.fidelity import SUITE, run_config
    from harness.pipeline import resolve_config, run_identity
    from models import model_name

    overrides = ["method=kfac", "method.rho=0.95", f"runs_dir={tmp_path}"]
    assert run_config(overrides, finished_only=True) is None  # no run file: None, nothing run
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        config = resolve_config(compose(config_name="config", overrides=[f"suite={SUITE}", *overrides]))
    config["model"]["name"] = model_name(config["model"])
    path = run_path(tmp_path, run_identity(config))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"status": "running"}))
    assert run_config(overrides, finished_only=True) is None  # an unfinished run is not tabulated
    path.write_text(json.dumps({"status": "complete"}))
    assert run_config(overrides, finished_only=True) == {"status": "complete"}
