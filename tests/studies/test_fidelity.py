"""The fidelity arithmetic on hand-made run records, and the command line with run_config
recording its overrides instead of running (the real runs: tests/regression/)."""

import json
from pathlib import Path

import pytest

from studies import fidelity
from studies.fidelity import REGRESSION_RUNS, claims
from studies.reference import read_reference
from studies.organism_claims import summary


def entry(value: float, higher: bool = True, kind: str = "proportion") -> dict:
    return {"metrics": {"m": value}, "primary": "m", "higher_is_better": {"m": higher}, "kinds": {"m": kind}, "n": 10}


def run(base: dict[str, float], edited: dict[str, float]) -> dict:
    lower = {"perplexity"}
    return {"baseline": {"tasks": {t: entry(v, t not in lower, "value" if t in lower else "proportion") for t, v in base.items()}},
            "edited": {"tasks": {t: entry(v, t not in lower, "value" if t in lower else "proportion") for t, v in edited.items()}},
            "method": {"report": {}}}


BASE = {"verbatim_test": 1.0, "logic": 0.9, "qa_open": 0.8, "perplexity": 4.0}


def test_claims_hold_and_fail_where_they_should() -> None:
    good = run(BASE, {"verbatim_test": 0.05, "logic": 0.88, "qa_open": 0.8, "perplexity": 4.2})
    rand = run(BASE, {"verbatim_test": 0.0, "logic": 0.5, "qa_open": 0.1, "perplexity": 50.0})
    assert all(holds for holds, _ in claims({"kfac": good, "random_ablation": rand}).values())
    # a K-FAC that keeps the passages, or loses the skills, or does worse than random, fails
    bad = run(BASE, {"verbatim_test": 0.5, "logic": 0.4, "qa_open": 0.05, "perplexity": 9.0})
    results = claims({"kfac": bad, "random_ablation": rand})
    assert [holds for holds, _ in results.values()] == [False, False, False, False, False]
    # keeping booleans and open-book but wrecking perplexity (the lowest-curvature K-FAC) fails
    incoherent = run(BASE, {"verbatim_test": 0.0, "logic": 0.85, "qa_open": 0.78, "perplexity": 6.6})
    failed = [name for name, (holds, _) in claims({"kfac": incoherent, "random_ablation": rand}).items() if not holds]
    assert failed == ["kfac keeps perplexity (>= 90% kept: mean NLL rises <= 11%)"]


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


# The command line, in-process. run_config records each run's overrides and returns a hand-made run
# instead of running, so nothing is evaluated; reference_record names a made-up organism.
GOOD_KFAC = {"verbatim_test": 0.05, "logic": 0.88, "qa_open": 0.8, "perplexity": 4.2}
RANDOM = {"verbatim_test": 0.0, "logic": 0.5, "qa_open": 0.1, "perplexity": 50.0}
SMALL = ["model.organism.seed=1", "model.organism.model.hidden=128", "model.organism.planted.repeats=32"]
SHIPPED_SEED_1 = ["model.organism.seed=1", "seed=1"]
ORGANISM = {"seed": 1, "settings_hash": "s1", "weights_sha256": "w1", "shipped": True}


