import copy
import json
from pathlib import Path

import pytest

from core.errors import ConfigError
from leaderboard.collect import collect, find_run_files, newest_per_identity, problem, read_run

FIXTURES = Path(__file__).parent / "fixtures"


def a_run() -> dict:
    path = next((FIXTURES / "organism" / "memorization" / "kfac").glob("*.json"))
    return json.loads(path.read_text())


def test_fixture_runs_are_valid():
    assert problem(a_run()) is None


def test_bad_files_are_skipped_with_one_warning_each_and_counted():
    warnings = []
    runs, skipped = collect([FIXTURES], warn=warnings.append)
    assert skipped == 4 and len(warnings) == 4
    assert all(w.startswith("warning: skipped ") and "\n" not in w for w in warnings)
    for name, why in [("corrupt.json", "unreadable JSON"), ("foreign.json", "not a run file"),
                      ("schema2.json", "schema_version 2"), ("running.json", "status 'running'")]:
        assert any(name in w and why in w for w in warnings), name
    # 15 valid files, one of them an older duplicate; the baseline cache is not a run at all.
    assert len(runs) == 14
    assert not any("baselines" in str(p) for p in find_run_files([FIXTURES]))


def test_newest_run_of_an_identity_wins():
    runs, _ = collect([FIXTURES], warn=lambda line: None)
    older = json.loads((FIXTURES / "older_copy" / "kfac-rho0.9-seed0.json").read_text())
    same = [(p, r) for p, r in runs if r["identity"] == older["identity"]]
    assert len(same) == 1
    path, kept = same[0]
    assert "older_copy" not in str(path) and kept["updated"] > older["updated"]
    assert kept["edited"]["tasks"] != older["edited"]["tasks"]  # the fixture really differs
    # Order of discovery does not matter.
    newer = (path, kept)
    old = (FIXTURES / "older_copy" / "kfac-rho0.9-seed0.json", older)
    assert newest_per_identity([newer, old]) == [newer] == newest_per_identity([old, newer])


@pytest.mark.parametrize("mutate,why", [
    (lambda r: r["identity"].pop("config_hash"), "identity.config_hash"),
    (lambda r: r["identity"].__setitem__("seed", True), "identity.seed"),
    (lambda r: r.__setitem__("updated", "yesterday"), "updated"),
    (lambda r: r["method"].__setitem__("data_needed", "forget"), "data_needed"),
    (lambda r: r["edited"]["tasks"]["quotes"].__setitem__("primary", "nope"), "primary"),
    (lambda r: r["edited"]["tasks"]["quotes"]["metrics"].__setitem__("strict", "high"), "non-numeric"),
    (lambda r: r["edited"]["tasks"]["quotes"]["metrics"].__setitem__("loose", float("nan")), "metrics.loose is NaN"),
    (lambda r: r["baseline"]["tasks"].pop("quotes"), "without a baseline"),
    (lambda r: r["edited"]["tasks"]["quotes"]["samples"]["strict"].append("x"), "lists of numbers"),
    (lambda r: r["config"].__setitem__("method", "kfac"), "config.method"),
    (lambda r: r["edited"].__setitem__("tasks", {}), "edited.tasks"),
])
def test_problem_names_what_is_wrong(mutate, why):
    run = copy.deepcopy(a_run())
    mutate(run)
    assert why in problem(run)


def test_read_run_reports_non_object_json(tmp_path):
    (tmp_path / "list.json").write_text("[1, 2]")
    run, reason = read_run(tmp_path / "list.json")
    assert run is None and "not a run file" in reason


def test_missing_run_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        collect([tmp_path / "nope"])


def test_cheap_import():
    import subprocess
    import sys

    code = ("import sys, leaderboard, leaderboard.__main__, leaderboard.collect, leaderboard.aggregate, "
            "leaderboard.render, leaderboard.plots, core.measures, leaderboard.headline; "
            "print(sorted(m for m in ('pandas', 'scipy', 'matplotlib', 'numpy', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_reads_run_files_the_pipeline_wrote():
    """tests/leaderboard/pipeline_runs: written by `python -m harness model=hf model.path=<tiny
    OLMo-2 from tests/conftest.py> suite=verbatim_files method=none|svd` (docs/leaderboard.md)."""
    from leaderboard.aggregate import long_table

    warnings = []
    runs, skipped = collect([Path(__file__).parent / "pipeline_runs"], warn=warnings.append)
    assert (skipped, warnings) == (0, [])  # the baselines/ cache is passed over silently
    assert sorted(r["identity"]["method"] for _, r in runs) == ["none", "svd"]
    long = long_table(runs)
    assert set(long.task) == {"verbatim", "quotes"} and len(long) == 2 * 2 * 3
