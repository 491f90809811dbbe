"""The fidelity arithmetic on hand-made run records, and the command line with run_config
recording its overrides instead of running (the real runs: tests/regression/)."""

import json
from pathlib import Path

import pytest

from studies import fidelity
from studies.fidelity import (REGRESSION_RUNS, add_reference_entry, claims, compare_with_reference,
                              read_reference, reference_differences, summary)


def entry(value: float, higher: bool = True, kind: str = "proportion") -> dict:
    return {"metrics": {"m": value}, "primary": "m", "higher_is_better": {"m": higher}, "kinds": {"m": kind}}


def run(base: dict[str, float], edited: dict[str, float]) -> dict:
    lower = {"perplexity"}
    return {"baseline": {"tasks": {t: entry(v, t not in lower, "value" if t in lower else "proportion") for t, v in base.items()}},
            "edited": {"tasks": {t: entry(v, t not in lower, "value" if t in lower else "proportion") for t, v in edited.items()}},
            "method": {"report": {}}}


BASE = {"verbatim_validation": 1.0, "logic": 0.9, "qa_open": 0.8, "perplexity": 4.0}


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
    assert "python -m studies.fidelity write-reference --out ref.json" in notes[0]
    assert "arithmetic" in notes[1] and "NOT compared" in notes[1]
    assert "w-epyc" in notes[-1]


def test_unknown_build_skips_the_baselines_of_late_emerging_skills_only() -> None:
    from studies.fidelity import BUILD_VARIABLE_TASKS

    def with_arithmetic(value: float) -> dict:
        runs = numbers(0.82, 0.3)
        runs["kfac"]["arithmetic"] = {"baseline": value, "edited": value, "kind": "proportion"}
        return runs

    assert "arithmetic" in BUILD_VARIABLE_TASKS and "logic" not in BUILD_VARIABLE_TASKS
    entries = [{"build": EPYC, "runs": with_arithmetic(0.63)}]
    # another build's computed arithmetic at 0.98: not a regression of the code
    assert compare_with_reference({"build": NEW, "runs": with_arithmetic(0.98)}, entries, "ref.json")[0] == []
    # on the build itself it is compared
    problems, _ = compare_with_reference({"build": EPYC, "runs": with_arithmetic(0.98)}, entries, "ref.json")
    assert problems == ["kfac/arithmetic baseline: 0.98 vs reference 0.63 (±0.1)",
                        "kfac/arithmetic edited: 0.98 vs reference 0.63 (±0.1)"]


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


def test_a_build_in_another_precision_is_another_organism_compared_with_nothing() -> None:
    bf16 = {**EPYC, "precision": "bfloat16"}
    entries = [{"build": bf16, "runs": numbers(0.95, 0.3)}]
    # a float32 build of the same settings (a CPU without native bfloat16): a note, no problems
    problems, notes = compare_with_reference({"build": NEW, "runs": numbers(0.5, 0.9)}, entries, "ref.json")
    assert problems == [] and len(notes) == 1
    assert notes[0].startswith("NOTHING compared: this organism build trained in float32")
    assert "bfloat16" in notes[0] and "write-reference --out ref.json" in notes[0]
    # the same precision on another CPU is compared as before
    problems, _ = compare_with_reference({"build": {**NEW, "precision": "bfloat16"}, "runs": numbers(0.5, 0.9)},
                                         entries, "ref.json")
    assert "kfac/logic baseline: 0.5 vs reference 0.95 (±0.1)" in problems[0]


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
    from studies.fidelity import compose_config, run_config
    from harness.config import resolve_config
    from harness.pipeline import run_identity
    from models import model_name

    overrides = ["method=kfac", "method.rho=0.95", f"runs_dir={tmp_path}"]
    assert run_config(overrides, finished_only=True) is None  # no run file: None, nothing run
    config = resolve_config(compose_config(overrides))
    config["model"]["name"] = model_name(config["model"])
    path = run_path(tmp_path, run_identity(config))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"status": "running"}))
    assert run_config(overrides, finished_only=True) is None  # an unfinished run is not tabulated
    path.write_text(json.dumps({"status": "complete"}))
    assert run_config(overrides, finished_only=True) == {"status": "complete"}


# Builds of other organism settings (another seed, another size) are another organism.
OTHER = {"cpu": "Xeon, avx512f", "settings_hash": "s2", "weights_sha256": "w-other", "threads": 2}


