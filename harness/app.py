"""`python -m harness`: the Hydra entry point.

Bad input ends in one line on stderr naming what was wrong and what is valid, and a non-zero
exit code; `debug=true` (or HARNESS_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig

from core.buildcache import CONF_DIR
from core.errors import HarnessError
from harness.config import check_command_line, open_task_settings, with_model_suite
from harness.execute import execute, offline_unless_hub  # noqa: F401 (offline_unless_hub: re-exported)


def _debug(argv: list[str]) -> bool:
    return os.environ.get("HARNESS_DEBUG") == "1" or "debug=true" in argv


def _fail(error: BaseException) -> None:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)


def output_closed() -> None:
    """stdout's reader went away (`python -m harness ... | head -1`): stop quietly, no traceback.
    stdout is pointed at /dev/null so that Python's final flush does not complain either; the
    exit code is the shell's for a process ended by SIGPIPE."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (e.g. captured in a test)
        pass
    sys.exit(141)


def interrupted(where: str) -> None:
    """Ctrl-C: one line saying what is kept and how to go on; exit code 130 as shells expect."""
    print(f"interrupted: every finished task is saved {where}; run the same command again to resume",
          file=sys.stderr)
    sys.exit(130)


@hydra.main(version_base=None, config_path=str(CONF_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        execute(cfg)
    except KeyboardInterrupt:
        if cfg.get("debug"):
            raise
        interrupted(f"under {cfg.get('runs_dir')}")
    except BrokenPipeError:
        output_closed()
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
    try:
        _main()
    except BrokenPipeError:
        output_closed()


def _main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] in ("--help", "-h"):  # groups and choices, not Hydra's dump of the whole config
        from harness.help import help_text

        print(help_text(CONF_DIR))
        return
    sys.argv[1:] = argv = with_model_suite(open_task_settings(argv))
    try:
        if not _debug(argv):
            try:
                check_command_line(argv)
            except HarnessError as e:
                _fail(e)
        os.environ.setdefault("HYDRA_FULL_ERROR", "1" if _debug(argv) else "0")
        _hydra_main()
    except KeyboardInterrupt:
        if _debug(argv):
            raise
        interrupted("in the run file")
    if FAILED_JOBS:
        print(f"error: {len(FAILED_JOBS)} sweep job(s) failed (the others finished): " + "; ".join(FAILED_JOBS),
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
