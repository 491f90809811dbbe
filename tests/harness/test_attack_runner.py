"""Attacks in a run, end to end on the tiny saved model: results in the run file under the edited
model and the baseline, the baseline's attack results cached and reused, resume after an
interruption, attack=none keeps a run's identity, bad attack settings fail before the model loads."""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from conftest import harness_args
from core.errors import HarnessError
from core.runrecord import config_hash
from core.attackrecords import attack_rows
from harness.config import resolve_config
from harness.pipeline import run_experiment

CONF = Path(__file__).resolve().parents[2] / "conf"


def attack_args(folder: Path) -> list[str]:
    return [f"model.data.forget={folder / 'verbatim.jsonl'}", f"model.data.retain={folder / 'text.txt'}",
            f"model.data.stats={folder / 'text.txt'}",
            "attack=standard", "attack.attacks.relearn.steps=[1,2]", "attack.attacks.relearn.batch_size=4",
            f"attack.attacks.relearn.related_data={folder / 'text.txt'}", "attack.attacks.quantize.schemes=[int8]",
            "attack.attacks.sample.n=2"]


def compose_cfg(folder: Path, runs: Path, *extra: str):
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return compose(config_name="config", overrides=harness_args(folder, runs, *extra))


def run(folder: Path, runs: Path, *extra: str) -> dict:
    return run_experiment(compose_cfg(folder, runs, *extra))


EXPECTED = {f"relearn.{d}.k{k}" for d in ("forget_half", "retain", "related") for k in (1, 2)} | \
    {"quantize.int8", "sample.n2_t1_k40_p0.9"}


@pytest.fixture
def count_units(monkeypatch):
    from attacks.base import AttackUnit

    calls: list[str] = []
    original = AttackUnit.to_json

    def counted(self, attack, column=None):
        calls.append(self.key)
        return original(self, attack, column)

    monkeypatch.setattr(AttackUnit, "to_json", counted)
    return calls


def test_attack_results_land_in_the_run_file_and_the_baseline_is_cached(tiny_model_dir, tmp_path, monkeypatch,
                                                                         count_units) -> None:
    from tests.harness.test_pipeline import pretend_method_edits

    pretend_method_edits(monkeypatch)
    record = run(tiny_model_dir, tmp_path, *attack_args(tiny_model_dir))
    on_disk = json.loads(next(p for p in tmp_path.rglob("seed0-*.json") if "baselines" not in p.parts).read_text())
    assert on_disk["status"] == "complete" and set(on_disk["edited"]["attacks"]) == EXPECTED
    assert set(on_disk["baseline"]["attacks"]) == EXPECTED
    unit = on_disk["edited"]["attacks"]["relearn.forget_half.k2"]
    assert unit["attack"] == "relearn" and unit["steps"] == 2 and unit["setting"] == "forget_half"
    assert set(unit["tasks"]) == {"verbatim[trained]", "verbatim[heldout]", "quotes"}  # forget = verbatim's file
    assert unit["tasks"]["verbatim[trained]"]["n"] == 3 and unit["tasks"]["quotes"]["task"] == "quotes"
    sample = on_disk["edited"]["attacks"]["sample.n2_t1_k40_p0.9"]["tasks"]["verbatim"]
    assert sample["primary"] == "any_exact" and len(sample["samples"]["p_extract"]) == 6
    caches = list((tmp_path / "baselines").glob("*-attacks-*.json"))
    assert len(caches) == 1 and set(json.loads(caches[0].read_text())["units"]) == EXPECTED
    assert sorted(count_units) == sorted(list(EXPECTED) * 2)  # once on the unedited, once on the edited
    assert {r["unit"] for r in attack_rows(record)} == EXPECTED

    # Another method on the same model reuses the cached baseline attacks: only the edited model is attacked.
    count_units.clear()
    run(tiny_model_dir, tmp_path, *attack_args(tiny_model_dir), "method=kfac", "method.tokens=256",
        "method.seq_len=16")
    assert sorted(count_units) == sorted(EXPECTED)


def test_method_none_copies_the_baseline_attacks(tiny_model_dir, tmp_path, count_units) -> None:
    record = run(tiny_model_dir, tmp_path, *attack_args(tiny_model_dir))
    assert sorted(count_units) == sorted(EXPECTED)  # the unedited model only
    assert record["edited"]["attacks"] == record["baseline"]["attacks"]


def test_an_interrupted_attack_resumes_without_redoing_finished_units(tiny_model_dir, tmp_path, monkeypatch,
                                                                      count_units) -> None:
    from attacks.quantize import Quantize
    from tests.harness.test_pipeline import pretend_method_edits

    pretend_method_edits(monkeypatch)
    original = Quantize.run
    state = {"calls": 0}

    def crash_on_the_edited_model(self, *args, **kwargs):
        state["calls"] += 1
        if state["calls"] == 2:  # the unedited model's quantization went through; the edited one's not
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Quantize, "run", crash_on_the_edited_model)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_model_dir, tmp_path, *attack_args(tiny_model_dir))
    partial = json.loads(next(p for p in tmp_path.rglob("seed0-*.json") if "baselines" not in p.parts).read_text())
    assert partial["status"] == "running"
    assert set(partial["edited"]["attacks"]) == {k for k in EXPECTED if k.startswith("relearn")}
    monkeypatch.setattr(Quantize, "run", original)
    count_units.clear()
    record = run(tiny_model_dir, tmp_path, *attack_args(tiny_model_dir))
    assert sorted(count_units) == ["quantize.int8", "sample.n2_t1_k40_p0.9"]  # only what was missing
    assert record["status"] == "complete" and set(record["edited"]["attacks"]) == EXPECTED


def test_attack_none_keeps_the_run_identity_it_had_before_attacks(tiny_model_dir, tmp_path) -> None:
    config = resolve_config(compose_cfg(tiny_model_dir, tmp_path))
    assert config["attack"] == {"name": "none", "attacks": {}}
    without = {k: v for k, v in config.items() if k != "attack"}
    assert config_hash(config) == config_hash(without)
    attacked = resolve_config(compose_cfg(tiny_model_dir, tmp_path, *attack_args(tiny_model_dir)))
    assert config_hash(attacked) != config_hash(config)


@pytest.mark.parametrize("override,message", [
    ("attack.attacks.quantize.schemes=[fp4]", "int8, int4, int4_g128"),
    ("attack.attacks.sample.n=0", "sample: n must be a positive integer"),
    ("+attack.attacks.x={attack: nope}", "unknown attack 'nope'"),
])
def test_bad_attack_settings_fail_before_the_model_loads(tiny_model_dir, tmp_path, monkeypatch, override, message) -> None:
    import harness.pipeline

    monkeypatch.setattr(harness.pipeline, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(HarnessError, match=message):
        run(tiny_model_dir, tmp_path, "attack=standard", override)


def test_a_misspelt_attack_config_is_one_line_with_a_suggestion() -> None:
    from harness.config import check_group_choices

    with pytest.raises(HarnessError, match=r"unknown attack 'standrd' \(did you mean 'standard'\?\); valid: none, standard"):
        check_group_choices(["attack=standrd"])
    check_group_choices(["attack=none", "attack=standard"])
