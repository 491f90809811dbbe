"""Experiment trackers, optional: `tracker=tensorboard|mlflow|wandb` (conf/tracker/) logs each
finished run's resolved config, every metric (baseline, edited and % kept per task and metric,
attack results, timings) and the memorization-vs-skills trade-off plot when the run's tasks make
one (leaderboard/plots.py).

The tracker's package is checked when the run starts, before the model loads: a missing one is a
one-line ConfigError. Each backend is one function below plus one YAML file in conf/tracker/.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import ConfigError

# tracker name -> the package it imports (pip name is the same)
PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


def check_tracker(tracker_cfg: dict[str, Any] | None) -> dict[str, Any] | None:
    """The tracker settings if a tracker is chosen, None for tracker=none; a missing package is a
    ConfigError naming what to install."""
    name = (tracker_cfg or {}).get("name", "none")
    if name in (None, "none"):
        return None
    if name not in PACKAGES:
        raise ConfigError(f"tracker '{name}' is not known; valid: none, {', '.join(PACKAGES)}")
    if importlib.util.find_spec(PACKAGES[name]) is None:
        raise ConfigError(f"tracker={name} needs the '{PACKAGES[name]}' package, which is not installed: "
                          f"pip install {PACKAGES[name]} (or the project's 'trackers' extra), or use tracker=none")
    return dict(tracker_cfg or {})


def run_name(run: dict[str, Any]) -> str:
    ident = run["identity"]
    return f"{ident['model']}/{ident['suite']}/{ident['method']}/seed{ident['seed']}-{ident['config_hash'][:12]}"


def flat_config(config: dict[str, Any]) -> dict[str, str]:
    """Resolved config as dotted key -> value text (lists and empty mappings as JSON)."""
    from leaderboard.aggregate import flatten

    return {k: v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
            for k, v in flatten(config).items()}


def run_metrics(run: dict[str, Any]) -> dict[str, float]:
    """Every number of a finished run, by a '/'-separated name: baseline / edited / pct_kept per
    task and metric, attacked values per attack unit, and the pipeline's timings."""
    from leaderboard.aggregate import attack_long_table, long_table

    pair = [(Path(run_name(run)), run)]
    metrics: dict[str, float] = {}
    for row in long_table(pair).itertuples():
        for part in ("baseline", "edited", "pct_kept"):
            metrics[f"{part}/{row.task}/{row.metric}"] = float(getattr(row, part))
    for row in attack_long_table(pair).itertuples():
        for part in ("edited", "baseline"):
            metrics[f"attack/{row.unit}/{part}/{row.task}/{row.metric}"] = float(getattr(row, part))
    for key, seconds in (run.get("timings") or {}).items():
        metrics[f"seconds/{key}"] = float(seconds)
    return {k: v for k, v in metrics.items() if math.isfinite(v)}


def tradeoff_plot(run: dict[str, Any]) -> bytes | None:
    """The leaderboard's trade-off plot for this one run (PNG), or None when its suite has no
    memorized and skill families to plot."""
    from leaderboard.aggregate import family_table, long_table
    from leaderboard.plots import tradeoff_png

    long = long_table([(Path(run_name(run)), run)])
    return None if long.empty else tradeoff_png(family_table(long))


def log_run(tracker_cfg: dict[str, Any], run: dict[str, Any]) -> None:
    """Log finished `run` to the tracker `tracker_cfg` describes (check_tracker's result)."""
    BACKENDS[tracker_cfg["name"]](tracker_cfg, run, run_metrics(run), tradeoff_plot(run))


def _image(png: bytes) -> Any:
    import io

    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("RGB")


def _tensorboard(cfg: dict[str, Any], run: dict[str, Any], metrics: dict[str, float], png: bytes | None) -> None:
    import numpy as np
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(Path(cfg.get("log_dir") or "tensorboard") / run_name(run)))
    try:
        config = json.dumps(run["config"], indent=1, default=str)
        writer.add_text("config", "```\n" + config + "\n```", 0)
        for name, value in metrics.items():
            writer.add_scalar(name, value, 0)
        if png is not None:
            writer.add_image("tradeoff", np.asarray(_image(png)), 0, dataformats="HWC")
    finally:
        writer.close()


def _mlflow(cfg: dict[str, Any], run: dict[str, Any], metrics: dict[str, float], png: bytes | None) -> None:
    import mlflow

    if cfg.get("tracking_uri"):
        mlflow.set_tracking_uri(cfg["tracking_uri"])
    mlflow.set_experiment(cfg.get("experiment") or "harness")
    with mlflow.start_run(run_name=run_name(run)):
        mlflow.log_params({k[:250]: v[:500] for k, v in flat_config(run["config"]).items()})
        mlflow.log_dict(run["config"], "config.json")
        mlflow.log_metrics(metrics)
        if png is not None:
            mlflow.log_image(_image(png), "tradeoff.png")


def _wandb(cfg: dict[str, Any], run: dict[str, Any], metrics: dict[str, float], png: bytes | None) -> None:
    import wandb

    session = wandb.init(project=cfg.get("project") or "harness", name=run_name(run), config=run["config"],
                         mode=cfg.get("mode"), dir=cfg.get("dir"))
    try:
        session.log({**metrics, **({"tradeoff": wandb.Image(_image(png))} if png is not None else {})})
    finally:
        session.finish()


BACKENDS: dict[str, Callable[[dict[str, Any], dict[str, Any], dict[str, float], bytes | None], None]] = {
    "tensorboard": _tensorboard, "mlflow": _mlflow, "wandb": _wandb}
