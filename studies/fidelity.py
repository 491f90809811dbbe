"""Fidelity checks: on the organism, where the truth is known, does the harness show what the
paper reports? Used by the CI regression tests and by the fidelity study (docs/fidelity.md).

    python -m studies.fidelity check --reference tests/regression/reference.json   # runs, claims, diff
    python -m studies.fidelity write-reference --out tests/regression/reference.json model.organism.seed=1 seed=1
    python -m studies.fidelity measure-tolerance --seeds 0 1 2   # tests/regression/tolerance.json (slow)
    python -m studies.fidelity sweep --seeds 0 1 2    # the rho sweep study (slow), then a table

Each command takes trailing Hydra overrides of the organism (model.<key>=<value>) and of seed=,
device=, runs_dir=, cache_dir=, applied to every run it makes after the run's own overrides, so the
claims can be checked on any organism:

    python -m studies.fidelity check model.organism.seed=1 seed=1 model.organism.model.hidden=128

Group choices (method=, suite=, model=) are not taken: each run fixes its method and the suite.
`sweep` and `measure-tolerance` set seed= and model.organism.seed= from --seeds.

Runs go through the normal pipeline (`run_experiment`), so they land in `runs/` as run files,
reuse the cached baseline and K-FAC factors, and resume when interrupted.

A reference (studies/reference.py) holds one entry per *shipped* organism (the default settings
of seeds 0-2, committed with their weights): every number of its runs, edited ones included, is
the same on every machine within the tolerance `measure-tolerance` measured. Runs on an organism
built here (other settings) are another organism: a reference is refused for them before any run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.buildcache import CONF_DIR
from core.errors import ConfigError, HarnessError, OneLineParser
from core.io import atomic_write_json, atomic_write_text
from core.runrecord import REPLICATE_KEYS
from studies.organism_claims import claims, findings, summary
from studies.reference import (REFERENCE_FILE, TOLERANCE_FILE, add_reference_entry, compare_with_reference, describe,
                               largest_differences, organism_identity, read_reference, read_tolerances, tolerance_bound)
from studies.tradeoff_sweep import sweep, sweep_table

if TYPE_CHECKING:
    from omegaconf import DictConfig

SUITE = "organism_full"
# The runs CI makes: name -> Hydra overrides (the organism default model and seed).
REGRESSION_RUNS: dict[str, list[str]] = {
    "none": ["method=none"],
    "kfac": ["method=kfac"],
    "random_ablation": ["method=random_ablation"],
    # 10 of the organism setting's 50 steps: at 50 (lr 30, top-k masks) any rounding difference
    # becomes another mask, and the edited numbers differ between CPUs by several points (equal at 1
    # and 2 threads on one CPU); at 10 they are the same under other matmul kernels (docs/fidelity.md).
    "balanced_subnet_10_steps": ["method=balanced_subnet", "method.epochs=10"],
}
# The command-line overrides the commands take besides model.<key>=: the run seed, and where runs
# happen and are stored. Group choices are not taken: the claims are about these methods on SUITE.
TOP_LEVEL_OVERRIDES = ("seed", "device", "runs_dir", "cache_dir")
# Of those, the ones that leave the numbers as they are (the files go elsewhere; `device` is `auto`
# by default anyway): the only ones allowed with the committed reference.
PLACE_OVERRIDES = ("device", "runs_dir", "cache_dir")
# What `sweep` sets from --seeds: each seed trains its own organism and seeds its runs (the keys
# that make replicates of one configuration, core.runrecord).
SEED_KEYS = REPLICATE_KEYS
# An argument that is a Hydra override, not an option or an option's value: `key=value`, or one
# that adds or deletes a key (`+key=`, `~key`), which check_overrides refuses by name.
_OVERRIDE_LIKE = re.compile(r"[+~]|[A-Za-z_][\w.]*=")
# The options that take one value, which may look like an override (LABEL=FILE).
_ONE_VALUE_OPTIONS = ("--out", "--reference", "--tolerance", "--setting", "--compare", "--previous")


def compose_config(overrides: list[str]) -> DictConfig:
    """The config of a run with `overrides` (as on the command line) on SUITE (harness.config)."""
    from harness import config

    return config.compose_config("config", [f"suite={SUITE}", *overrides])


def run_config(overrides: list[str], runs_dir: Path | None = None, finished_only: bool = False) -> dict[str, Any] | None:
    """Compose the config with `overrides` (as on the command line) and run it; with
    `finished_only`, return its finished run file if there is one (else None) and run nothing."""
    from harness.pipeline import run_experiment

    extra = [f"runs_dir={runs_dir}"] if runs_dir is not None else []
    cfg = compose_config([*overrides, *extra])
    if not finished_only:
        return run_experiment(cfg)
    from core.io import read_json
    from core.runrecord import run_path
    from harness.config import named_config
    from harness.pipeline import run_identity

    config = named_config(cfg)
    run = read_json(run_path(Path(config["runs_dir"]), run_identity(config)))
    return run if run is not None and run.get("status") == "complete" else None


def reference_record(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The reference entry of the regression runs: the organism they used and each run's numbers."""
    config = runs["none"]["config"]
    return {"organism": organism_identity(config["model"]["organism"], Path(config["cache_dir"])),
            "runs": {name: summary(run) for name, run in runs.items()}}


