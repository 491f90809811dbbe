"""Sweeps (`python -m harness -m ...`): checks made before any job starts, and what a failing job does.

A method-only setting swept over several methods (`-m method=kfac,npo method.lr=1e-3`) would make
Hydra fail while composing the first job whose method lacks the key ("Key 'lr' is not in struct"),
after earlier jobs may already have run. `check_method_keys` composes each method choice up front
and fails in one line naming the methods that lack the key, before any job starts.
"""

from __future__ import annotations

import re
from pathlib import Path

from core.errors import ConfigError

# `method.lr=1e-3`, `method.overrides.3.gate=0.9`; `+method.x` (add) and `~method.x` (delete) say
# the user knows the key is absent or present, so they are left to Hydra.
_METHOD_KEY = re.compile(r"method\.([A-Za-z_]\w*)(?:\.[\w.]+)?=")


def method_keys(conf_dir: Path, method: str) -> set[str]:
    """The settings of method config `method` as composed (defaults lists included)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base=None):
            cfg = compose("config", overrides=[f"method={method}"])
        return set(cfg.method.keys())
    finally:
        GlobalHydra.instance().clear()


def check_method_keys(argv: list[str], conf_dir: Path, default_method: str = "none") -> None:
    """One line naming every method choice that lacks a `method.<key>=` setting on the command line."""
    keys = sorted({m.group(1) for arg in argv if (m := _METHOD_KEY.match(arg))})
    if not keys:
        return
    from harness.overrides import parse_overrides

    methods = parse_overrides(argv)[0].get("method") or [default_method]
    for key in keys:
        lacking = [m for m in methods if key not in method_keys(conf_dir, m)]
        if lacking:
            having = [m for m in methods if m not in lacking]
            also = f" (only {', '.join(having)} has it)" if having else ""
            raise ConfigError(f"method.{key} is not a setting of method {', '.join(lacking)}{also}; "
                              f"sweep it over methods that have it, or run those separately")