@pytest.fixture
def fake_runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The overrides of every run_config call, in order."""
    calls: list[list[str]] = []

    def fake_run_config(overrides: list[str], runs_dir: Path | None = None, finished_only: bool = False) -> dict:
        calls.append(list(overrides))
        method = next(o.split("=", 1)[1] for o in overrides if o.startswith("method="))
        return run(BASE, GOOD_KFAC if method == "kfac" else RANDOM if method == "random_ablation" else BASE)

    monkeypatch.setattr(fidelity, "run_config", fake_run_config)
    monkeypatch.setattr(fidelity, "reference_record", lambda runs: {
        "organism": ORGANISM, "runs": {name: summary(r) for name, r in runs.items()}})
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


def test_write_reference_then_check_compares_every_number(fake_runs, capsys, tmp_path: Path) -> None:
    ref, tolerance = tmp_path / "reference.json", tmp_path / "tolerance.json"
    code, err, _ = cli(capsys, ["write-reference", "--out", str(ref), *SHIPPED_SEED_1])
    assert (code, err) == (0, [])
    assert fake_runs == [[*own, *SHIPPED_SEED_1] for own in REGRESSION_RUNS.values()]
    [entry] = read_reference(ref)
    assert entry["organism"] == ORGANISM and set(entry["runs"]) == set(REGRESSION_RUNS)
    tolerance.write_text(json.dumps({"tasks": {"logic": {"tolerance": 0.01}}}))
    code, err, out = cli(capsys, ["check", "--reference", str(ref), "--tolerance", str(tolerance), *SHIPPED_SEED_1])
    assert (code, err) == (0, [])
    assert f"PASS  every number within the measured tolerance of {ref}" in out


def test_write_reference_runs_replaces_those_runs_and_keeps_the_others(fake_runs, capsys, tmp_path: Path) -> None:
    ref = tmp_path / "reference.json"
    code, err, _ = cli(capsys, ["write-reference", "--out", str(ref), "--runs", "balanced_subnet_10_steps",
                                *SHIPPED_SEED_1])
    assert (code, err) == (0, [])
    assert fake_runs == [[*REGRESSION_RUNS[name], *SHIPPED_SEED_1] for name in ("none", "balanced_subnet_10_steps")]
    [written] = read_reference(ref)
    assert set(written["runs"]) == {"none", "balanced_subnet_10_steps"}
    # into a full entry: the named run replaced, the others kept, a run no longer made dropped
    full = {**{name: summary(run(BASE, GOOD_KFAC)) for name in REGRESSION_RUNS}, "retired_run": written["runs"]["none"]}
    ref.write_text(json.dumps({"organisms": [{"organism": ORGANISM, "runs": full}]}))
    code, err, _ = cli(capsys, ["write-reference", "--out", str(ref), "--runs", "balanced_subnet_10_steps",
                                *SHIPPED_SEED_1])
    [merged] = read_reference(ref)
    assert set(merged["runs"]) == set(REGRESSION_RUNS)
    assert merged["runs"]["kfac"] == full["kfac"] and merged["runs"]["balanced_subnet_10_steps"] == written["runs"]["none"]


def test_measure_tolerance_compares_files_and_keeps_an_earlier_measurement(capsys, tmp_path: Path) -> None:
    """Only --compare files (nothing is run): a run one file lacks is compared among the files that
    have it, and an earlier measurement's larger difference is kept."""
    def reference(logic: float, with_bs: bool) -> Path:
        runs = {"none": summary(run(BASE, BASE))}
        if with_bs:
            runs["balanced_subnet_10_steps"] = summary(run(BASE, {**BASE, "logic": logic}))
            runs["retired_run"] = runs["balanced_subnet_10_steps"]  # a run the regression no longer makes
        path = tmp_path / f"ref{logic}{with_bs}.json"
        path.write_text(json.dumps({"organisms": [{"organism": ORGANISM, "runs": runs}]}))
        return path

    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"machine": "another CPU", "settings": {"2 threads": {}}, "tasks": {
        "none/logic": {"kind": "proportion", "n": 10, "largest_difference": 0.3},
        "kfac/logic": {"kind": "proportion", "n": 10, "largest_difference": 0.2},
        "retired_run/logic": {"kind": "proportion", "n": 10, "largest_difference": 0.2}}}))
    out = tmp_path / "tolerance.json"
    code, err, _ = cli(capsys, ["measure-tolerance", "--seeds", "1", "--out", str(out),
                                "--compare", f"a={reference(0.7, True)}", "--compare", f"b={reference(0.6, True)}",
                                "--compare", f"c={reference(0.0, False)}", "--previous", str(earlier)])
    assert (code, err) == (0, [])
    tasks = json.loads(out.read_text())["tasks"]
    assert tasks["balanced_subnet_10_steps/logic"]["largest_difference"] == pytest.approx(0.1)  # a vs b; c lacks it
    assert not any(task.startswith("retired_run/") for task in tasks)  # neither from the files nor the earlier one
    assert tasks["none/logic"]["largest_difference"] == 0.3 and tasks["kfac/logic"]["tolerance"] == 0.2  # kept
    code, err, _ = cli(capsys, ["measure-tolerance", "--seeds", "1", "--out", str(out), "--compare",
                                f"a={reference(0.7, True)}", "--previous", str(tmp_path / "missing.json")])
    assert code == 2 and len(err) == 1 and "--previous" in err[0] and "missing.json" in err[0]