def measuring_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides that change what the runs measure (the organism, the run seed): all but
    PLACE_OVERRIDES."""
    return [arg for arg in overrides if arg.split("=", 1)[0] not in PLACE_OVERRIDES]


def check_overrides(command: str, overrides: list[str]) -> None:
    """Raise ConfigError, in one line, for an override `command` does not take or a key the config
    lacks (harness.config names the valid keys beside it). Runs nothing."""
    from harness.config import check_override_keys, parse_overrides

    keys = []
    for arg in overrides:
        found = parse_overrides([arg], groups=())[1]  # no groups: `model=hf` is a key, and refused
        key = found[0] if found else None
        if key is None or not (key.startswith("model.") or key in TOP_LEVEL_OVERRIDES):
            raise ConfigError(f"{command} does not take '{arg}'; it takes model.<key>=<value> (the organism's "
                              f"settings, e.g. model.organism.seed=1) and "
                              f"{', '.join(k + '=' for k in TOP_LEVEL_OVERRIDES)}: each run fixes its "
                              f"method, and the suite is {SUITE}")
        if command in ("sweep", "measure-tolerance") and key in SEED_KEYS:
            raise ConfigError(f"sweep sets {' and '.join(k + '=' for k in SEED_KEYS)} from --seeds (each seed "
                              f"trains its own organism); give the seeds with --seeds instead of '{arg}'")
        keys.append(key)
    check_override_keys({"suite": SUITE}, keys)


def check_sweep_settings(rhos: list[float], svd_fractions: list[float], overrides: Sequence[str]) -> None:
    """Every method setting the sweep will run is built (checked by the method itself) before the
    first run: `--rhos 1.5` is one line at once, not after a whole run (issue 29)."""
    from harness.config import resolve_config
    from methods.base import build_method
    from studies.tradeoff_sweep import sweep_plans

    for _, own, _, option in sweep_plans(rhos, svd_fractions):
        try:
            build_method(resolve_config(compose_config([*own, *overrides]))["method"])
        except ConfigError as e:
            raise ConfigError(f"{option}: {e}" if option else str(e)) from None


def shipped_organism(overrides: Sequence[str]) -> bool:
    """Whether the runs with `overrides` use a shipped organism (composed, nothing built)."""
    from omegaconf import OmegaConf

    from core.buildcache import find_shipped
    from models.organism import SHIPPED_DIR, settings_hash

    settings = OmegaConf.to_container(compose_config(list(overrides)).model.organism, resolve=True)
    return find_shipped(SHIPPED_DIR, settings_hash(settings)) is not None


def check_reference_use(path: Path, overrides: Sequence[str], doing: str) -> None:
    """ConfigError, before any run, when the runs' organism is not shipped: a reference holds
    shipped organisms only, whose numbers are the same on every machine."""
    if not shipped_organism(overrides):
        changed = " ".join(measuring_overrides(overrides))
        raise ConfigError(f"will not {doing} {path}: the runs with {changed or 'these settings'} use an organism "
                          f"built on this machine, not a shipped one (models/organism/shipped/: the default settings "
                          f"of seeds 0-2, model.organism.seed=N seed=N), and a reference holds shipped organisms only")


def merged_entry(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    """`record` with the other REGRESSION_RUNS of the same organism's entry in `path` (if any)."""
    from studies.reference import same_organism

    entries = read_reference(path) if path.exists() else []
    own = next((e for e in entries if same_organism(e["organism"], record["organism"])), None)
    kept = {name: run for name, run in (own or {"runs": {}})["runs"].items() if name in REGRESSION_RUNS}
    return {**record, "runs": {**kept, **record["runs"]}}


