"""leaderboard.load_runs: the run files as one DataFrame, one row per run x task x metric, with
the identity keys; the same rows the leaderboard's runs.csv holds."""

import json
from pathlib import Path

import pytest

from core.errors import ConfigError
from leaderboard import load_runs
from synthetic import SUITE, make_run, write_runs


def test_one_row_per_run_task_metric_with_the_identity_keys(tmp_path: Path) -> None:
    runs = [make_run("none", {}), make_run("kfac", {"verbatim_validation": 0.25}, params={"rho": 0.9}),
            make_run("kfac", {"verbatim_validation": 0.5}, params={"rho": 0.9}, seed=1)]
    write_runs(tmp_path, runs)
    (tmp_path / "notes.json").write_text(json.dumps({"not": "a run"}))  # skipped, with a warning
    frame = load_runs(tmp_path)
    assert len(frame) == len(runs) * len(SUITE)  # one metric ("score") per task here
    assert {"model", "suite", "method", "seed", "config_hash", "task", "metric", "baseline", "edited",
            "pct_kept", "family"} <= set(frame.columns)
    row = frame[(frame.method == "kfac") & (frame.seed == 1) & (frame.task == "verbatim_validation")]
    assert len(row) == 1 and row.edited.iloc[0] == 0.5 and row.baseline.iloc[0] == 1.0
    assert row.pct_kept.iloc[0] == pytest.approx(50.0)
    assert set(frame.config_hash) == {r["identity"]["config_hash"][:12] for r in runs}


def test_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_runs(tmp_path / "nowhere")
