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
from harness.sweep import check_method_keys

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
CHECKED_GROUPS = ("method", "model", "suite")


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
    except Exception as e:
        if cfg.get("debug"):
            raise
        if not _in_sweep():
            if isinstance(e, HarnessError):
                _fail(e)
            raise
        # In a sweep one failing job never stops the others: say why in one line, go on, and
        # make the sweep's exit code non-zero at the end (main, below).
        FAILED_JOBS.append(f"job {_job_name()}: {type(e).__name__ + ': ' if not isinstance(e, HarnessError) else ''}{e}")
        print(f"error: {FAILED_JOBS[-1]}", file=sys.stderr)


FAILED_JOBS: list[str] = []  # this process's failed sweep jobs (all of them with the basic launcher)


def _in_sweep() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _job_name() -> str:
    from hydra.core.hydra_config import HydraConfig

    job = HydraConfig.get().job
    return f"#{job.num} ({' '.join(job.override_dirname.split(',')) or 'no overrides'})"


def main() -> None:
    argv = sys.argv[1:]
    if not _debug(argv):
        try:
            check_group_choices(argv)
            check_method_keys(argv, CONF_DIR)
        except HarnessError as e:
            _fail(e)
    os.environ.setdefault("HYDRA_FULL_ERROR", "1" if _debug(argv) else "0")
    _hydra_main()
    if FAILED_JOBS:
        print(f"error: {len(FAILED_JOBS)} sweep job(s) failed (the others finished): " + "; ".join(FAILED_JOBS),
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
