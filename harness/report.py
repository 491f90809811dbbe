"""The table a run prints: baseline, edited, and % of the baseline kept (core.measures), grouped by
family, and under it the run's warnings (the guard on destructive edits)."""

from __future__ import annotations

from typing import Any

from core.families import family_rank
from core.measures import entry_percent_kept, metric_n


def run_table(run: dict[str, Any]) -> "rich.table.Table":
    from rich.table import Table

    ident = run["identity"]
    table = Table(title=f"{ident['model']} · {ident['suite']} · method={ident['method']} · seed={ident['seed']}")
    for col, justify in [("family", "left"), ("task", "left"), ("metric", "left"), ("n", "right"),
                         ("baseline", "right"), ("edited", "right"), ("% kept", "right")]:
        # never "verbatim_f…": a cell too narrow for its name folds onto the next line instead
        table.add_column(col, justify=justify, overflow="fold")
    baseline, edited = run["baseline"]["tasks"], run["edited"]["tasks"]
    names = sorted(baseline, key=lambda t: (family_rank(baseline[t]["family"]), t))
    for name in names:
        base = baseline[name]
        edit = edited.get(name)
        for metric, value in base["metrics"].items():
            arrow = "" if base["higher_is_better"].get(metric, True) else " ↓"
            edited_value = edit["metrics"].get(metric) if edit else None  # None: not measured there
            pct = entry_percent_kept(base, edit, metric) if edited_value is not None else None
            table.add_row(
                base["family"], name, metric + arrow, str(metric_n(base, metric)), with_interval(value, base, metric),
                "…" if edited_value is None else with_interval(edited_value, edit, metric),
                "n/a" if pct is None else f"{pct:.1f}",
                style="bold" if metric == base["primary"] else "dim",
            )
        table.add_section()
    return table


def run_warnings(run: dict[str, Any]) -> list[str]:
    """The lines printed under the run table: the guard on destructive edits (core/measures.py)
    as the run file keeps them, each whole on one line."""
    warnings = run.get("warnings")
    return [f"warning: {line}" for line in warnings if isinstance(line, str)] if isinstance(warnings, list) else []


def with_interval(value: float, entry: dict[str, Any], metric: str) -> str:
    """The value, and the interval the task computed for it where it did (e.g. an AUC's bootstrap)."""
    lo_hi = (entry.get("intervals") or {}).get(metric)
    return f"{value:.4g}" if not lo_hi else f"{value:.4g} [{lo_hi[0]:.3g}, {lo_hi[1]:.3g}]"


def print_table(console: "rich.console.Console", table: "rich.table.Table") -> None:
    """Print `table` whole. On a terminal rich fits it to the width (cells fold, nothing is cut);
    in a log file (no terminal, rich assumes 80 columns) it is printed as wide as it needs."""
    if console.is_terminal:
        console.print(table)
        return
    from rich.measure import Measurement

    needed = Measurement.get(console, console.options.update_width(10_000), table).maximum
    width = console.width
    console.width = max(width, needed)  # print(width=...) cannot exceed the console's width
    try:
        console.print(table)
    finally:
        console.width = width
