"""The run table prints names whole, on a narrow terminal and in a log file."""

import io

from rich.console import Console

from harness.report import print_table, run_table

LONG = "verbatim_files_from_the_authors"
RUN = {"identity": {"model": "tiny", "suite": "own_model", "method": "kfac_vit", "seed": 0},
       "baseline": {"tasks": {LONG: {"family": "memorized_val", "n": 6, "primary": "strict",
                                     "metrics": {"strict": 0.5}, "higher_is_better": {}}}},
       "edited": {"tasks": {LONG: {"metrics": {"strict": 0.25}}}}}


def test_log_file_gets_the_whole_table_on_one_line_per_row() -> None:
    out = io.StringIO()
    console = Console(file=out, width=40)  # not a terminal: rich would assume 80 or less
    print_table(console, run_table(RUN))
    rows = [line for line in out.getvalue().splitlines() if LONG in line]
    assert len(rows) == 1 and "memorized_val" in rows[0] and "50.0" in rows[0]
    assert "…" not in out.getvalue() and console.width == 40


def test_narrow_terminal_folds_names_instead_of_cutting_them() -> None:
    out = io.StringIO()
    print_table(Console(file=out, width=50, force_terminal=True, color_system=None), run_table(RUN))
    cells = "".join(line.split("│")[2].strip() for line in out.getvalue().splitlines() if line.count("│") > 3)
    assert LONG in cells and "…" not in out.getvalue()


def test_sub_metric_rows_show_their_own_n() -> None:
    """Issue 29: arithmetic's trained / held-out rows score 100 and 200 of its 300 examples; the
    run table says so (n = the metric's own samples), not the task's 300."""
    samples = {"exact_match": [1.0] * 300, "exact_match_trained": [1.0] * 100, "exact_match_heldout": [0.0] * 200}
    entry = {"family": "arithmetic", "n": 300, "primary": "exact_match", "samples": samples,
             "metrics": {m: sum(v) / len(v) for m, v in samples.items()},
             "higher_is_better": {m: True for m in samples}}
    run = {"identity": RUN["identity"], "baseline": {"tasks": {"arithmetic": entry}},
           "edited": {"tasks": {"arithmetic": entry}}}
    out = io.StringIO()
    print_table(Console(file=out, width=200), run_table(run))
    n = {cells[2]: cells[3] for cells in ([c.strip() for c in line.split("│")[1:-1]]
                                          for line in out.getvalue().splitlines() if "exact_match" in line)}
    assert n == {"exact_match": "300", "exact_match_trained": "100", "exact_match_heldout": "200"}
