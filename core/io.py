"""Atomic writes, the one routine behind every file the project finishes: write beside the target,
fsync, rename over it. A reader (or a rerun after a kill) sees the old file or the new one, never
half of one."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path in `path`'s folder; when the block ends without error, the file
    written there is fsynced and renamed over `path`. On error it is removed and `path` is left
    as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: Path, obj: Any, sort_keys: bool = False) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=sort_keys, default=str) + "\n")


def read_json(path: Path) -> dict[str, Any] | None:
    """The parsed file, or None if it is missing or unreadable (a corrupt cache is recomputed)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` + '.lock' for the block: jobs that share a cached file (a
    baseline, a factor file, a run file) take it around "check the cache, else compute and write",
    so the second job waits and then reads the first one's finished file instead of computing and
    writing it again. The lock is released when the block ends or the process dies (even by
    SIGKILL), so a killed job never leaves a stale lock behind."""
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        yield


def check_writable_dir(path: Path, what: str) -> Path:
    """Make sure `path` is (or can be created as) a folder we can write into, before any slow work
    whose result would go there. Raises ConfigError naming `what` (e.g. 'runs_dir')."""
    from core.errors import ConfigError

    path = Path(path).expanduser()
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        where = "" if existing == path else f" ({existing} is a file)"
        raise ConfigError(f"{what}={path} is not a folder{where}; pass a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-check.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(f"{what}={path} is not writable ({e.strerror or type(e).__name__}); "
                          "pass a folder you can write to") from None
    return path
