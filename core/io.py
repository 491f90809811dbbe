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
    """Hold an exclusive advisory lock (fcntl.flock) on `<path>.lock` for the block.

    Jobs that share a cached file (a baseline, a factor file) take it around compute-or-read, so
    only the first one computes and writes it and the others wait, then read the finished file.
    The lock file is left in place (removing it would race with a waiter); the lock dies with its
    process, so a killed job never leaves it held. POSIX only; on file systems without flock
    support (some NFS mounts) the block runs unlocked, and the atomic write still keeps readers
    from half-written files."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        except OSError:  # flock not supported here (ENOLCK / EOPNOTSUPP): atomic writes still hold
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
