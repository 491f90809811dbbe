"""The organism's data families: every module of this package (but `base`) is one, named by its
block in the `organism:` settings and defining `FAMILY` (an `OrganismFamily`, base.py). Adding a
family is adding its module and its block in conf/model/organism.yaml.

From this registry derive
  - the corpus: `models.organism.corpus.generate_corpus` runs the families in registry order,
  - the `organism_full` suite's task entries (`suite_entries`; conf/suite/organism_full.yaml is
    written from it: `python -m models.organism.families --write-suite`, and a test fails when
    the file drifts),
  - the organism check targets (`check_targets`, models/organism/measure.py).

The order is part of the corpus: all families draw from one seeded random stream. The project's
families run in `FIRST`'s order, then any other family module by name, then `side_texts` (it
samples what the others made); so a new family changes nothing the earlier ones generate.
Entry points are not used for families for that reason: their order is not defined.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any

from models.organism.families.base import Evaluation, Generation, OrganismFamily

__all__ = ["Evaluation", "Generation", "OrganismFamily", "check_targets", "families", "family_keys",
           "suite_entries", "suite_yaml"]

# Generation order (see above): the order of the generator these families were split from.
FIRST: tuple[str, ...] = ("planted", "quotes", "world", "reading", "logic", "copy", "arithmetic", "math_facts",
                          "filler")
LAST: tuple[str, ...] = ("side_texts",)
NOT_FAMILIES = ("base",)
# The organism settings' blocks that are not families.
OTHER_SETTINGS = ("seed", "model", "train")


def family_keys() -> tuple[str, ...]:
    """The family modules of this package, in generation order."""
    modules = {m.name for m in pkgutil.iter_modules(__path__)
               if not m.name.startswith("_") and m.name not in NOT_FAMILIES}
    added = sorted(modules - set(FIRST) - set(LAST))
    return (*FIRST, *added, *LAST)


@functools.cache
def families() -> dict[str, OrganismFamily]:
    """Key -> family, in generation order."""
    registry = {}
    for key in family_keys():
        family = getattr(importlib.import_module(f"{__name__}.{key}"), "FAMILY", None)
        if not isinstance(family, OrganismFamily) or family.key != key:
            raise TypeError(f"{__name__}.{key} must define FAMILY, an OrganismFamily with key {key!r}")
        registry[key] = family
    return registry


def check_settings(settings: Mapping[str, Any]) -> None:
    """Every registered family has its block, and every block is a family or a known setting."""
    from core.errors import ConfigError, did_you_mean

    keys = list(families())
    valid = [*OTHER_SETTINGS, *keys]
    for key in settings:
        if key not in valid:
            raise ConfigError(f"organism settings: unknown block '{key}'{did_you_mean(key, valid)}; valid: {', '.join(valid)}")
    missing = [key for key in ("seed", *keys) if key not in settings]
    if missing:
        raise ConfigError(f"organism settings: no block for {', '.join(missing)} (every organism family in "
                          f"models/organism/families/ needs one; see conf/model/organism.yaml)")


def evaluations() -> list[Evaluation]:
    return [e for family in families().values() for e in family.evaluations]


def suite_entries() -> dict[str, dict[str, Any]]:
    """The `organism_full` suite's task entries: every family's evaluations, in registry order."""
    entries: dict[str, dict[str, Any]] = {}
    for e in evaluations():
        if e.name in entries:
            raise ValueError(f"two organism evaluations are named {e.name!r}")
        entries[e.name] = e.suite_entry()
    return entries


def check_targets() -> dict[str, Evaluation]:
    """Check target name -> its evaluation, for the evaluations that name one."""
    targets: dict[str, Evaluation] = {}
    for e in evaluations():
        if e.check is not None:
            if e.check in targets:
                raise ValueError(f"two organism evaluations check {e.check!r}")
            targets[e.check] = e
    return targets


SUITE_HEADER = """\
# Every family on the organism: memorization (verbatim, quotes, perturbed prompts), facts and QA,
# arithmetic, in-context logic, and coherence. Data refs `model:<name>` are files the organism
# brings (docs/DESIGN.md, "The organism's data"). Metrics and chance levels: docs/tasks.md.
# GENERATED from the organism's family registry (models/organism/families/): do not edit by hand;
# rewrite with `python -m models.organism.families --write-suite`.
"""


def _yaml_scalar(value: Any) -> str:
    import json

    return json.dumps(value) if isinstance(value, str) and ":" in value else str(value)


def suite_yaml() -> str:
    """The text of conf/suite/organism_full.yaml."""
    lines = [SUITE_HEADER.rstrip("\n"), "name: organism_full", "tasks:"]
    for name, entry in suite_entries().items():
        fields = ", ".join(f"{k}: {_yaml_scalar(v)}" for k, v in entry.items())
        lines.append(f"  {name}: {{{fields}}}")
    return "\n".join(lines) + "\n"
