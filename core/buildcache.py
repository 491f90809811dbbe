"""Builds cached under a hash of their settings (the LM and ViT organisms), put in place atomically:
built in a temporary sibling folder and renamed, so an interrupted build never leaves a half one
(and the next build of the same settings on that host deletes a killed build's temporary folder).

Every build folder carries `SHA256SUMS` (the sha256 of each of its files, as `sha256sum` writes
it). A cached build whose files no longer match is rebuilt with one warning line. A *shipped*
build (committed to the repository, so that every machine evaluates the same weights: training
differs by CPU) is looked up first by its settings hash; a shipped file that fails its digest is
refused in one line, never silently rebuilt into another organism."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from core.hashing import canonical_hash

# The project's Hydra config folder (the app composes from it; python -m harness).
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def default_build_settings(model_config: str, block: str = "organism") -> dict[str, Any]:
    """The `block:` mapping of conf/model/<model_config>.yaml, resolved: the default settings of
    a cached build (`organism` for the LM and ViT organisms, `planted` for smollm2_planted)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / f"{model_config}.yaml")[block],
                                  resolve=True)  # type: ignore[return-value]


def default_cache_dir() -> Path:
    """The cache folder the app uses when not told otherwise: `cache_dir` of conf/config.yaml
    ($HARNESS_CACHE_DIR, else .cache/harness), resolved here so the fact stays in that file."""
    from omegaconf import OmegaConf

    return Path(OmegaConf.load(CONF_DIR / "config.yaml").cache_dir)


def settings_hash(settings: Mapping[str, Any], format_version: int) -> str:
    """The cache key of a build: its settings and the builder's format version."""
    return canonical_hash({"format": format_version, "settings": settings})


DIGESTS = "SHA256SUMS"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_digests(folder: Path) -> None:
    """`folder/SHA256SUMS`: every file under `folder` (but itself), sorted by path."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != DIGESTS)
    lines = [f"{file_sha256(p)}  {p.relative_to(folder).as_posix()}\n" for p in files]
    (folder / DIGESTS).write_text("".join(lines), encoding="utf-8")


def digest_problem(folder: Path) -> str | None:
    """None when every file `folder/SHA256SUMS` lists is there with its digest and no file is
    missing from the list; else what is wrong, naming the first bad file."""
    folder = Path(folder)
    try:
        listed = (folder / DIGESTS).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return f"{folder / DIGESTS} is missing or unreadable"
    expected = {}
    for line in listed:
        digest, _, name = line.partition("  ")
        expected[name] = digest
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != DIGESTS}
    for name in sorted(present - set(expected)):
        return f"{folder / name} is not listed in {DIGESTS}"
    for name, digest in expected.items():
        path = folder / name
        if not path.is_file():
            return f"{path} is missing"
        if file_sha256(path) != digest:
            return f"{path} does not match its sha256 in {DIGESTS} (changed or corrupt)"
    return None


def find_shipped(shipped_root: Path | None, key: str) -> Path | None:
    """The shipped build folder (`shipped_root/<name>/`) whose manifest has settings hash `key`."""
    import json

    if shipped_root is None or not Path(shipped_root).is_dir():
        return None
    for manifest in sorted(Path(shipped_root).glob("*/manifest.json")):
        try:
            if json.loads(manifest.read_text(encoding="utf-8")).get("settings_hash") == key:
                return manifest.parent
        except (OSError, ValueError):
            continue  # an unreadable manifest names no build; its digest check reports it if asked
    return None


def check_shipped(folder: Path, rebuild_hint: str) -> Path:
    """`folder` if its files match their digests; else one-line DataError."""
    problem = digest_problem(folder)
    if problem:
        from core.errors import DataError

        raise DataError(f"shipped build {folder}: {problem}; restore it with `git checkout -- {folder}` "
                        f"or rebuild it with `{rebuild_hint}`")
    return folder


def temp_folder(final: Path) -> Path:
    """Where `final` is built before its rename: named by host and pid, so that a cache shared
    between machines (a cluster's file system) never mistakes one host's build for another's."""
    return final.parent / f".{final.name}.building-{socket.gethostname()}-{os.getpid()}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def remove_abandoned_builds(final: Path) -> list[Path]:
    """Delete the temporary folders of `final` left by builds on this host whose process is gone
    (killed by a signal, so its `finally` never ran); return them. Builds still running, and
    those of other hosts, are left alone."""
    prefix = f".{final.name}.building-{socket.gethostname()}-"
    removed = []
    for temp in sorted(final.parent.glob(f"{prefix}*")):
        pid = temp.name[len(prefix):]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(temp, ignore_errors=True)
            removed.append(temp)
    return removed


def ensure_built(settings: Mapping[str, Any], root: Path, format_version: int,
                 build: Callable[[Mapping[str, Any], Path, Any], None], progress: Any = None,
                 shipped_root: Path | None = None, rebuild_hint: str = "") -> Path:
    """The build of `settings`: the shipped one under `shipped_root` if there is one (checked
    against its digests), else `root/<hash>/`, running `build(settings, folder, progress)` first
    unless a finished build whose files match their digests exists."""
    key = settings_hash(settings, format_version)
    shipped = find_shipped(shipped_root, key)
    if shipped is not None:
        return check_shipped(shipped, rebuild_hint)
    final = Path(root) / key
    if (final / "manifest.json").exists():
        problem = digest_problem(final)
        if problem is None:
            return final
        from core.errors import warn

        warn(f"cached build {final}: {problem}; rebuilding it")
        shutil.rmtree(final, ignore_errors=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_builds(final)
    temp = temp_folder(final)
    shutil.rmtree(temp, ignore_errors=True)
    try:
        build(settings, temp, progress)
        write_digests(temp)
        try:
            os.replace(temp, final)
        except OSError:  # another process finished the same build first; theirs is as good
            if not (final / "manifest.json").exists():
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return final