def test_builds_of_other_settings_are_not_compared() -> None:
    # s2's baselines agree with the current numbers, s1's do not: only s1's count
    entries = [{"build": OTHER, "runs": numbers(0.5, 0.6)}, {"build": XEON, "runs": numbers(0.75, 0.6)}]
    problems, _ = compare_with_reference({"build": NEW, "runs": numbers(0.5, 0.6)}, entries, "ref.json")
    assert problems[-1] == "baseline numbers agree with none of the recorded builds"
    assert not any("w-other" in line for line in problems)
    # no build of the current settings: one problem line saying so, nothing compared
    problems, notes = compare_with_reference({"build": OTHER | {"settings_hash": "s3"}, "runs": numbers(0.5, 0.6)},
                                             entries, "ref.json", ["model.organism.seed=3"])
    assert notes == [] and len(problems) == 1
    assert "ref.json has no entry for these organism settings (settings s3; it records settings s1, s2)" in problems[0]
    assert problems[0].endswith("write-reference --out ref.json model.organism.seed=3")


def test_the_note_names_the_overrides_the_runs_were_made_with() -> None:
    entries = [{"build": XEON, "runs": numbers(0.75, 0.6)}]
    _, notes = compare_with_reference({"build": NEW, "runs": numbers(0.75, 0.9)}, entries, "ref.json",
                                      ["model.organism.seed=1", "seed=1"])
    assert "each of its 1 build(s) of the same organism settings" in notes[0]
    assert notes[0].endswith("write-reference --out ref.json model.organism.seed=1 seed=1")


# The command line, in-process. run_config records each run's overrides and returns a hand-made run
# instead of running, so no organism is trained; organism_build names a made-up build.
GOOD_KFAC = {"verbatim_validation": 0.05, "logic": 0.88, "qa_open": 0.8, "perplexity": 4.2}
RANDOM = {"verbatim_validation": 0.0, "logic": 0.5, "qa_open": 0.1, "perplexity": 50.0}
SMALL = ["model.organism.seed=1", "model.organism.model.hidden=128", "model.organism.planted.repeats=32"]


def settings_of(overrides: list[str]) -> str:
    from omegaconf import OmegaConf

    return fidelity.settings_key(OmegaConf.to_container(fidelity.compose_config(overrides).model.organism, resolve=True))


