"""`python -m harness.sweep method=M [key=value ...]`: run method M's recorded sweep.

A method's sweep is declared in one file, `conf/sweep/<M>.yaml` (M = the method config's name):
its main strength settings and their range as Hydra sweeper params, over organism seeds 0, 1, 2
(each seed trains its own organism). This command is `python -m harness -m sweep=M ...`: extra
overrides narrow or extend it (`seed=0` runs one seed, `method.rho=0.5,0.6` replaces the range,
`hydra/launcher=slurm` sends the jobs to a cluster). Finished runs are reused, so rerunning
resumes. The leaderboard (`python -m leaderboard`) ranks the methods on these runs at matched
utility (docs/leaderboard.md).
"""

from __future__ import annotations

import sys

USAGE = "usage: python -m harness.sweep method=M [key=value ...]"


def sweep_presets() -> list[str]:
    """The methods with a recorded sweep (conf/sweep/*.yaml, ours and installed plugins')."""
    from core.buildcache import CONF_DIR
    from harness.help import group_files

    return list(group_files("sweep", CONF_DIR))


def sweep_command(argv: list[str]) -> list[str]:
    """The `python -m harness` arguments that run the sweep `argv` asks for; ConfigError in one
    line when it names no method, several, or one without a recorded sweep."""
    from core.errors import ConfigError, did_you_mean

    chosen = [arg.split("=", 1)[1] for arg in argv if arg.startswith("method=")]
    presets = sweep_presets()
    if len(chosen) != 1 or "," in chosen[0]:
        raise ConfigError(f"{USAGE} (one method); methods with a recorded sweep: {', '.join(presets)}")
    method = chosen[0]
    if method not in presets:
        raise ConfigError(f"method '{method}' has no recorded sweep{did_you_mean(method, presets)}; "
                          f"add conf/sweep/{method}.yaml, or choose one of: {', '.join(presets)}")
    return ["-m", f"sweep={method}", *(arg for arg in argv if not arg.startswith("method="))]


def main(argv: list[str] | None = None) -> None:
    from core.errors import ConfigError
    from harness import app

    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("--help", "-h"):
        print(__doc__.strip())
        print("\nmethods with a recorded sweep: " + ", ".join(sweep_presets()))
        return
    try:
        sys.argv[1:] = sweep_command(argv)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    app.main()


if __name__ == "__main__":
    main()
