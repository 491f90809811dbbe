"""The printed attack table: one row per unit × task, task names with [brackets] shown as written."""

from attacks.report import attack_rows, attack_table


def entry(value: float, n: int = 4, metric: str = "strict") -> dict:
    return {"task": "verbatim", "family": "memorized", "n": n, "primary": metric, "metrics": {metric: value},
            "kinds": {metric: "proportion"}, "higher_is_better": {metric: True}, "samples": {metric: [value] * n}}


def test_rows_pair_each_attack_with_the_unattacked_values_and_brackets_print() -> None:
    from rich.console import Console

    unit = {"attack": "relearn", "setting": "forget_half", "steps": 10, "info": {},
            "tasks": {"v[heldout]": entry(0.5, 2), "v[trained]": entry(1.0, 2)}}
    run = {"identity": {"method": "kfac", "seed": 0},
           "baseline": {"tasks": {"v": entry(1.0)}, "attacks": {"relearn.forget_half.k10": unit}},
           "edited": {"tasks": {"v": entry(0.0)}, "attacks": {"relearn.forget_half.k10": unit}}}
    rows = attack_rows(run)
    assert [(r["task"], r["edited_no_attack"], r["edited_attacked"], r["unedited_no_attack"]) for r in rows] == \
        [("v[heldout]", 0.0, 0.5, 1.0), ("v[trained]", 0.0, 1.0, 1.0)]
    console = Console(record=True, width=200)
    console.print(attack_table(run))
    text = console.export_text()
    assert "v[heldout]" in text and "relearn forget_half k=10" in text and "[trained]/[heldout]" in text
    assert attack_table({**run, "edited": {"tasks": {}}}) is None
