"""Find run files, validate them against the run file schema (docs/DESIGN.md, schema_version 1),
and keep the newest run of each identity.

A file that is not a finished run of this schema (corrupt JSON, some other JSON, another
schema_version, a run still going) is skipped with one warning line and counted; it never stops
the leaderboard. Baseline caches (`baselines/` folders) are not runs and are passed over silently.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.runrecord import IDENTITY_KEYS, run_problem


def find_run_files(run_dirs: Iterable[Path]) -> list[Path]:
    """Every `*.json` under the run folders (recursively), sorted, less `baselines/` caches and
    `analysis/` outputs (python -m studies.analyze)."""
    files: set[Path] = set()
    for run_dir in map(Path, run_dirs):
        if not run_dir.is_dir():
            raise ConfigError(f"run folder '{run_dir}' does not exist; pass folders that hold run files (default: runs)")
        for path in run_dir.rglob("*.json"):
            if not {"baselines", "analysis"} & set(path.relative_to(run_dir).parts[:-1]) and path.is_file():
                files.add(path)
    return sorted(files)


def problem(run: Any) -> str | None:
    """Why `run` is not a finished schema-1 run file, or None if it is (core.runrecord.run_problem:
    the same check a rerun makes before reusing a run file)."""
    return run_problem(run, finished=True)


def read_run(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(run, None) for a valid run file, (None, reason) otherwise."""
    try:
        with open(path, encoding="utf-8") as f:
            run = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return None, f"unreadable JSON ({type(e).__name__}: {str(e).splitlines()[0][:80]})"
    reason = problem(run)
    return (None, reason) if reason else (run, None)


def newest_per_identity(runs: list[tuple[Path, dict[str, Any]]]) -> list[tuple[Path, dict[str, Any]]]:
    """Of runs with the same identity (model, method, suite, seed, config_hash), keep the one with
    the newest `updated` time (ties: the later path in sorted order, so the choice is stable)."""
    best: dict[tuple, tuple[Path, dict[str, Any], dt.datetime]] = {}
    for path, run in sorted(runs, key=lambda pr: str(pr[0])):
        key = tuple(run["identity"][k] for k in IDENTITY_KEYS)
        when = dt.datetime.fromisoformat(run["updated"])
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        if key not in best or when >= best[key][2]:
            best[key] = (path, run, when)
    return [(p, r) for p, r, _ in sorted(best.values(), key=lambda prw: str(prw[0]))]


def collect(run_dirs: Iterable[Path], warn: Callable[[str], None] | None = None) -> tuple[list[tuple[Path, dict[str, Any]]], int]:
    """Valid runs (newest per identity) under `run_dirs`, and how many files were skipped."""
    warn = warn or (lambda line: print(line, file=sys.stderr))
    run_dirs = list(run_dirs)
    for run_dir in run_dirs:  # a mistyped or not yet filled folder would otherwise pass unnoticed
        if not find_run_files([run_dir]):
            warn(f"warning: {run_dir} holds no run files (*.json outside baselines/ and analysis/)")
    runs, skipped = [], 0
    for path in find_run_files(run_dirs):
        run, reason = read_run(path)
        if run is None:
            skipped += 1
            warn(f"warning: skipped {path}: {reason}")
        else:
            runs.append((path, run))
    return newest_per_identity(runs), skipped
