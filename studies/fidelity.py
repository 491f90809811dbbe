"""Fidelity checks: on the organism, where the truth is known, does the harness show what the
paper reports? Used by the CI regression tests and by the fidelity study (docs/fidelity.md).

    python -m studies.fidelity check [--reference tests/regression/reference.json]   # runs, claims, diff
    python -m studies.fidelity write-reference --out tests/regression/reference.json # add this build's entry
    python -m studies.fidelity sweep --seeds 0 1 2    # the rho sweep study (slow), then a table

Each command takes trailing Hydra overrides of the organism (model.<key>=<value>) and of seed=,
device=, runs_dir=, cache_dir=, applied to every run it makes after the run's own overrides, so the
claims can be checked on any organism:

    python -m studies.fidelity check model.organism.seed=1 model.organism.model.hidden=128

Group choices (method=, suite=, model=) are not taken: each run fixes its method and the suite.
`sweep` sets seed= and model.organism.seed= from --seeds. The committed reference is CI's default
runs only: write-reference will not write runs made with model.* or seed= overrides into it, and
check will not compare such runs with it.

Runs go through the normal pipeline (`run_experiment`), so they land in `runs/` as run files,
reuse the cached baseline and K-FAC factors, and resume when interrupted.

The reference holds one entry per organism build ({"builds": [{"build": ..., "runs": ...}]}): the
organism is trained on the CPU it runs on, builds from different CPUs differ in their weights, and
near the edit's transition their edited numbers differ far beyond any useful tolerance, while the
unedited model's numbers agree. So a build with an entry has every number compared with it; a
build without one has only the baseline numbers compared with the builds of the same organism
settings, and passes that part if they agree with at least one, with a NOTE saying the edited
numbers were not compared and how to add an entry (`write-reference` adds or replaces the current
build's entry and keeps the others). Builds of other settings are another organism: nothing of
theirs is compared, and a reference without an entry for the settings is refused before any run."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from core.buildcache import CONF_DIR
from core.errors import ConfigError, HarnessError
from core.io import atomic_write_json, atomic_write_text
from core.runrecord import REPLICATE_KEYS, cpu_name
from studies.organism_claims import claims, findings, summary
from studies.tradeoff_sweep import sweep, sweep_table

if TYPE_CHECKING:
    from omegaconf import DictConfig

SUITE = "organism_full"
# The runs CI makes: name -> Hydra overrides (the organism default model and seed).
REGRESSION_RUNS: dict[str, list[str]] = {
    "none": ["method=none"],
    "kfac": ["method=kfac"],
    "random_ablation": ["method=random_ablation"],
    "balanced_subnet": ["method=balanced_subnet"],
}
# Absolute tolerance for proportions and relative tolerance for other metrics (perplexity), when
# comparing against the committed reference. Training the organism on another machine (another
# BLAS, another thread count) changes its weights slightly; these bounds absorb that, not a bug.
TOLERANCE = {"proportion": 0.10, "relative": 0.10}
# Tasks whose unedited numbers differ between builds of one organism by more than the tolerance:
# skills that emerge late in training (organism v2, same settings, CPU vs GPU build: held-out
# arithmetic 0.63 vs 0.98, copy 0.40 vs 0.56, rare facts 0.57 vs 0.69, docs/organism.md). On a
# build without a reference entry they are reported, not compared.
BUILD_VARIABLE_TASKS = ("arithmetic", "math_facts", "copy", "facts_rare", "qa_closed")

# The command-line overrides the commands take besides model.<key>=: the run seed, and where runs
# happen and are stored. Group choices are not taken: the claims are about these methods on SUITE.
TOP_LEVEL_OVERRIDES = ("seed", "device", "runs_dir", "cache_dir")
# Of those, the ones that leave the numbers as they are (the files go elsewhere; `device` is `auto`
# by default anyway): the only ones allowed with the committed reference.
PLACE_OVERRIDES = ("device", "runs_dir", "cache_dir")
# What `sweep` sets from --seeds: each seed trains its own organism and seeds its runs (the keys
# that make replicates of one configuration, core.runrecord).
SEED_KEYS = REPLICATE_KEYS
# The reference CI compares with: its entries hold the default runs (no overrides) of each build.
CI_REFERENCE = CONF_DIR.parent / "tests" / "regression" / "reference.json"
# An argument that is a Hydra override, not an option or an option's value: `key=value`, or one
# that adds or deletes a key (`+key=`, `~key`), which check_overrides refuses by name.
_OVERRIDE_LIKE = re.compile(r"[+~]|[A-Za-z_][\w.]*=")


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


ROLES = ("baseline", "edited")


def reference_differences(current: dict[str, dict[str, dict[str, float]]],
                          reference: dict[str, dict[str, dict[str, float]]],
                          roles: tuple[str, ...] = ROLES, skip_tasks: Sequence[str] = ()) -> list[str]:
    """One line for every (run, task, role) number outside the tolerance of the reference, for
    each role in `roles` and each task not in `skip_tasks`, or missing from the current results."""
    problems = []
    for run_name, tasks in sorted(reference.items()):
        for task, ref in sorted(tasks.items()):
            if task in skip_tasks:
                continue
            got = current.get(run_name, {}).get(task)
            if got is None:
                problems.append(f"{run_name}/{task}: missing from the current results")
                continue
            for role in roles:
                r, g = ref[role], got[role]
                if ref["kind"] == "proportion":
                    ok, bound = abs(g - r) <= TOLERANCE["proportion"], f"±{TOLERANCE['proportion']}"
                else:
                    ok, bound = abs(g - r) <= TOLERANCE["relative"] * abs(r), f"±{TOLERANCE['relative']:.0%}"
                if not ok:
                    problems.append(f"{run_name}/{task} {role}: {g} vs reference {r} ({bound})")
    return problems


def organism_build(run: dict[str, Any]) -> dict[str, Any]:
    """Which organism build a run used: its settings hash, a digest of its weights, and where it
    was trained. Organisms trained on different CPUs (another SIMD width, another thread count)
    differ in their weights, and near the edit's transition their numbers differ by more than
    the tolerance: a reference is only comparable with the build it was made on."""
    from core.hashing import bytes_hash

    from models.organism import settings_hash

    key = settings_hash(run["config"]["model"]["organism"])
    folder = Path(run["config"]["cache_dir"]) / "organism" / key
    weights = bytes_hash((folder / "model" / "model.safetensors").read_bytes(), 16)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return {"settings_hash": settings_key(run["config"]["model"]["organism"]), "weights_sha256": weights,
            "threads": manifest.get("threads"), "versions": manifest.get("versions"), "cpu": cpu_name(),
            "precision": build_precision(manifest)}


def build_precision(record: dict[str, Any]) -> str:
    """The precision an organism build trained in (a manifest or an `organism_build` record; older
    ones, from before `train.precision`, trained in float32)."""
    return str(record.get("precision", "float32"))


def settings_key(settings: dict[str, Any]) -> str:
    """The organism settings' part of a build record: the start of their cache hash."""
    from models.organism import settings_hash

    return settings_hash(settings)[:16]


