"""The findings table over spectrum results (analysis/summary.py), on hand-made results."""

from __future__ import annotations

import json
from pathlib import Path

from analysis.summary import main, more_on, spectrum_table


def fake_result(seed: int, bottom: float, top: float) -> dict:
    ratios = {"bottom half": {"ratio": bottom, "lo": bottom - 0.05, "hi": bottom + 0.05},
              "top 10%": {"ratio": top, "lo": top - 0.05, "hi": top + 0.05},
              "all": {"ratio": 1.0, "lo": 0.9, "hi": 1.1}}
    return {"config": {"model": {"name": "organism", "organism": {"seed": seed}}, "seed": 0},
            "summary": {"memorized/control": ratios},
            "matrices": {"m": {"ratios": {"memorized/control": ratios}}}}


def test_more_on_reads_ratios_as_percent_more() -> None:
    assert more_on({"ratio": 1.23, "lo": 1.1, "hi": 1.3}) == "+23.0 % [+10.0, +30.0]"
    # Inverted: 0.8 memorized/other = the other set 25 % more active; bounds swap.
    assert more_on({"ratio": 0.8, "lo": 0.5, "hi": 1.0}, invert=True) == "+25.0 % [+0.0, +100.0]"


def test_table_has_a_row_per_result_and_the_mean(tmp_path: Path, capsys) -> None:
    table = spectrum_table([fake_result(0, 1.2, 0.8), fake_result(1, 1.3, 0.8)])
    assert "organism seed 0 (run seed 0) | memorized/control | +20.0 %" in table
    assert "| mean ± std over 2 results | memorized/control | +25.0 ± 7.1 % | +25.0 ± 0.0 % | | | |" in table
    assert "| +0.0 % [-10.0, +10.0] | 1/1 | 1/1 |" in table
    folder = tmp_path / "analysis" / "organism" / "organism_full"
    folder.mkdir(parents=True)
    (folder / "spectrum-seed0-x.json").write_text(json.dumps(fake_result(0, 1.2, 0.8)))
    assert main([str(tmp_path)]) == 0
    assert "+20.0 %" in capsys.readouterr().out
    assert main([str(tmp_path / "nowhere")]) == 2


def test_predict_table_orders_families_by_removed_share() -> None:
    from analysis.summary import predict_table

    run = {"rho": 0.95, "components_removed_share": 0.975,
           "families": {"logic": {"removed_share": 0.1, "drop": 0.0}, "math": {"removed_share": 0.3, "drop": 0.5}},
           "spearman": {"rho": 1.0, "p": 0.0, "n": 2}, "spearman_skills": {"rho": 1.0, "p": 0.0, "n": 2}}
    table = predict_table([{"config": fake_result(2, 1, 1)["config"], "runs": [run]}])
    assert "| organism seed 2 (run seed 0) | 0.95 | 97.50 | 1.000 (0, 2) | 1.000 (0, 2) | math 30.0/50, logic 10.0/0 |" in table
