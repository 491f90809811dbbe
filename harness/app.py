"""`python -m harness`: the Hydra entry point.

Bad input ends in one line on stderr naming what was wrong and what is valid, and a non-zero
exit code; `debug=true` (or HARNESS_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from core.errors import ConfigError, HarnessError, did_you_mean

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
CHECKED_GROUPS = ("method", "model", "suite", "attack")


def group_options(group: str) -> list[str]:
    """Config names available in a group: ours and those of installed plugin packages."""
    import importlib.util

    from core.registry import plugin_config_packages

    folders = [CONF_DIR / group]
    for package in plugin_config_packages():
        spec = importlib.util.find_spec(package)
        folders += [Path(p) / "conf" / group for p in (spec.submodule_search_locations or [])]
    return sorted({f.stem for folder in folders if folder.is_dir() for f in folder.glob("*.yaml")})


def check_group_choices(argv: list[str]) -> None:
    """Catch `method=kfc` before Hydra does, to answer in one line with a suggestion."""
    for arg in argv:
        match = re.fullmatch(r"(\w+)=(.+)", arg)
        if not match or match.group(1) not in CHECKED_GROUPS:
            continue
        group, value = match.groups()
        valid = group_options(group)
        for choice in value.split(","):  # multirun sweeps list choices with commas
            if choice not in valid:
                raise ConfigError(f"unknown {group} '{choice}'{did_you_mean(choice, valid)}; valid: {', '.join(valid)}")


def _debug(argv: list[str]) -> bool:
    return os.environ.get("HARNESS_DEBUG") == "1" or "debug=true" in argv


def _fail(error: BaseException) -> None:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)


@hydra.main(version_base=None, config_path=str(CONF_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    from harness.pipeline import run_experiment

    try:
        run_experiment(cfg)
    except HarnessError as e:
        if cfg.get("debug"):
            raise
        _fail(e)


def main() -> None:
    argv = sys.argv[1:]
    if not _debug(argv):
        try:
            check_group_choices(argv)
        except HarnessError as e:
            _fail(e)
    os.environ.setdefault("HYDRA_FULL_ERROR", "1" if _debug(argv) else "0")
    _hydra_main()


if __name__ == "__main__":
    main()
