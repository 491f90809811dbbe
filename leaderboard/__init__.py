"""Leaderboard: read run files, aggregate them, write Markdown/CSV/HTML tables and plots.

`python -m leaderboard [RUN_DIR ...] [--out DIR]` (docs/leaderboard.md). Importing this package
loads nothing heavy: pandas, scipy and matplotlib load only when the leaderboard is built.
For your own analysis, `load_runs(folder)` gives the run files as one pandas DataFrame.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas


def load_runs(folder: str | Path, *more: str | Path) -> "pandas.DataFrame":
    """The finished runs under `folder` (and `more` folders, searched recursively) as one row per
    run x task x metric: the identity keys (model, suite, method, seed, config_hash: its first 12
    characters, as in run file names), the method `variant` and `rho`, `config_key` (the config
    less its seeds: runs that differ only in seed share it), the task's `family`, `task`, `metric`,
    whether it is the task's `primary` metric, `n`, the `baseline` and `edited` values with 95 %
    intervals (`*_ci_low`, `*_ci_high`) and `pct_kept` (docs/leaderboard.md). The rows are the
    leaderboard's own (leaderboard/aggregate.py long_table, the runs.csv it writes): files that
    are not finished runs are skipped with a warning line, and of runs with the same identity
    the newest is kept. A folder that does not exist is a core.errors.ConfigError."""
    from leaderboard.aggregate import long_table
    from leaderboard.collect import collect

    runs, _skipped = collect([Path(folder), *map(Path, more)])
    return long_table(runs)
