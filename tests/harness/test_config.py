"""Every config in conf/ composes, and every defaults list names _self_ explicitly."""

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

CONF = Path(__file__).resolve().parents[2] / "conf"
# conf/model_method/ is not a choice: it holds a model's defaults for a method, picked by the pair.
GROUP_FILES = sorted(p for p in CONF.glob("*/*.yaml") if p.parent.name != "model_method")


@pytest.mark.parametrize("path", GROUP_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_group_option_composes(path: Path) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name="config", overrides=[f"{path.parent.name}={path.stem}"])
    if path.read_text().startswith("# @package _global_"):  # merged at the top level (conf/sweep/)
        assert cfg.method.name and cfg.model.kind
    else:
        assert path.parent.name in cfg


@pytest.mark.parametrize("path", sorted(CONF.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONF)))
def test_defaults_lists_name_self(path: Path) -> None:
    data = yaml.safe_load(path.read_text()) or {}
    if "defaults" in data:
        assert "_self_" in data["defaults"], f"{path}: defaults list without an explicit _self_"


def test_default_config_runs_the_organism() -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name="config")
    assert cfg.model.kind == "organism" and cfg.method.name == "none" and cfg.suite.name == "memorization"


def test_method_yaml_names_are_registered() -> None:
    """A method YAML must name a registered method, or `method=<it>` would fail at run time."""
    from core.registry import names

    from hydra import compose, initialize_config_dir

    registered = set(names("method"))
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        for path in CONF.glob("method/*.yaml"):  # composed: a variant inherits its base's name
            assert compose(config_name="config", overrides=[f"method={path.stem}"]).method.name in registered, path


def test_suite_tasks_are_registered() -> None:
    from core.registry import names

    registered = set(names("task"))
    for path in CONF.glob("suite/*.yaml"):
        for name, entry in yaml.safe_load(path.read_text())["tasks"].items():
            assert entry["task"] in registered, f"{path}: task {name} -> {entry['task']}"


def test_a_model_brings_its_own_method_defaults() -> None:
    """conf/model_method/<model>_<method>.yaml: method=kfac on SmolLM2 edits its late band, not the
    organism's every layer; a command-line key still wins and a preset is used as is."""
    from harness.config import compose_config

    planted = compose_config("config", ["model=smollm2_planted", "method=kfac"]).method
    assert (planted.rho, list(planted.layers), list(planted.matrices)) == (0.6, [22, 23, 24], ["gate", "up"])
    assert compose_config("config", ["model=smollm2_planted", "method=kfac", "method.rho=0.9"]).method.rho == 0.9
    organism = compose_config("config", ["method=kfac"]).method
    assert organism.layers is None and organism.rho == 0.99
    control = compose_config("config", ["model=smollm2_planted", "method=random_ablation"]).method
    assert (control.name, control.rho, list(control.layers)) == ("random_ablation", 0.6, [22, 23, 24])


@pytest.mark.parametrize("path", sorted(CONF.glob("model_method/*.yaml")), ids=lambda p: p.stem)
def test_every_model_method_file_names_a_model_and_a_method(path: Path) -> None:
    from harness.config import compose_config

    pairs = [(m.stem, f.stem) for m in CONF.glob("model/*.yaml") for f in CONF.glob("method/*.yaml")
             if path.stem == f"{m.stem}_{f.stem}"]
    assert pairs, f"{path.name} is not <model>_<method>.yaml for a model and a method in conf/"
    model, method = pairs[0]
    chosen = compose_config("config", [f"model={model}", f"method={method}"]).method
    assert all(chosen[k] == v for k, v in yaml.safe_load(path.read_text()).items())


def test_a_model_with_its_own_suite_runs_it_unless_told_otherwise() -> None:
    from harness.config import compose_config, with_model_suite

    assert with_model_suite(["model=smollm2_planted", "method=kfac"])[-1] == "suite=smollm2_planted"
    assert with_model_suite(["model=smollm2_planted", "suite=smollm2"]) == ["model=smollm2_planted", "suite=smollm2"]
    assert with_model_suite(["method=kfac"]) == ["method=kfac"]  # the organism: conf/config.yaml's suite
    assert with_model_suite(["model=smollm2,smollm2_planted"]) == ["model=smollm2,smollm2_planted"]
    assert compose_config("config", ["model=smollm2"]).suite.name == "smollm2"
