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
