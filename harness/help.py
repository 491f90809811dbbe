"""`python -m harness --help`: the config groups, one line per choice, and how to see settings.

A choice's line is the first sentence of the comment block that opens its YAML file (ours and
those of installed plugin packages), so documenting a config documents its help line.
"""

from __future__ import annotations

import re
from pathlib import Path

GROUPS = ("method", "model", "suite", "attack", "tracker")
_ABBREVIATIONS = ("et al.", "e.g.", "i.e.", "vs.", "cf.")


def group_files(group: str, conf_dir: Path) -> dict[str, Path]:
    """Choice name -> YAML file for a config group: ours first, then installed plugin packages'."""
    import importlib.util

    from core.registry import plugin_config_packages

    folders = [conf_dir / group]
    for package in plugin_config_packages():
        spec = importlib.util.find_spec(package)
        folders += [Path(p) / "conf" / group for p in (spec.submodule_search_locations or [])]
    found: dict[str, Path] = {}
    for folder in folders:
        if folder.is_dir():
            for file in sorted(folder.glob("*.yaml")):
                found.setdefault(file.stem, file)
    return dict(sorted(found.items()))


def first_sentence(text: str, limit: int = 95) -> str:
    """The first sentence of `text` (not cut at "et al." or "e.g."), at most `limit` characters."""
    text = " ".join(text.split())
    protected = text
    for abbreviation in _ABBREVIATIONS:
        protected = protected.replace(abbreviation, abbreviation.replace(".", "\0"))
    match = re.search(r"\.(\s|$)", protected)
    sentence = (protected[: match.start() + 1] if match else protected).replace("\0", ".")
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def describe(file: Path) -> str:
    """One line about a config: the first sentence of its opening comment block."""
    lines = []
    for line in file.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return first_sentence(" ".join(lines)) if lines else ""


def defaults(conf_dir: Path) -> dict[str, str]:
    """The default choice of each group, from conf/config.yaml's defaults list."""
    import yaml

    config = yaml.safe_load((conf_dir / "config.yaml").read_text())
    chosen = {}
    for entry in config.get("defaults", []):
        if isinstance(entry, dict):
            chosen.update({k: str(v) for k, v in entry.items() if k in GROUPS})
    return chosen


def help_text(conf_dir: Path) -> str:
    chosen = defaults(conf_dir)
    out = ["harness: evaluate memorization-removal methods on a model.",
           "",
           "Usage: python -m harness [group=choice ...] [key=value ...]    (-m group=a,b sweeps)",
           ""]
    for group in GROUPS:
        files = group_files(group, conf_dir)
        out.append(f"{group}: (default: {chosen.get(group, '-')})")
        width = max(len(name) for name in files) + 2
        out += [f"  {name:<{width}}{describe(file)}" for name, file in files.items()]
        out.append("")
    sweeps = ", ".join(group_files("sweep", conf_dir))
    out += [
        f"Recorded sweeps (a method's main settings, seeds 0-2): python -m harness.sweep method=M  (M: {sweeps})",
        "",
        "Settings:",
        "  see a choice's settings    python -m harness method=kfac --cfg job --package method",
        "                             (likewise --package model, suite or attack)",
        "  change one                 python -m harness method=kfac method.rho=0.99",
        "  a task's setting           python -m harness suite.tasks.verbatim.limit=10   (no '+' needed)",
        "  the whole resolved config  python -m harness --cfg job",
        "  Hydra's own options        python -m harness --hydra-help",
        "",
        "Examples:",
        "  python -m harness                                  # organism, method=none, suite=memorization",
        "  python -m harness -m method=none,kfac,random_ablation",
        "  python -m harness model=hf model.path=/path/to/saved_model suite=own_model \\",
        "      suite.tasks.verbatim.data=/path/verbatim.jsonl suite.tasks.quotes.data=/path/quotes.jsonl \\",
        "      suite.tasks.perplexity.data=/path/text.txt suite.tasks.ndcg10.data=/path/text.txt",
        "Run files: runs/<model>/<suite>/<method>/seed<N>-<hash>.json; tables and plots: python -m leaderboard",
    ]
    return "\n".join(out)