def regression_runs(runs_dir: Path | None = None, overrides: Sequence[str] = (),
                    finished_only: bool = False, names: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """The REGRESSION_RUNS (or `none` and those in `names`), each with `overrides` after its own;
    with `finished_only`, the finished ones only (nothing is run)."""
    chosen = {name: own for name, own in REGRESSION_RUNS.items() if not names or name == "none" or name in names}
    runs = {name: run_config([*own, *overrides], runs_dir, finished_only) for name, own in chosen.items()}
    return {name: run for name, run in runs.items() if run is not None}


OVERRIDES_HELP = (f"Trailing overrides, applied to every run after its own: model.<key>=<value> (the "
                  f"organism: model.organism.seed=1 model.organism.model.hidden=128 ...) and "
                  f"{', '.join(k + '=' for k in TOP_LEVEL_OVERRIDES)}.")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m studies.fidelity", description=__doc__.split("\n\n")[0],
                            epilog=OVERRIDES_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="regression runs, fidelity claims, reference comparison",
                           epilog=OVERRIDES_HELP)
    check.add_argument("--reference", type=Path, help=f"reference JSON to compare with (CI: {REFERENCE_FILE.relative_to(CONF_DIR.parent)})")
    check.add_argument("--tolerance", type=Path, default=TOLERANCE_FILE, help="measured tolerances (measure-tolerance)")
    write = sub.add_parser("write-reference", help="add (or replace) this shipped organism's entry in a reference JSON",
                           epilog=OVERRIDES_HELP + " Only shipped organisms (the default settings, seeds 0-2) have entries.")
    write.add_argument("--out", type=Path, required=True, help=f"the reference file (CI reads {REFERENCE_FILE.relative_to(CONF_DIR.parent)})")
    write.add_argument("--finished-only", action="store_true", help="record the finished runs only, run nothing "
                       "(a partial entry: for measure-tolerance --compare, not for CI's reference)")
    write.add_argument("--runs", nargs="+", default=[], choices=[name for name in REGRESSION_RUNS if name != "none"],
                       help="these runs and `none` only; the entry keeps the file's numbers of the other runs")
    tol = sub.add_parser("measure-tolerance", help="the regression runs under several evaluation settings; each "
                         "task's largest difference and tolerance (slow)", epilog=OVERRIDES_HELP)
    tol.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    tol.add_argument("--out", type=Path, default=TOLERANCE_FILE)
    tol.add_argument("--setting", action="append", default=[], help=f"evaluation settings to run (default all, or none with --compare: "
                     f"{', '.join(EVALUATION_SETTINGS)})")
    tol.add_argument("--compare", action="append", default=[], metavar="LABEL=FILE",
                     help="a reference made by write-reference under another setting, compared as one more setting")
    tol.add_argument("--previous", type=Path, default=None, metavar="FILE",
                     help="an earlier tolerance file (this command's output, e.g. from another CPU whose references "
                     "were not kept): its largest differences are kept as a floor and its settings listed")
    sw = sub.add_parser("sweep", help="rho sweep over organism seeds (slow)",
                        epilog=f"{OVERRIDES_HELP} The seeds ({', '.join(k + '=' for k in SEED_KEYS)}) come from --seeds.")
    sw.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    # Organism v2's window: 0.9 already takes open-book reading to ~30 %, 0.995 keeps most passages.
    sw.add_argument("--rhos", type=float, nargs="+", default=[0.9, 0.95, 0.98, 0.99, 0.995])
    sw.add_argument("--svd-fractions", type=float, nargs="+", default=[0.05, 0.5])
    sw.add_argument("--out", type=Path, default=Path("docs/fidelity_sweep.md"))
    sw.add_argument("--finished-only", action="store_true", help="tabulate finished runs, run nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Overrides are taken out first: argparse would read one after --seeds 0 1 as a seed. An
    # option's own value is never one (`--compare xeon=ref.json` is a label and a file).
    overrides, rest = [], []
    for i, arg in enumerate(argv):
        is_value = i > 0 and argv[i - 1] in _ONE_VALUE_OPTIONS
        (overrides if _OVERRIDE_LIKE.match(arg) and not is_value else rest).append(arg)
    args = build_parser().parse_args(rest)
    try:
        return run_command(args, overrides)
    except HarnessError as e:
        if os.environ.get("HARNESS_DEBUG") == "1":
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2


def run_command(args: argparse.Namespace, overrides: list[str]) -> int:
    # Everything the command line can get wrong is checked here, before the first (slow) run.
    check_overrides(args.command, overrides)
    compose_config(overrides)  # a value Hydra cannot parse fails here, not in the first run
    if args.command == "measure-tolerance":
        return measure_tolerance(args.seeds, args.out, overrides, args.setting, args.compare, args.previous)
    if args.command == "write-reference":
        check_reference_use(args.out, overrides, "write into")
    tolerances, entries = None, None
    if args.command == "check" and not args.reference and args.tolerance != TOLERANCE_FILE:
        raise ConfigError(f"--tolerance {args.tolerance} is read only with --reference <file> (the tolerances of "
                          "a comparison with a reference); add --reference, or drop --tolerance")
    if args.command == "check" and args.reference:
        check_reference_use(args.reference, overrides, "compare with")
        entries, tolerances = read_reference_files(args.reference, args.tolerance)

    if args.command == "sweep":
        check_sweep_settings(args.rhos, args.svd_fractions, overrides)
        records = sweep(run_config, args.seeds, args.rhos, args.svd_fractions, args.finished_only, overrides)
        table = sweep_table(records, measuring_overrides(overrides))
        atomic_write_text(args.out, table)
        print(table)
        return 0
    runs = regression_runs(overrides=overrides, finished_only=getattr(args, "finished_only", False),
                           names=getattr(args, "runs", ()))
    if "none" not in runs:
        raise ConfigError("no finished `none` run with these overrides: nothing to record (drop --finished-only to run them)")
    current = reference_record(runs)
    if args.command == "write-reference":
        if args.runs:  # the other runs' numbers stay as the file has them
            current = merged_entry(args.out, current)
        add_reference_entry(args.out, current)
        print(f"wrote the entry of {describe(current['organism'])} into {args.out}; review the diff before committing")
        return 0
    failed = False
    for claim, (holds, numbers) in claims(runs).items():
        print(f"{'PASS' if holds else 'FAIL'}  {claim}: {numbers}")
        failed |= not holds
    for name, run in runs.items():
        if name != "none":
            for line in findings(run):
                print(f"INFO  {name}: {line}")
    if entries is not None:
        problems = compare_with_reference(current, entries, tolerances, args.reference)
        for line in problems:
            print(f"DIFF  {line}")
        if not problems:
            print(f"PASS  every number within the measured tolerance of {args.reference}")
        failed |= bool(problems)
    return 1 if failed else 0


def read_reference_files(reference: Path, tolerance: Path) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """The reference's entries and the measured tolerances; a file that cannot be read is one line."""
    try:
        return read_reference(reference), read_tolerances(tolerance)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"cannot read the reference {reference} or the tolerance file {tolerance}: {e}") from None


