"""Run identity, run files and baseline caches: atomic JSON writes that a rerun resumes from.

A run's identity is (model, method, suite, seed, hash of the resolved config). Keys that only say
where files go or how much is printed are left out of the hash, so moving the cache does not
invalidate finished work.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
RUNTIME_ONLY_KEYS = ("runs_dir", "cache_dir", "debug", "hydra")


def canonical_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def config_hash(config: dict[str, Any]) -> str:
    return canonical_hash({k: v for k, v in config.items() if k not in RUNTIME_ONLY_KEYS})


def baseline_key(config: dict[str, Any]) -> str:
    """The unedited model's results depend on the model, suite, seed and evaluation settings only,
    so every method run on the same model + suite shares one baseline."""
    return canonical_hash({k: config.get(k) for k in ("model", "suite", "seed", "eval", "device")})


def run_path(runs_dir: Path, identity: dict[str, Any]) -> Path:
    return (Path(runs_dir) / identity["model"] / identity["suite"] / identity["method"]
            / f"seed{identity['seed']}-{identity['config_hash'][:12]}.json")


def baseline_path(runs_dir: Path, config: dict[str, Any]) -> Path:
    model, suite = config["model"].get("name", "model"), config["suite"].get("name", "suite")
    return Path(runs_dir) / "baselines" / f"{model}-{suite}-seed{config.get('seed')}-{baseline_key(config)[:12]}.json"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write to a temp file in the same folder, fsync, then rename over the target: a reader sees
    the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1, sort_keys=False, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    """The parsed file, or None if it is missing or unreadable (a corrupt cache is recomputed)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def environment_info(device: str) -> dict[str, Any]:
    import torch
    import transformers

    import harness

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "harness": harness.__version__,
        "git_commit": _git_commit(),
        "device": device,
        "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or platform.machine(),
        "hostname": platform.node(),
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
