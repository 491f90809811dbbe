"""Plugin registry: methods, tasks and model kinds are found through Python entry points, the one
registration path for built-ins and third-party packages alike. Only names are read at start-up; a class is
imported when a run asks for it, so `import harness` stays fast."""

from __future__ import annotations

import importlib.metadata
import inspect
from typing import Any

from core.errors import ConfigError, HarnessError, did_you_mean

GROUPS = {"method": "harness.methods", "task": "harness.tasks", "model": "harness.models", "attack": "harness.attacks"}
WHAT = {"method": "method", "task": "task", "model": "model.kind", "attack": "attack"}  # how errors name each


class RegistryError(HarnessError):
    """An unknown name, a name registered twice, or a plugin that fails to import."""


def entry_points(kind: str) -> dict[str, importlib.metadata.EntryPoint]:
    """Name -> entry point for `kind` ('method', 'task' or 'model'). Two different targets under one name
    are an error: silently picking one would make results depend on install order."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=GROUPS[kind]):
        if ep.name in found and found[ep.name].value != ep.value:
            raise RegistryError(
                f"{kind} '{ep.name}' is registered twice: {found[ep.name].value} and {ep.value} "
                f"(uninstall one of the packages or rename its entry point)"
            )
        found[ep.name] = ep
    return found


def names(kind: str) -> list[str]:
    return sorted(entry_points(kind))


def load_object(kind: str, name: str) -> Any:
    """Import and return what is registered as `name`; unknown names suggest the closest."""
    eps = entry_points(kind)
    if name not in eps:
        valid = sorted(eps)
        raise RegistryError(f"unknown {WHAT[kind]} '{name}'{did_you_mean(name, valid)}; valid: {', '.join(valid)}")
    try:
        return eps[name].load()
    except Exception as e:  # a plugin may fail in any way; report it as one line
        raise RegistryError(f"{WHAT[kind]} '{name}' ({eps[name].value}) failed to import: {type(e).__name__}: {e}") from e


def load_class(kind: str, name: str, base: type) -> type[Any]:
    """`load_object`, checked to be a subclass of `base`."""
    cls = load_object(kind, name)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise RegistryError(f"{WHAT[kind]} '{name}' ({entry_points(kind)[name].value}) is not a subclass of {base.__name__}")
    return cls


def instantiate(cls: type, params: dict[str, Any], what: str) -> Any:
    """cls(**params), with unknown or missing settings reported as one line naming the valid ones."""
    if cls.__init__ is object.__init__:  # a class without settings
        accepted, takes_any = [], False
    else:
        signature = inspect.signature(cls.__init__)
        accepted = [p for p in signature.parameters if p != "self"]
        takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    unknown = [k for k in params if k not in accepted]
    if unknown and not takes_any:
        raise ConfigError(f"{what}: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(accepted) or 'none'}")
    try:
        return cls(**params)
    except TypeError as e:
        raise ConfigError(f"{what}: {e}") from None


def plugin_config_packages() -> list[str]:
    """Top-level packages of third-party methods/tasks that ship a `conf/` folder; the Hydra
    search-path plugin adds `pkg://<package>/conf` for each, so their YAML composes like ours."""
    import importlib.util
    from pathlib import Path

    ours = {"methods", "tasks", "models", "attacks"}
    packages = set()
    for kind in GROUPS:
        for ep in entry_points(kind).values():
            top = ep.value.split(":")[0].split(".")[0]
            if top in ours:
                continue
            spec = importlib.util.find_spec(top)  # locates the package without importing it
            locations = spec.submodule_search_locations if spec else None
            if locations and any((Path(p) / "conf").is_dir() for p in locations):
                packages.add(top)
    return sorted(packages)
