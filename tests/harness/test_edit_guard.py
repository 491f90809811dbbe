"""The guard on destructive edits (issue 29, item 5): a coherence task whose perplexity rose more
than 10x, or more than 90 % of the changed matrices' components removed, gives one warning line
when it happens, a line in the run file's `warnings`, and a line under the run table."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from core.measures import COLLAPSE_RATIO, REMOVED_LIMIT, collapse_warnings, edit_warnings, removal_warning
from core.runrecord import run_problem


def entry(family: str, mean_nll: float) -> dict:
    return {"task": "perplexity", "family": family, "metrics": {"mean_nll": mean_nll}, "n": 4,
            "primary": "mean_nll", "kinds": {"mean_nll": "mean"}, "higher_is_better": {"mean_nll": False}}


def test_removal_line_above_the_limit_only() -> None:
    def changed(removed: int) -> dict:
        return {"a.weight": {"components_total": 600, "components_removed": removed},
                "b.weight": {"components_total": 400, "components_removed": 0}}

    assert REMOVED_LIMIT == 0.9
    assert removal_warning(changed(600 + 300 - 0)) is None  # exactly 90 %: not more than it
    line = removal_warning({**changed(600), "b.weight": {"components_total": 400, "components_removed": 301}})
    assert line and line.startswith("the edit removed 90.1 % of the components of the 2 matrices")
    assert removal_warning({"a.weight": {"fraction": 0.5}}) is None  # a method that reports no components
    assert removal_warning({}) is None


def test_collapse_line_when_perplexity_rises_more_than_tenfold() -> None:
    assert COLLAPSE_RATIO == 10
    base = {"ppl": entry("coherence", 2.0), "verbatim": entry("memorized", 0.1)}
    just_under = {"ppl": entry("coherence", 2.0 + math.log(10) - 1e-6), "verbatim": entry("memorized", 9.0)}
    assert collapse_warnings(base, just_under) == []  # a memorized family's rise is what the edit is for
    lines = collapse_warnings(base, {"ppl": entry("coherence", 2.0 + math.log(8053))})
    assert len(lines) == 1 and lines[0].startswith("ppl: perplexity 7.389 -> 59,504, 8,053x the baseline's")
    assert collapse_warnings(base, {"ppl": entry("coherence", math.inf)})[0].startswith("ppl: perplexity 7.389 -> inf")
    assert collapse_warnings(base, {}) == []  # not measured after the edit
    run = {"method": {"report": {"changed": {"w": {"components_total": 10, "components_removed": 10}}}},
           "baseline": {"tasks": base}, "edited": {"tasks": {"ppl": entry("coherence", 9.0)}}}
    assert [line.split(" ")[0] for line in edit_warnings(run)] == ["the", "ppl:"]


def test_a_destructive_run_warns_files_the_line_and_shows_it_under_the_table(tiny_model_dir, tmp_path, capsys):
    from hydra import compose, initialize_config_dir
    from rich.console import Console

    from harness.pipeline import print_run, run_experiment
    from tests.conftest import harness_args

    conf = Path(__file__).resolve().parents[2] / "conf"
    args = harness_args(tiny_model_dir, tmp_path / "runs", "method=kfac", "method.rho=0.05", "method.tokens=512",
                        "method.seq_len=16", "method.batch_size=4", f"model.data.stats={tiny_model_dir / 'text.txt'}")
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        cfg = compose(config_name="config", overrides=args)
    run = run_experiment(cfg)
    err = capsys.readouterr().err.splitlines()
    said = [line for line in err if line.startswith("warning: the edit removed")]
    assert len(said) == 1 and run["warnings"] == [said[0].removeprefix("warning: ")]
    assert run_problem(run) is None
    console = Console(record=True, width=80)
    print_run(console, run)
    shown = console.export_text().splitlines()
    assert said[0] in shown and shown.index(said[0]) == len(shown) - 1  # under the table, whole on one line
    # a finished run reused prints the line again under its table; a hand-edited one is refused
    assert run_experiment(cfg)["warnings"] == run["warnings"]
    assert said[0] in capsys.readouterr().out.splitlines()
    assert run_problem({**run, "warnings": "oops"}) == "warnings is not a list of lines"