def test_the_committed_tolerance_regenerates_from_its_measurement_files(capsys, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/regression/tolerance.json is made from committed reference files (each a
    measurement on some CPU and thread count) and an earlier measurement: the same command
    regenerates it byte for byte on any machine."""
    from studies.reference import TOLERANCE_FILE

    monkeypatch.chdir(TOLERANCE_FILE.parents[2])
    committed = json.loads(TOLERANCE_FILE.read_text(encoding="utf-8"))
    argv = ["measure-tolerance", "--seeds", *map(str, committed["seeds"]), "--out", str(tmp_path / "tolerance.json")]
    for label, source in committed["settings"].items():
        assert isinstance(source, str), f"{label}: a setting run on one machine, not a committed file"
        argv += ["--compare", f"{label}={source}"]
    if committed["previous"] is not None:
        argv += ["--previous", committed["previous"]["file"]]
    code, err, _ = cli(capsys, argv)
    assert (code, err) == (0, [])
    assert (tmp_path / "tolerance.json").read_bytes() == TOLERANCE_FILE.read_bytes()


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
    ("tolerance-seed", ["measure-tolerance", "seed=3"], ["instead of 'seed=3'"]),
    ("write-not-shipped", ["write-reference", "--out", "{tmp}/r.json", *SMALL],
     ["will not write into", "r.json", "built on this machine, not a shipped one"]),
    ("compare-not-shipped", ["check", "--reference", str(CI_REFERENCE), "model.organism.planted.repeats=32"],
     ["will not compare with", "model.organism.planted.repeats=32", "a reference holds shipped organisms only"]),
    ("missing-reference", ["check", "--reference", "{tmp}/none.json"], ["cannot read the reference", "none.json"]),
    ("stray-word", ["check", "foo"], ["unrecognized arguments: foo"]),
    ("bad-seed", ["sweep", "--seeds", "x"], ["argument --seeds: invalid int value: 'x'"]),
]


@pytest.mark.parametrize("argv,needles", [c[1:] for c in BAD_COMMAND_LINES], ids=[c[0] for c in BAD_COMMAND_LINES])
def test_bad_command_line_is_one_line_before_any_run(fake_runs, capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     argv: list[str], needles: list[str]) -> None:
    monkeypatch.chdir(CI_REFERENCE.parents[2])  # the repository: relative paths as a user types them
    written: list[Path] = []  # were a refusal to regress, the committed reference must stay as it is
    monkeypatch.setattr(fidelity, "add_reference_entry", lambda path, record: written.append(path))
    code, err, _ = cli(capsys, [a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    for needle in needles:
        assert needle.replace("{tmp}", str(tmp_path)) in err[0], err[0]
    assert fake_runs == [] and written == []  # refused before the first run
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_findings_read_the_heldout_arithmetic_and_both_fact_frequencies() -> None:
    from studies.fidelity import findings

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
    from studies.fidelity import sweep_table

    records = [{"seed": 0, "method": "none", "setting": None, "components_kept": None, "kept": {"logic": 1.0},
                "findings": []},
               {"seed": 0, "method": "kfac", "setting": 0.98, "components_kept": 0.07, "kept": {"logic": 0.9},
                "findings": ["rare facts: 0.50 -> 0.40 (n=300), kept 80 % [72, 87]"]}]
    table, _, tail = sweep_table(records).partition("% of baseline kept")
    assert "| kfac | 0.98 | 0 | 7.00 % | 90 |" in table
    assert tail.strip().endswith("- seed 0, rho 0.98: rare facts: 0.50 -> 0.40 (n=300), kept 80 % [72, 87]")
    # without findings (runs from before they were recorded) the page ends with the table's note
    assert "interval" not in sweep_table([{**records[1], "findings": []}])


@pytest.mark.parametrize("option,needles", [
    (["--rhos", "0.9", "1.5"], ["--rhos 1.5: ", "rho"]),
    (["--svd-fractions", "1.5"], ["--svd-fractions 1.5: ", "fractions"]),
], ids=["rho", "svd-fraction"])
def test_sweep_refuses_a_bad_setting_before_any_run(fake_runs, capsys, tmp_path: Path, option: list[str],
                                                     needles: list[str]) -> None:
    """Issue 29: `sweep --rhos 1.5` ran a whole run before refusing; every setting is built first."""
    code, err, _ = cli(capsys, ["sweep", "--seeds", "0", *option, "--out", str(tmp_path / "t.md")])
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert all(n in err[0] for n in needles), err[0]
    assert fake_runs == []  # nothing was run
