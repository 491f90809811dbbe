"""Attacks in a run (issue 16, docs/attacks.md): after the edited model is scored, each attack of
the `attack` config disturbs copies of it and scores them with the suite's memorization tasks.

Where results go (docs/DESIGN.md, "Run file"):
- run["edited"]["attacks"][unit key] = {attack, setting, steps, info, tasks: {task: entry}}, the
  entries shaped like run["edited"]["tasks"]; saved after each unit, so a stopped run resumes.
- the same attacks on the unedited model are cached beside the baseline
  (`baselines/<baseline stem>-attacks-<hash of the attack config>.json`), computed once per model,
  suite, seed and attack config on a freshly loaded unedited model, and copied into
  run["baseline"]["attacks"].
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from core import registry
from core.errors import ConfigError
from core.hashing import canonical_hash
from core.io import atomic_write_json, read_json

DEFAULT_FAMILIES = ("memorized", "memorized_val", "quotes", "control", "membership")


def build_attacks(config: dict[str, Any]) -> dict[str, Any]:
    """Instance name -> Attack, from config["attack"]["attacks"]; every setting is checked here,
    before the model loads."""
    from attacks.base import Attack
    from core.registry import instantiate

    attack_cfg = config.get("attack") or {}
    entries = attack_cfg.get("attacks") or {}
    if not isinstance(entries, dict):
        raise ConfigError("attack.attacks must map instance names to {attack: <registered name>, ...settings}")
    families = attack_cfg.get("families", DEFAULT_FAMILIES)
    if not isinstance(families, (list, tuple)) or not families:
        raise ConfigError(f"attack.families must be a non-empty list of task families, got {families!r}")
    built = {}
    for name, entry in entries.items():
        if not isinstance(entry, dict) or "attack" not in entry:
            raise ConfigError(f"attack entry '{name}' needs an 'attack:' key naming a registered attack "
                              f"({', '.join(registry.names('attack'))})")
        if "." in str(name):
            raise ConfigError(f"attack entry '{name}': names may not contain '.'")
        cls = registry.load_class("attack", entry["attack"], Attack)
        built[name] = instantiate(cls, {k: v for k, v in entry.items() if k != "attack"}, f"attack {name}")
    return built


def attack_hash(config: dict[str, Any]) -> str:
    return canonical_hash(config.get("attack") or {})


def run_attacks(attacks: dict[str, Any], config: dict[str, Any], loaded: Any, tasks: dict[str, tuple[Any, str]],
                run: dict[str, Any], baseline_file: Path, method_changed: bool, progress: Any, save: Any) -> None:
    """Attack the edited model (`loaded.model`, already edited) and the unedited one (cached);
    fill run["edited"]["attacks"] and run["baseline"]["attacks"], calling save() after each unit."""
    if not attacks:
        return
    start = time.perf_counter()
    cache_file = baseline_file.with_name(f"{baseline_file.stem}-attacks-{attack_hash(config)[:12]}.json")
    cache = read_json(cache_file) or {}
    if cache.get("attack_hash") != attack_hash(config):
        cache = {"attack_hash": attack_hash(config), "attack": config.get("attack"), "units": {}}
    wanted = [key for name, attack in attacks.items() for key in attack.unit_keys(name)]
    if any(key not in cache["units"] for key in wanted):
        from models import load_model

        unedited = load_model(config["model"], config["device"], Path(config["cache_dir"]), progress)
        attack_all(attacks, config, unedited, tasks, cache["units"], progress,
                   save=lambda: atomic_write_json(cache_file, cache))
        del unedited
    run["baseline"] = {**run["baseline"], "attacks": cache["units"]}

    edited = run["edited"].setdefault("attacks", {})
    if not method_changed:  # the edited model is the unedited one: so are its attack results
        edited.update({k: v for k, v in cache["units"].items() if k not in edited})
    attack_all(attacks, config, loaded, tasks, edited, progress, save)
    run.setdefault("timings", {})["attacks"] = round(time.perf_counter() - start, 3)
    save()


def attack_all(attacks: dict[str, Any], config: dict[str, Any], loaded: Any, tasks: dict[str, tuple[Any, str]],
               results: dict[str, Any], progress: Any, save: Any) -> None:
    """Run every attack's missing units on `loaded.model`, storing each in `results` and saving."""
    import torch

    from attacks.base import AttackContext
    from tasks.base import TaskContext, TaskSkipped

    families = list((config.get("attack") or {}).get("families", DEFAULT_FAMILIES))
    scoring = {n: tf for n, tf in tasks.items() if tf[1] in families}
    registered = {n: e["task"] for n, e in config["suite"]["tasks"].items()}
    task_ctx = TaskContext(device=loaded.device, seed=config["seed"], batch_size=config["eval"]["batch_size"],
                           role="edited", artifacts_dir=Path(config["cache_dir"]) / "artifacts" / "attacks",
                           progress=progress)

    def score(model: torch.nn.Module, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
        out = {}
        was_training = model.training
        for name in names or list(scoring):
            task, family = scoring[name]
            torch.manual_seed(config["seed"])
            begin = time.perf_counter()
            try:
                result = task.evaluate(model, loaded.tokenizer, task_ctx)
            except TaskSkipped:  # said once already, when the suite ran: no entry here either
                continue
            out[name] = {"task": registered.get(name), "family": family, **result.to_json(),
                         "seconds": round(time.perf_counter() - begin, 3)}
        model.train(was_training)
        return out

    ctx = AttackContext(tokenizer=loaded.tokenizer, device=loaded.device, seed=config["seed"],
                        batch_size=config["eval"]["batch_size"], tasks=scoring, score=score,
                        sources=loaded.sources, forget_task=forget_task(loaded, scoring), data=loaded.data,
                        progress=progress)

    for name, attack in attacks.items():
        def emit(unit: Any, attack_name: str = config["attack"]["attacks"][name]["attack"], attack: Any = attack) -> None:
            for task_name, entry in unit.tasks.items():
                entry.setdefault("task", registered.get(task_name.split("[")[0]))
            results[unit.key] = unit.to_json(attack_name, attack.column(unit, attack_name))
            save()

        torch.manual_seed(config["seed"])
        attack.run(loaded.model, ctx, name, set(results), emit)


def forget_task(loaded: Any, scoring: dict[str, tuple[Any, str]]) -> str | None:
    """The scoring task that reads the file the model's forget set comes from, if any."""
    from core.data import resolve_data_ref
    from core.errors import DataError

    ref = getattr(loaded.sources, "refs", {}).get("forget")
    if not ref:
        return None
    try:
        path = resolve_data_ref(ref, loaded.data)
    except DataError:
        return None
    return next((n for n, (task, _) in scoring.items() if getattr(task, "data", None) is not None
                 and Path(task.data).resolve() == path and hasattr(task, "prompts_and_targets")), None)
