"""Every config in conf/ composes, and every defaults list names _self_ explicitly."""

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

CONF = Path(__file__).resolve().parents[2] / "conf"
GROUP_FILES = sorted(p for p in CONF.glob("*/*.yaml"))


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
