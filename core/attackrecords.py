"""Attack results in a run file, read without the attacks' code (the run table and the
leaderboard both read them): one row per attack unit × task, and each unit's leaderboard column.

A unit's column (its header and its place among the columns) is what its attack declares
(`attacks.base.Attack.column`), recorded in the run file with the unit (`column`:
{"rank": [...], "header": ...}); the leaderboard sorts by (*rank, setting).
"""

from __future__ import annotations

import math
import re
from typing import Any


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
                "column": unit_column(unit),
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


def column_record(rank: list[float], header: str) -> dict[str, Any]:
    """A unit's column as recorded in the run file."""
    return {"rank": list(rank), "header": header}


def unit_column(unit: dict[str, Any]) -> dict[str, Any]:
    """The column a unit record declares; a unit written before attacks declared their columns
    gets the column those attacks gave it then (legacy_column)."""
    return unit.get("column") or legacy_column(unit["attack"], unit["setting"], unit.get("steps"))


def legacy_column(attack: str, setting: str, steps: float | None) -> dict[str, Any]:
    """The columns of run files written before attacks recorded theirs (relearn, quantize and
    sample existed then; each now declares the same column in its own file)."""
    steps = steps if isinstance(steps, (int, float)) and math.isfinite(steps) else 0
    order = {"relearn": 1, "quantize": 2, "sample": 3}.get(attack, 4)
    setting_rank = {"forget_half": 0, "retain": 1, "related": 2}.get(setting, 3)
    scheme = re.fullmatch(r"int(\d+)(?:_g(\d+))?", str(setting))
    if attack == "quantize" and scheme:  # int8 before int4, per channel before grouped
        bits, group = int(scheme.group(1)), int(scheme.group(2)) if scheme.group(2) else None
        setting_rank = -1000 * bits - (group or 10 ** 6) // 10 ** 3
    header = {"relearn": f"after relearn {setting} k={int(steps)}", "quantize": f"after {setting}",
              "sample": f"extractable by sampling ({setting})"}.get(attack, f"{attack} {setting}")
    return column_record([order, setting_rank, steps], header)
