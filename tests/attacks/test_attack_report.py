"""The printed attack table: one row per unit × task, task names with [brackets] shown as written."""

from attacks.report import attack_table
from core.attackrecords import attack_rows


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


def test_each_attack_declares_the_column_old_run_files_get() -> None:
    """Units recorded before attacks declared their columns get core.attackrecords.legacy_column:
    an attack's own declaration must give the same column, or old and new runs would split."""
    from attacks.base import AttackUnit
    from attacks.quantize import Quantize
    from attacks.relearn import Relearn
    from attacks.sample import Sample
    from core.attackrecords import legacy_column

    cases = [(Relearn(), "relearn", AttackUnit("k", "retain", {}, steps=50)),
             (Relearn(), "relearn", AttackUnit("k", "forget_half", {}, steps=10)),
             (Quantize(), "quantize", AttackUnit("k", "int4_g128", {})),
             (Quantize(), "quantize", AttackUnit("k", "int8", {})),
             (Sample(), "sample", AttackUnit("k", "n32_t1_k40_p0.9", {}))]
    for attack, name, unit in cases:
        assert attack.column(unit, name) == legacy_column(name, unit.setting, unit.steps), (name, unit.setting)
    # ordered: relearn before quantize (int8 before int4, per channel before grouped) before sampling
    ranks = [legacy_column(n, u.setting, u.steps)["rank"] for _, n, u in cases]
    assert sorted(ranks) == [ranks[1], ranks[0], ranks[3], ranks[2], ranks[4]]
