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
def file_lock(path: Path, prune_to: Path | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` + '.lock' for the block: jobs that share a cached file (a
    baseline, a factor file, a run file) take it around "check the cache, else compute and write",
    so the second job waits and then reads the first one's finished file instead of computing and
    writing it again. The lock is released when the block ends or the process dies (even by
    SIGKILL), so a killed job never leaves a stale lock behind.

    The '.lock' file is removed when the block ends, by its holder, while still holding it; a
    waiter that then gets a lock on the removed file sees that and locks the path anew, so two
    holders never overlap. `prune_to`: then remove the folders between `path` and `prune_to` that
    are left empty (a failed run's), which a concurrent job re-creates (_open_lock retries)."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): filelock's lock, whose file stays
        from filelock import FileLock

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            yield
        return
    lock = Path(str(path) + ".lock")
    while True:
        fd = _open_lock(lock)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            mine = os.fstat(fd)
            now = os.stat(lock)
            if (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino):
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # the previous holder removed this file: lock the one now at the path
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)
        if prune_to is not None:
            prune_empty_folders(lock.parent, Path(prune_to))


def _open_lock(lock: Path) -> int:
    while True:
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            return os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except (FileNotFoundError, FileExistsError):  # another job pruned the empty folder just now
            continue


def prune_empty_folders(folder: Path, root: Path) -> None:
    """Remove `folder` and its parents up to (not including) `root` while they are empty."""
    folder, root = Path(folder).absolute(), Path(root).absolute()
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (or gone, or not ours): stop
            return
        folder = folder.parent


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
