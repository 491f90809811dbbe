"""The one code path from a composed config to a finished run, shared by the command line
(harness/app.py) and the Python API (harness/api.py): checks that need no model (tracker package,
export folder), then the pipeline, then the tracker.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


def offline_unless_hub(cfg: DictConfig) -> None:
    """Offline-first: without `hub=true` (or HF_HUB_OFFLINE=0 in the environment) the Hugging Face
    hub is not contacted, so a hub id that is not cached fails in one line at once instead of after
    a minute of retries. Must run before transformers is imported."""
    if not cfg.get("hub", False):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")


def execute(cfg: DictConfig) -> dict[str, Any]:
    """Run (or resume, or reuse) the experiment `cfg` describes; return the run record."""
    from harness.export import check_export_target
    from harness.trackers import check_tracker, log_run

    offline_unless_hub(cfg)
    tracker_node = cfg.get("tracker")
    tracker = check_tracker(OmegaConf.to_container(tracker_node, resolve=True) if tracker_node is not None else None)
    if cfg.get("save_edited"):
        sweep_job = _sweep_job()
        if sweep_job is not None:  # every job of a sweep exports: each into its own folder
            cfg.save_edited = str(Path(cfg.save_edited) / sweep_job)
        check_export_target(cfg.save_edited)
    from harness.pipeline import run_experiment

    run = run_experiment(cfg)
    if tracker is not None and run.get("status") == "complete":  # other torchrun ranks return no record
        log_run(tracker, run)
    return run


def _sweep_job() -> str | None:
    """In a sweep (`-m`), the job's folder name under save_edited: its number and the overrides
    that make it (`3-method=kfac,method.rho=0.9`); None in a single run."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    job = HydraConfig.get().job
    # the method's overrides first; paths (data files, folders) say little and would fill the name
    kept = [o.lstrip("+") for o in job.override_dirname.split(",") if "/" not in o and not o.startswith("save_edited=")]
    overrides = ",".join(sorted(kept, key=lambda o: not o.startswith("method")))
    safe = re.sub(r"[^\w.=,+-]", "_", overrides)[:120]
    return f"{job.num}-{safe}" if safe else str(job.num)
