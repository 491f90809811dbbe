"""Command-line overrides checked before Hydra sees them, so a typo ends in one line that lists the
valid keys ("did you mean ...") instead of Hydra's multi-line "Could not override" message.

`check_override_keys` checks one combination of group choices (a single run). A sweep
(`-m method=kfac,npo method.lr=1e-3`) is checked by calling it once per combination of choices
(`sweep_combinations`), where a key may be valid for some choices only.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from core.buildcache import CONF_DIR
from core.errors import ConfigError, did_you_mean

GROUPS = ("method", "model", "suite")
_OVERRIDE = re.compile(r"([A-Za-z_][\w.]*)=(.*)")


def parse_overrides(argv: list[str], groups: tuple[str, ...] = GROUPS) -> tuple[dict[str, list[str]], list[str]]:
    """({group: [choices]}, [keys set by plain `key=value` overrides]) of a command line. Flags,
    `+key=` / `++key=` / `~key` overrides (which add or delete keys on purpose), `hydra.*` keys and
    `group/sub=choice` overrides are left out."""
    choices: dict[str, list[str]] = {}
    keys: list[str] = []
    for arg in argv:
        match = _OVERRIDE.fullmatch(arg)
        if not match:
            continue
        key, value = match.groups()
        if key in groups:
            choices[key] = value.split(",")
        elif key != "hydra" and not key.startswith("hydra."):
            keys.append(key)
    return choices, keys


def sweep_combinations(choices: dict[str, list[str]]) -> list[dict[str, str]]:
    """Every combination of group choices a sweep runs (one for a single run)."""
    groups = list(choices)
    return [dict(zip(groups, combo)) for combo in itertools.product(*(choices[g] for g in groups))]


def check_override_keys(choices: dict[str, str], keys: list[str], config_name: str = "config",
                        config_dir: Path = CONF_DIR) -> None:
    """Compose the config for `choices` ({group: choice}) and raise ConfigError, in one line, for
    the first key in `keys` that it does not have, naming the valid keys beside it."""
    if not keys:
        return
    from hydra import compose, initialize_config_dir
    from omegaconf import DictConfig

    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        cfg = compose(config_name=config_name, overrides=[f"{g}={c}" for g, c in choices.items()])
    for key in keys:
        node, parts = cfg, key.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, DictConfig):
                break  # below a leaf value (e.g. a list): Hydra's own check answers
            valid = [str(k) for k in node.keys()]
            if part not in valid:
                raise ConfigError(unknown_key_message(".".join(parts[:depth]), part, valid, cfg))
            node = node._get_node(part)  # the node itself: a ??? value is a key that exists


def unknown_key_message(parent: str, key: str, valid: list[str], cfg: object) -> str:
    """One line: which key is unknown where, the closest valid one, and all valid ones."""
    from omegaconf import OmegaConf

    full = f"{parent}.{key}" if parent else key
    hint = did_you_mean(key, valid)
    owner = parent.split(".")[0]
    if parent in GROUPS:  # name the chosen config: "method kfac has no setting 'rhoo'"
        chosen = OmegaConf.select(cfg, f"{parent}.name", default=None) or OmegaConf.select(
            cfg, f"{parent}.kind", default=None)
        what = f"{owner} {chosen}" if chosen else owner
        return f"{what} has no setting '{key}'{hint}; its settings: {', '.join(valid)}"
    where = f"under '{parent}'" if parent else "at the top level"
    return f"unknown config key '{full}'{hint}; valid keys {where}: {', '.join(valid)}"