def reference_record(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One build's reference entry (what `write-reference` adds): the organism build and each
    regression run's numbers."""
    return {"build": organism_build(runs["none"]), "runs": {name: summary(run) for name, run in runs.items()}}


def same_settings(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two `organism_build` records are builds of the same organism settings in the same
    precision (on one CPU or another); builds of other settings, or trained in another precision
    (`train.precision: auto` is bfloat16 only where the CPU has it), are another organism."""
    return a.get("settings_hash") == b.get("settings_hash") and build_precision(a) == build_precision(b)


def same_build(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two `organism_build` records are the same organism: same settings and same weights
    (CPU, threads and library versions only explain a difference; the weights are the fact)."""
    return same_settings(a, b) and a.get("weights_sha256") == b.get("weights_sha256")


def describe_build(build: dict[str, Any]) -> str:
    return f"{build.get('cpu')} (settings {build.get('settings_hash')}, weights {build.get('weights_sha256')})"


def reference_entries(reference: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-build entries of a parsed reference file: {"builds": [entry, ...]}, or the older
    single-build file {"build": ..., "runs": ...} as one entry."""
    if "builds" in reference:
        return list(reference["builds"])
    if "build" in reference and "runs" in reference:
        return [reference]
    raise ValueError("not a fidelity reference: expected {\"builds\": [...]} or {\"build\": ..., \"runs\": ...}")


def read_reference(path: Path) -> list[dict[str, Any]]:
    return reference_entries(json.loads(Path(path).read_text(encoding="utf-8")))


def add_reference_entry(path: Path, record: dict[str, Any]) -> None:
    """Put `record` (a `reference_record`) into the reference file at `path`: replace the entry of
    the same build in place, or append it; other builds' entries are kept as they are. A missing
    file starts empty; an old single-build file is rewritten in the per-build format."""
    entries = read_reference(path) if Path(path).exists() else []
    at = next((i for i, e in enumerate(entries) if same_build(e["build"], record["build"])), None)
    if at is None:
        entries.append(record)
    else:
        entries[at] = record
    atomic_write_json(path, {"builds": entries}, sort_keys=True)


def write_reference_command(reference_file: Path | str, overrides: Sequence[str] = ()) -> str:
    """The command that adds the entry of runs made with `overrides` to `reference_file`."""
    return " ".join(["python -m studies.fidelity write-reference --out", str(reference_file), *overrides])


def compare_with_reference(current: dict[str, Any], entries: list[dict[str, Any]],
                           reference_file: Path | str, overrides: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """Compare `current` (a `reference_record`) with a reference's per-build entries; returns
    (problems, notes). With an entry for the current build, every number is compared with it.
    Without one, only the baseline numbers are, with the builds of the same organism settings: the
    check passes if they agree with at least one of them (otherwise every such build's differences
    are problems), and a note says the edited numbers were not compared (notes are empty exactly
    when every number was compared). No build of the same settings is a problem: nothing could be
    compared; builds of them in another precision only give a note saying nothing was compared.
    The notes' command names `reference_file` and the runs' `overrides`."""
    build = current["build"]
    comparable = [e for e in entries if same_settings(e["build"], build)]
    if not comparable:
        # Builds of these settings in another precision (precision auto follows the CPU) are
        # another training run, whose numbers this build's need not match: a note, not a problem.
        other_precision = sorted({build_precision(e["build"]) for e in entries
                                  if e["build"].get("settings_hash") == build["settings_hash"]})
        if not other_precision:
            return [no_entry_message(reference_file, build["settings_hash"], entries, overrides)], []
        return [], [f"NOTHING compared: this organism build trained in {build_precision(build)} and {reference_file} "
                    f"holds builds of its settings trained in {', '.join(other_precision)} only (precision auto "
                    f"follows the CPU); add this build's entry with: {write_reference_command(reference_file, overrides)}"]
    own = next((e for e in comparable if same_build(e["build"], build)), None)
    if own is not None:
        return reference_differences(current["runs"], own["runs"]), []
    # Near the edit's transition an edited number moves by 0.3 between builds (K-FAC's quotes:
    # 0.3 on one, 0.6 on another), so comparing edited numbers across builds tests the CPU, not the
    # code; the unedited model's numbers stay within the tolerance across builds of one organism.
    notes = [f"edited numbers NOT compared: {reference_file} has no entry for this organism build, "
             f"{describe_build(build)}, and edited numbers are build-specific near the edit's transition; "
             f"baseline numbers were compared with each of its {len(comparable)} build(s) of the same "
             f"organism settings. Add this build's entry with: {write_reference_command(reference_file, overrides)}"]
    notes.append(f"baseline numbers of {', '.join(BUILD_VARIABLE_TASKS)} NOT compared: these skills emerge late "
                 "in training and differ between builds by more than the tolerance")
    per_build = [(e["build"], reference_differences(current["runs"], e["runs"], roles=("baseline",),
                                                    skip_tasks=BUILD_VARIABLE_TASKS))
                 for e in comparable]
    agreeing = [b for b, problems in per_build if not problems]
    if agreeing:
        notes.append(f"baseline numbers agree with build {describe_build(agreeing[0])}")
        return [], notes
    problems = [f"{line} [build {describe_build(b)}]" for b, lines in per_build for line in lines]
    problems.append("baseline numbers agree with none of the recorded builds")
    return problems, notes


def no_entry_message(reference_file: Path | str, key: str, entries: list[dict[str, Any]],
                     overrides: Sequence[str] = ()) -> str:
    """One line: `reference_file` has no build of organism settings `key` (a `settings_key`)."""
    recorded = sorted({str(e["build"].get("settings_hash")) for e in entries})
    out = "<another file>" if is_ci_reference(reference_file) else reference_file  # CI's holds the defaults only
    return (f"{reference_file} has no entry for these organism settings (settings {key}; it records "
            f"{'settings ' + ', '.join(recorded) if recorded else 'no build'}), and another organism's "
            f"numbers say nothing about this one; make a reference for them with: "
            f"{write_reference_command(out, overrides)}")


def is_ci_reference(path: Path | str) -> bool:
    return Path(path).resolve() == CI_REFERENCE.resolve()


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
        if command == "sweep" and key in SEED_KEYS:
            raise ConfigError(f"sweep sets {' and '.join(k + '=' for k in SEED_KEYS)} from --seeds (each seed "
                              f"trains its own organism); give the seeds with --seeds instead of '{arg}'")
        keys.append(key)
    check_override_keys({"suite": SUITE}, keys)


def refuse_ci_reference(path: Path, overrides: Sequence[str], doing: str) -> None:
    """ConfigError when `path` is CI's reference and the runs are not CI's default runs; `doing`
    says what was refused, with {changed} and {path} in it."""
    changed = measuring_overrides(overrides)
    if changed and is_ci_reference(path):
        raise ConfigError(f"{doing.format(changed=' '.join(changed), path=path)}: it is CI's reference, whose "
                          f"entries are keyed by organism build alone and hold the default runs (CI compares its "
                          f"runs with them), so runs made with other settings do not belong in it; use another "
                          f"file: {write_reference_command('<another file>', overrides)}")


def comparable_reference(path: Path, overrides: Sequence[str], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of reference `path`, read before any run: a reference that cannot be read or
    holds no build of the runs' organism `settings` is a one-line ConfigError."""
    refuse_ci_reference(path, overrides, "will not compare runs made with {changed} with {path}")
    try:
        entries = read_reference(path)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--reference {path} is not JSON: {e}") from None
    except (OSError, ValueError) as e:  # a missing file; JSON that is not a reference
        raise ConfigError(f"--reference {path} cannot be read: {e}") from None
    key = settings_key(settings)
    # the precision is known only once the organism is built; any precision of these settings will do here
    if not any(e.get("build", {}).get("settings_hash") == key for e in entries):
        raise ConfigError(no_entry_message(path, key, entries, overrides))
    return entries


def regression_runs(runs_dir: Path | None = None, overrides: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """The REGRESSION_RUNS, each with `overrides` after its own."""
    return {name: run_config([*own, *overrides], runs_dir) for name, own in REGRESSION_RUNS.items()}


class _OneLineParser(argparse.ArgumentParser):
    """Bad options end in one line (argparse's default prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}; see {self.prog} --help", file=sys.stderr)
        sys.exit(2)


OVERRIDES_HELP = (f"Trailing overrides, applied to every run after its own: model.<key>=<value> (the "
                  f"organism: model.organism.seed=1 model.organism.model.hidden=128 ...) and "
                  f"{', '.join(k + '=' for k in TOP_LEVEL_OVERRIDES)}.")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="python -m studies.fidelity", description=__doc__.split("\n\n")[0],
                            epilog=OVERRIDES_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="regression runs, fidelity claims, reference comparison",
                           epilog=OVERRIDES_HELP)
    check.add_argument("--reference", type=Path, help="reference JSON to compare with (CI: tests/regression/reference.json)")
    write = sub.add_parser("write-reference", help="add (or replace) this organism build's entry in a reference JSON",
                           epilog=OVERRIDES_HELP + " With model.* or seed= overrides, --out must be another file "
                           "than tests/regression/reference.json (CI's, for the default runs).")
    write.add_argument("--out", type=Path, required=True, help="the reference file (CI reads tests/regression/reference.json)")
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
    # Overrides are taken out first: argparse would read one after --seeds 0 1 as a seed.
    overrides = [arg for arg in argv if _OVERRIDE_LIKE.match(arg)]
    args = build_parser().parse_args([arg for arg in argv if not _OVERRIDE_LIKE.match(arg)])
    try:
        return run_command(args, overrides)
    except HarnessError as e:
        if os.environ.get("HARNESS_DEBUG") == "1":
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2


def run_command(args: argparse.Namespace, overrides: list[str]) -> int:
    # Everything the command line can get wrong is checked here, before the first (slow) run.
    from omegaconf import OmegaConf

    check_overrides(args.command, overrides)
    # Composed once now, so that a value Hydra cannot parse fails here, not in the first run.
    settings = OmegaConf.to_container(compose_config(overrides).model.organism, resolve=True)
    if args.command == "write-reference":
        refuse_ci_reference(args.out, overrides, "will not write runs made with {changed} into {path}")
    entries = None
    if args.command == "check" and args.reference:
        entries = comparable_reference(args.reference, overrides, settings)

    if args.command == "sweep":
        records = sweep(run_config, args.seeds, args.rhos, args.svd_fractions, args.finished_only, overrides)
        table = sweep_table(records, measuring_overrides(overrides))
        atomic_write_text(args.out, table)
        print(table)
        return 0
    runs = regression_runs(overrides=overrides)
    current = reference_record(runs)
    if args.command == "write-reference":
        add_reference_entry(args.out, current)
        print(f"wrote the entry of build {describe_build(current['build'])} into {args.out}; "
              "review the diff before committing")
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
        problems, notes = compare_with_reference(current, entries, args.reference, overrides)
        for line in problems:
            print(f"DIFF  {line}")
        if not problems:  # say what was compared: on an unknown build it is the baselines only
            print(f"PASS  {'baseline numbers' if notes else 'every number'} within tolerance of {args.reference}")
        for line in notes:
            print(f"NOTE  {line}")
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
