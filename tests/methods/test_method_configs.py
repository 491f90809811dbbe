"""One fact in one place: a method's defaults are its YAML's values. Where the class also has a
keyword default (for use from Python), it must equal the YAML's, or a run from Python and a run
from the command line would quietly differ."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from core.registry import load_object, names

CONF = Path(__file__).resolve().parents[2] / "conf" / "method"


def class_defaults(cls: type) -> dict:
    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and p.default is not inspect.Parameter.empty}


def plain(value):
    """A tuple default is the YAML's list; None for a mapping setting means an empty one."""
    return list(value) if isinstance(value, tuple) else value


def same(default, yaml_value) -> bool:
    return plain(default) == yaml_value or (default is None and yaml_value == {})


@pytest.mark.parametrize("method", [m for m in names("method") if (CONF / f"{m}.yaml").is_file()])
def test_class_defaults_equal_the_method_yaml(method: str) -> None:
    yaml = OmegaConf.to_container(OmegaConf.load(CONF / f"{method}.yaml"), resolve=True)
    defaults = class_defaults(load_object("method", method))
    differ = {k: (plain(v), yaml[k]) for k, v in defaults.items() if k in yaml and not same(v, yaml[k])}
    assert not differ, f"{method}: class default vs {method}.yaml: {differ}"
    assert set(yaml) - {"name", "defaults"} <= set(inspect.signature(load_object("method", method).__init__).parameters)


def test_the_check_sees_a_disagreement() -> None:
    class Example:
        def __init__(self, rho: float = 0.6, tokens: int = 20_000_000) -> None: ...

    defaults = class_defaults(Example)
    assert {k: v for k, v in defaults.items() if {"rho": 0.95, "tokens": 20_000_000}[k] != v} == {"rho": 0.6}


@pytest.mark.parametrize("config", sorted(p.stem for p in CONF.glob("*.yaml") if "vit" not in p.stem))
def test_every_method_config_checks_against_a_loaded_model(config: str) -> None:
    """The pipeline calls `check(model)` right after loading: it must work for every shipped
    method config (it once named a helper that no longer existed)."""
    from tests.conftest import make_tiny_olmo2, method_config

    settings = method_config(config)
    name = settings.pop("name")
    settings.pop("layers", None)  # shipped layer choices are for their own models' depths,
    settings.pop("seq_len", None)  # and sequence lengths for their context (the tiny model has 128)
    load_object("method", name)(**settings).check(make_tiny_olmo2())