# Evaluation settings the tolerance is measured over: thread counts, and the instruction sets of a
# CPU without AVX-512 (torch's kernels, oneDNN and MKL each capped at AVX2): what another machine
# evaluating the same shipped weights may do differently.
EVALUATION_SETTINGS: dict[str, dict[str, str]] = {
    "1 thread": {"OMP_NUM_THREADS": "1"},
    "2 threads": {"OMP_NUM_THREADS": "2"},
    "2 threads, AVX2 kernels": {"OMP_NUM_THREADS": "2", "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                                "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}


def compared_references(items: Sequence[str], seeds: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    """LABEL -> the entries of `seeds` in FILE, for each --compare `LABEL=FILE` of `items`, with the
    REGRESSION_RUNS only (a file made when the runs were others keeps its still-current runs);
    one ConfigError line for a bad item or file."""
    found: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        label, _, path = item.partition("=")
        if not path:
            raise ConfigError(f"--compare takes LABEL=FILE (a reference made by write-reference), got {item!r}")
        try:
            entries = [e for e in read_reference(Path(path)) if e["organism"]["seed"] in seeds]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"--compare {item}: cannot read the reference: {e}") from None
        if not entries:
            raise ConfigError(f"--compare {item}: no entry for seeds {list(seeds)} in {path}")
        found[label] = [{**e, "runs": {name: r for name, r in e["runs"].items() if name in REGRESSION_RUNS}}
                        for e in entries]
    return found


def measure_tolerance(seeds: list[int], out: Path, overrides: Sequence[str], settings: Sequence[str] = (),
                      compare: Sequence[str] = (), previous: Path | None = None) -> int:
    """Run the regression runs of each shipped seed under each chosen EVALUATION_SETTINGS entry
    (`settings`; default all, none when `compare` is given), each in its own process with runs and K-FAC factors computed
    afresh; add the references named in `compare` (`LABEL=FILE`, made by write-reference under
    another setting) and the largest differences of a `previous` measurement (of runs still among
    the REGRESSION_RUNS); write each task's largest difference between any two settings and its
    tolerance (studies.reference.tolerance_bound) to `out`."""
    import subprocess
    import tempfile

    from core.runrecord import cpu_name

    earlier: dict[str, Any] = {}
    earlier_tasks: dict[str, float] = {}
    if previous is not None:
        try:
            earlier = json.loads(previous.read_text(encoding="utf-8"))
            earlier_tasks = {task: float(t["largest_difference"]) for task, t in earlier["tasks"].items()
                             if task.split("/")[0] in REGRESSION_RUNS}
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"--previous {previous}: not a tolerance file written by measure-tolerance: {e}") from None
    chosen = list(settings) or ([] if compare else list(EVALUATION_SETTINGS))  # only --compare: compare files
    unknown = [name for name in chosen if name not in EVALUATION_SETTINGS]
    if unknown:
        raise ConfigError(f"unknown evaluation setting {unknown[0]!r}; valid: {', '.join(EVALUATION_SETTINGS)}")
    per_setting = compared_references(compare, seeds)
    seed_overrides = {seed: [*overrides, *(f"{key}={seed}" for key in SEED_KEYS)] for seed in seeds}
    for seed in seeds if chosen else ():  # every seed's organism checked before the first (slow) run
        check_reference_use(out, seed_overrides[seed], "measure a tolerance into")
    for name in chosen:
        for seed in seeds:
            with tempfile.TemporaryDirectory() as folder:
                ref = Path(folder) / "reference.json"
                command = [sys.executable, "-m", "studies.fidelity", "write-reference", "--out", str(ref),
                           *seed_overrides[seed], f"runs_dir={folder}/runs", f"cache_dir={folder}/cache"]
                print(f"[{name}] seed {seed}: {' '.join(command[2:])}", flush=True)
                subprocess.run(command, check=True, env={**os.environ, **EVALUATION_SETTINGS[name]})
                per_setting.setdefault(name, []).extend(read_reference(ref))
    summaries = []
    for entries in per_setting.values():
        summaries.append({f"seed{e['organism']['seed']}/{run}": tasks for e in entries for run, tasks in e["runs"].items()})
    tasks = largest_differences(summaries)
    for name, difference in earlier_tasks.items():
        if name in tasks:
            tasks[name]["largest_difference"] = max(tasks[name]["largest_difference"], difference)
        else:
            tasks[name] = {key: earlier["tasks"][name][key] for key in ("kind", "n", "largest_difference")}
    for task in tasks.values():
        task["tolerance"] = tolerance_bound(task["kind"], task["n"], task["largest_difference"])
    files = dict(item.partition("=")[::2] for item in compare)
    listed = {**files, **{name: EVALUATION_SETTINGS[name] for name in chosen}}
    kept = None if previous is None else {"file": str(previous), "machine": earlier.get("machine"),
                                          "settings": earlier.get("settings")}
    # Where the settings run here ran; compared files alone regenerate the same file on any machine.
    machine = cpu_name() if chosen else "none: compared files only"
    atomic_write_json(out, {"machine": machine, "seeds": seeds, "settings": listed, "previous": kept,
                            "runs": sorted(REGRESSION_RUNS), "tasks": tasks}, sort_keys=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
