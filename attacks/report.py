"""The printed attack table of `python -m harness` (after the run table), from the run file's
attack results (core.attackrecords)."""

from __future__ import annotations

from typing import Any

from core.attackrecords import attack_rows, unit_label
from core.families import HEADLINE_FAMILIES


def attack_table(run: dict[str, Any]) -> Any:
    """The printed attack table (rich), or None when the run has no attack results."""
    from rich.markup import escape
    from rich.table import Table

    rows = attack_rows(run)
    if not rows:
        return None
    ident = run["identity"]
    table = Table(title=f"attacks · method={ident['method']} · seed={ident['seed']}",
                  caption="no attack = greedy decoding (strict recall); sampling: share of prompts with "
                          "any exact sample; " + escape("[trained]/[heldout]") + ": halves of a task the relearning saw / did not")
    for col, justify in [("attack", "left"), ("task", "left"), ("metric", "left"), ("n", "right"),
                         ("unedited", "right"), ("unedited attacked", "right"), ("edited", "right"),
                         ("edited attacked", "right")]:
        table.add_column(col, justify=justify)
    fmt = lambda v: "…" if v is None else f"{v:.3f}"  # noqa: E731
    last = None
    for r in rows:
        if last is not None and unit_label(r) != last:
            table.add_section()
        last = unit_label(r)
        table.add_row(last, escape(r["task"]), r["metric"], str(r["n"]), fmt(r["unedited_no_attack"]),
                      fmt(r["unedited_attacked"]), fmt(r["edited_no_attack"]), fmt(r["edited_attacked"]),
                      style="bold" if r["family"] in HEADLINE_FAMILIES else None)
    return table
