"""Attack results as rows and as the printed table: shared by `python -m harness` (after the run
table) and the leaderboard."""

from __future__ import annotations

from typing import Any

from core.families import HEADLINE_FAMILIES


def attack_rows(run: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per attack unit × task (primary metric): unedited and edited, each without and
    with the attack. Shared by the printed table and the leaderboard."""
    rows = []
    base_units = (run.get("baseline") or {}).get("attacks") or {}
    plain_edit, plain_base = run["edited"]["tasks"], run["baseline"].get("tasks", {})
    for key, unit in (run["edited"].get("attacks") or {}).items():
        base_unit = base_units.get(key, {})
        for task, entry in unit["tasks"].items():
            plain = task.split("[")[0]
            primary = entry["primary"]
            base_entry = (base_unit.get("tasks") or {}).get(task)
            # The no-attack reference uses the same metric when the task reports it (sampling's
            # any_exact has no greedy counterpart: its reference is greedy strict recall).
            ref_metric = primary if primary in plain_edit.get(plain, {}).get("metrics", {}) else \
                plain_edit.get(plain, {}).get("primary")
            rows.append({
                "unit": key, "attack": unit["attack"], "setting": unit["setting"], "steps": unit.get("steps"),
                "task": task, "family": entry["family"], "metric": primary, "n": entry["n"],
                "kind": entry["kinds"].get(primary, "value"),
                "unedited_no_attack": plain_base.get(plain, {}).get("metrics", {}).get(ref_metric),
                "unedited_attacked": base_entry["metrics"][primary] if base_entry else None,
                "edited_no_attack": plain_edit.get(plain, {}).get("metrics", {}).get(ref_metric),
                "edited_attacked": entry["metrics"][primary],
                "edited_samples": entry.get("samples", {}).get(primary),
                "unedited_samples": base_entry.get("samples", {}).get(primary) if base_entry else None,
            })
    return rows


def unit_label(row: dict[str, Any]) -> str:
    """'relearn retain k=50', 'quantize int4_g128', 'sample n32_t1_k40_p0.9'."""
    return " ".join([row["attack"], row["setting"]] + ([f"k={row['steps']}"] if row["steps"] is not None else []))


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
