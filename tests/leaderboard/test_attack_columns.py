"""The leaderboard's attack columns: built from real run files with attack results (tiny model),
values equal to the run file's, intervals present, the relearning plot, and malformed attack
entries rejected by the collector."""

import copy
import json
from pathlib import Path

from leaderboard import aggregate, plots, render_attacks
from leaderboard.__main__ import build
from leaderboard.collect import collect, problem
from tests.harness.test_attack_runner import attack_args, run


def test_attack_columns_come_from_the_run_files(tiny_model_dir: Path, tmp_path: Path) -> None:
    record = run(tiny_model_dir, tmp_path / "runs", *attack_args(tiny_model_dir))
    result = build([tmp_path / "runs"], tmp_path / "out")
    assert result["runs"] == 1 and tmp_path.joinpath("out", "attacks.csv") in result["written"]
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    for header in ("after relearn forget_half k=1", "after relearn retain k=2", "after relearn related k=2",
                   "after int8", "extractable by sampling (n2_t1_k40_p0.9)"):
        assert header in md
    runs, _ = collect([tmp_path / "runs"])
    table = aggregate.attack_long_table(runs)
    row = table[(table.unit == "quantize.int8") & (table.task == "verbatim")].iloc[0]
    entry = record["edited"]["attacks"]["quantize.int8"]["tasks"]["verbatim"]
    assert row.edited == entry["metrics"]["strict"] and row.n == 6
    assert 0 <= row.edited_ci_low <= row.edited <= row.edited_ci_high <= 1  # Wilson interval
    assert row.baseline == record["baseline"]["attacks"]["quantize.int8"]["tasks"]["verbatim"]["metrics"]["strict"]
    sections = render_attacks.build_attack_sections(aggregate.attack_summary(table))
    assert [c.text for c in sections[0].raw_rows[0][:1]] == ["unedited"] and len(sections[0].raw_rows) == 2
    png = plots.relearn_png(aggregate.attack_summary(table))
    assert png is not None and png.startswith(b"\x89PNG")
    assert "Recovered recall vs relearning steps" in (tmp_path / "out" / "index.html").read_text()
    from attacks.tables import tables

    text = tables(str(tmp_path / "out" / "attacks.csv"), ("verbatim", "quotes"))
    header = next(line for line in text.splitlines() if line.startswith("| model"))
    assert header.split(" | ")[2:5] == ["retain k=1", "retain k=2", "related k=1"]  # forget_half split verbatim
    none_row = next(line for line in text.splitlines() if line.startswith("| none (1)"))
    assert none_row.split(" | ")[header.split(" | ").index("int8")] == f"{row.edited:.2f}"


def test_runs_without_attacks_add_no_attack_section(tiny_model_dir: Path, tmp_path: Path) -> None:
    run(tiny_model_dir, tmp_path / "runs")
    build([tmp_path / "runs"], tmp_path / "out", html_page=False)
    assert "Attacks" not in (tmp_path / "out" / "leaderboard.md").read_text()
    assert not (tmp_path / "out" / "attacks.csv").exists()


def test_malformed_attack_entries_are_rejected(tiny_model_dir: Path, tmp_path: Path) -> None:
    record = json.loads(json.dumps(run(tiny_model_dir, tmp_path, *attack_args(tiny_model_dir)), default=str))
    assert problem(record) is None
    bad = copy.deepcopy(record)
    bad["edited"]["attacks"]["quantize.int8"]["tasks"]["verbatim"]["metrics"]["strict"] = "high"
    assert "non-numeric" in problem(bad)
    bad = copy.deepcopy(record)
    del bad["baseline"]["attacks"]["quantize.int8"]["setting"]
    assert "setting" in problem(bad)