@pytest.fixture
def fake_runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The overrides of every run_config call, in order."""
    calls: list[list[str]] = []

    def fake_run_config(overrides: list[str], runs_dir: Path | None = None, finished_only: bool = False) -> dict:
        calls.append(list(overrides))
        method = next(o.split("=", 1)[1] for o in overrides if o.startswith("method="))
        return run(BASE, GOOD_KFAC if method == "kfac" else RANDOM if method == "random_ablation" else BASE)

    monkeypatch.setattr(fidelity, "run_config", fake_run_config)
    monkeypatch.setattr(fidelity, "organism_build", lambda run: dict(NEW, settings_hash=settings_of(SMALL)))
    return calls


def cli(capsys: pytest.CaptureFixture, argv: list[str]) -> tuple[int, list[str], str]:
    """(exit code, stderr lines, stdout) of `python -m studies.fidelity *argv`."""
    capsys.readouterr()
    try:
        code = fidelity.main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, [line for line in err.splitlines() if line.strip()], out


def test_check_applies_the_overrides_to_every_run_after_its_own(fake_runs, capsys) -> None:
    code, err, out = cli(capsys, ["check", *SMALL, "runs_dir=/tmp/elsewhere"])
    assert (code, err) == (0, [])
    assert fake_runs == [[*own, *SMALL, "runs_dir=/tmp/elsewhere"] for own in REGRESSION_RUNS.values()]
    assert out.count("PASS") == 5


def test_sweep_applies_the_overrides_to_every_run_and_names_them(fake_runs, capsys, tmp_path: Path) -> None:
    table = tmp_path / "sweep.md"
    code, err, _ = cli(capsys, ["sweep", "--seeds", "0", "1", *SMALL[1:], "--rhos", "0.9", "--svd-fractions", "0.5",
                                "--out", str(table), "device=cpu"])
    assert (code, err) == (0, [])
    # per seed: none, kfac and random_ablation at 0.9, svd at 0.5; each seed's organism is its own
    assert len(fake_runs) == 8
    for i, overrides in enumerate(fake_runs):
        seed = i // 4
        assert overrides[:2] == [f"seed={seed}", f"model.organism.seed={seed}"]
        assert overrides[-3:] == [*SMALL[1:], "device=cpu"]
    heading = table.read_text().splitlines()[0]
    assert " ".join(SMALL[1:]) in heading and "device" not in heading  # what changes the numbers only
    # without overrides the table starts as before: the default organism needs no heading
    cli(capsys, ["sweep", "--seeds", "0", "--rhos", "0.9", "--svd-fractions", "0.5", "--out", str(table)])
    assert table.read_text().startswith("| method | setting |")


def test_write_reference_with_overrides_writes_another_file(fake_runs, capsys, tmp_path: Path) -> None:
    ref = tmp_path / "small.json"
    code, err, _ = cli(capsys, ["write-reference", "--out", str(ref), *SMALL])
    assert (code, err) == (0, [])
    assert fake_runs == [[*own, *SMALL] for own in REGRESSION_RUNS.values()]
    [entry] = read_reference(ref)
    assert entry["build"]["settings_hash"] == settings_of(SMALL) and set(entry["runs"]) == set(REGRESSION_RUNS)
    # and check compares the same organism's runs with it: the same build, so every number
    code, err, out = cli(capsys, ["check", "--reference", str(ref), *SMALL])
    assert (code, err) == (0, [])
    assert f"PASS  every number within tolerance of {ref}" in out and "NOTE" not in out


def test_check_on_another_build_of_the_organism_notes_the_overrides(fake_runs, capsys, tmp_path: Path) -> None:
    ref = tmp_path / "small.json"
    other_cpu = dict(XEON, settings_hash=settings_of(SMALL))
    ref.write_text(json.dumps({"builds": [{"build": other_cpu, "runs": {"none": summary(run(BASE, BASE))}}]}))
    code, err, out = cli(capsys, ["check", "--reference", str(ref), *SMALL])
    assert (code, err) == (0, [])
    assert "PASS  baseline numbers within tolerance" in out
    assert f"write-reference --out {ref} {' '.join(SMALL)}" in out


CI_REFERENCE = Path(__file__).resolve().parents[1] / "regression" / "reference.json"
# (id, argv with {tmp} for the test's folder, what the one error line must say)
BAD_COMMAND_LINES = [
    ("method", ["check", "method=kfac"], ["check does not take 'method=kfac'", "model.<key>=<value>",
                                          "seed=, device=, runs_dir=, cache_dir="]),
    ("suite", ["sweep", "suite=memorization"], ["sweep does not take 'suite=memorization'"]),
    ("model-choice", ["write-reference", "--out", "{tmp}/r.json", "model=hf"], ["does not take 'model=hf'"]),
    ("add-key", ["check", "+model.organism.extra=1"], ["does not take '+model.organism.extra=1'"]),
    ("hydra-key", ["check", "hydra.verbose=true"], ["does not take 'hydra.verbose=true'"]),
    ("unknown-key", ["check", "model.organism.model.hiden=128"],
     ["unknown config key 'model.organism.model.hiden'", "did you mean 'hidden'", "layers, hidden, mlp"]),
    ("unknown-top", ["sweep", "model.organism.sead=1"], ["unknown config key 'model.organism.sead'"]),
    ("bad-value", ["check", "model.organism.model.hidden=[1,"], ["bad override", "model.organism.model.hidden=[1,"]),
    ("sweep-organism-seed", ["sweep", "--seeds", "0", "1", "model.organism.seed=3"],
     ["sweep sets seed= and model.organism.seed= from --seeds", "instead of 'model.organism.seed=3'"]),
    ("sweep-run-seed", ["sweep", "seed=3"], ["instead of 'seed=3'"]),
    ("write-ci-organism", ["write-reference", "--out", "tests/regression/reference.json", "model.organism.seed=1"],
     ["will not write runs made with model.organism.seed=1 into tests/regression/reference.json",
      "CI's reference", "--out <another file> model.organism.seed=1"]),
    ("write-ci-seed", ["write-reference", "--out", str(CI_REFERENCE), "runs_dir={tmp}", "seed=1"],
     ["will not write runs made with seed=1 into"]),
    ("compare-ci", ["check", "--reference", str(CI_REFERENCE), "model.organism.planted.repeats=32"],
     ["will not compare runs made with model.organism.planted.repeats=32 with"]),
    ("missing-reference", ["check", "--reference", "{tmp}/none.json"], ["--reference", "none.json cannot be read"]),
    ("reference-of-another-organism", ["check", "--reference", "{tmp}/default.json", *SMALL],
     ["default.json has no entry for these organism settings", "it records settings s1",
      f"write-reference --out {{tmp}}/default.json {' '.join(SMALL)}"]),
    ("stray-word", ["check", "foo"], ["unrecognized arguments: foo"]),
    ("bad-seed", ["sweep", "--seeds", "x"], ["argument --seeds: invalid int value: 'x'"]),
]


@pytest.mark.parametrize("argv,needles", [c[1:] for c in BAD_COMMAND_LINES], ids=[c[0] for c in BAD_COMMAND_LINES])
def test_bad_command_line_is_one_line_before_any_run(fake_runs, capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     argv: list[str], needles: list[str]) -> None:
    (tmp_path / "default.json").write_text(json.dumps({"builds": [{"build": XEON, "runs": numbers(0.75, 0.6)}]}))
    monkeypatch.chdir(CI_REFERENCE.parents[2])  # the repository: relative paths as a user types them
    written: list[Path] = []  # were a refusal to regress, the committed reference must stay as it is
    monkeypatch.setattr(fidelity, "add_reference_entry", lambda path, record: written.append(path))
    code, err, _ = cli(capsys, [a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    for needle in needles:
        assert needle.replace("{tmp}", str(tmp_path)) in err[0], err[0]
    assert fake_runs == [] and written == []  # refused before the first run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["default.json"]  # nothing written


def test_the_ci_reference_takes_overrides_that_change_no_number(fake_runs, capsys, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """runs_dir=, cache_dir=, device= leave the runs CI's: writing them into CI's reference is not
    refused (a stand-in for it here, so that the committed file is never written)."""
    ref = tmp_path / "reference.json"
    monkeypatch.setattr(fidelity, "CI_REFERENCE", ref)
    code, err, _ = cli(capsys, ["write-reference", "--out", str(ref), f"runs_dir={tmp_path}", "device=cpu"])
    assert (code, err) == (0, []) and ref.exists()
    code, err, _ = cli(capsys, ["write-reference", "--out", str(ref), "seed=1"])  # the stand-in is CI's
    assert code == 2 and "CI's reference" in err[0]


def test_findings_read_the_heldout_arithmetic_and_both_fact_frequencies() -> None:
    from studies.organism_claims import findings

    def task(samples: dict[str, list[float]]) -> dict:
        return {"samples": samples}

    run = {"baseline": {"tasks": {"arithmetic": task({"exact_match_heldout": [1.0, 1.0, 0.0, 1.0]}),
                                  "facts_rare": task({"exact_match": [1.0, 1.0]})}},
           "edited": {"tasks": {"arithmetic": task({"exact_match_heldout": [1.0, 0.0, 0.0, 0.0]}),
                                "facts_rare": task({"exact_match": [1.0, 1.0]})}}}
    lines = findings(run)
    assert lines[0].startswith("computed arithmetic (held-out pairs): 0.75 -> 0.25 (n=4), kept 33 %")
    assert lines[1].startswith("rare facts: 1.00 -> 1.00 (n=2), kept 100 % [100, 100]") and len(lines) == 2


def test_sweep_table_lists_kfac_findings_after_the_table() -> None:
    from studies.tradeoff_sweep import sweep_table

    records = [{"seed": 0, "method": "none", "setting": None, "components_kept": None, "kept": {"logic": 1.0},
                "findings": []},
               {"seed": 0, "method": "kfac", "setting": 0.98, "components_kept": 0.07, "kept": {"logic": 0.9},
                "findings": ["rare facts: 0.50 -> 0.40 (n=300), kept 80 % [72, 87]"]}]
    table, _, tail = sweep_table(records).partition("% of baseline kept")
    assert "| kfac | 0.98 | 0 | 7.00 % | 90 |" in table
    assert tail.strip().endswith("- seed 0, rho 0.98: rare facts: 0.50 -> 0.40 (n=300), kept 80 % [72, 87]")
    # without findings (runs from before they were recorded) the page ends with the table's note
    assert "interval" not in sweep_table([{**records[1], "findings": []}])
