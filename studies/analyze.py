"""`python -m studies.analyze spectrum|predict [overrides]`: the analysis behind the edit.

  spectrum  For each analysed matrix, its K-FAC curvature basis (the factor files the edit uses)
            split into bands by mass rank (deciles, top 10 %, bottom half); for each input set
            (the suite's task data: memorized passages, controls, held-out text, task prompts),
            the mean norm of each band's output over the counted positions; ratios of the
            memorized group to each other group per band, with a bootstrap interval over examples.
  predict   For every finished run of the method on this model and suite in runs_dir (one per rho
            if several), each task family's share of its activation on the removed components
            against its measured drop; Spearman rank correlation across families.

Overrides are the run's (model=..., method=..., suite=..., model.organism.seed=...) plus the
`analyze:` block of conf/analyze.yaml (analyze.layers=[23]). Outputs go beside the run files, in
<runs_dir>/analysis/<model>/<suite>/: a JSON file, a Markdown table and PNG plots. Method, maths
and findings: docs/analysis.md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from core.errors import ConfigError, DataError, HarnessError

COMMANDS = ("spectrum", "predict")
KIND = "analysis"
FORMAT = 1


# ---------------------------------------------------------------------------------------------
# Config and inputs
# ---------------------------------------------------------------------------------------------

def compose_config(overrides: list[str]) -> dict[str, Any]:
    """conf/analyze.yaml with the command line's overrides, resolved, its model named (harness.config)."""
    from harness import config

    return config.named_config(config.compose_config("analyze", overrides))


def default_groups(suite: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Groups of task instances from the suite's families: memorized (the memorized and
    memorized_val families), control, general (the first coherence instance: held-out text), and
    for image suites clean_train and heldout images (families clean_train, accuracy)."""
    by_family: dict[str, list[str]] = {}
    for name, entry in suite.items():
        by_family.setdefault(str(entry.get("family") or entry["task"]), []).append(name)
    groups = {"memorized": by_family.get("memorized", []) + by_family.get("memorized_val", []),
              "control": by_family.get("control", []),
              "general": by_family.get("coherence", [])[:1],
              "clean_train": by_family.get("clean_train", []),
              "heldout_images": by_family.get("accuracy", [])}
    return {g: names for g, names in groups.items() if names}


def check_analyze(analyze: dict[str, Any], suite: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    for key in ("batch_size", "seq_len", "general_tokens", "resamples"):
        value = analyze.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"analyze.{key} must be a positive integer, got {value!r}")
    if not isinstance(analyze.get("level"), (int, float)) or not 0 < analyze["level"] < 1:
        raise ConfigError(f"analyze.level must be in (0, 1), got {analyze.get('level')!r}")
    groups = analyze.get("groups") or default_groups(suite)
    if not isinstance(groups, dict):
        raise ConfigError(f"analyze.groups must map a group name to task instances, got {groups!r}")
    for group, names in groups.items():
        unknown = [n for n in names if n not in suite]
        if unknown:
            raise ConfigError(f"analyze.groups.{group} names {', '.join(unknown)}, not in suite "
                              f"'{next(iter(suite), '')}...'; its tasks: {', '.join(suite)}")
    if analyze.get("reference") not in groups:
        raise ConfigError(f"analyze.reference '{analyze.get('reference')}' is not a group; groups: {', '.join(groups)}")
    if len(groups) < 2:
        raise ConfigError(f"analyze needs a second group to compare '{analyze['reference']}' with; "
                          f"groups: {', '.join(groups)} (set analyze.groups)")
    return {g: list(names) for g, names in groups.items()}


def out_dir(config: dict[str, Any]) -> Path:
    if config["analyze"].get("out_dir"):
        return Path(config["analyze"]["out_dir"])
    return Path(config["runs_dir"]) / "analysis" / config["model"]["name"] / config["suite"]["name"]


def file_stem(command: str, config: dict[str, Any]) -> str:
    from core.hashing import canonical_hash

    keyed = {k: config[k] for k in ("model", "method", "suite", "seed", "analyze")}
    return f"{command}-seed{config['seed']}-{canonical_hash(keyed, 12)}"


class Session:
    """The loaded model, its tasks and input sets, and the K-FAC method: what both commands use."""

    def __init__(self, config: dict[str, Any]) -> None:
        from harness.pipeline import build_tasks, parse_suite
        from methods.base import build_method
        from methods.kfac import KFAC
        from models import load_model

        self.config = config
        method = build_method(config["method"])  # settings checked before the model loads
        if not isinstance(method, KFAC):
            raise ConfigError(f"analyze reads K-FAC curvature: method '{config['method']['name']}' is not a K-FAC "
                              "method; use method=kfac (or kfac_olmo2_7b, kfac_vit, ...)")
        self.method = method
        self.suite = parse_suite(config["suite"])
        self.groups = check_analyze(config["analyze"], self.suite)
        self.loaded = load_model(config["model"], config["device"], Path(config["cache_dir"]))
        self.tasks = build_tasks(self.suite, self.loaded)

    def input_sets(self, names: list[str]) -> tuple[dict[str, Any], list[str]]:
        from analysis.inputs import suite_input_sets

        a = self.config["analyze"]
        dtype = next(self.loaded.model.parameters()).dtype
        return suite_input_sets({n: self.tasks[n] for n in names}, self.suite, self.loaded.tokenizer,
                                self.loaded.kind, seq_len=a["seq_len"], max_tokens=a["general_tokens"],
                                image_limit=a.get("images"), seed=self.config["seed"], dtype=dtype)

    def bases(self, method: Any, layers: list[int] | None) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(bases, modules, factor report) of the analysed matrices under `method`."""
        from analysis.collect import matrix_bases, method_for_layers
        from harness.pipeline import build_method_context

        chosen, names = method_for_layers(method, self.loaded.model, layers)
        ctx = build_method_context(chosen, self.loaded, self.config, None)
        bases, report = matrix_bases(chosen, self.loaded.model, names, ctx)
        modules = {n: m for n, (m, _) in chosen.targets(self.loaded.model).items() if n in bases}
        return bases, modules, report


def input_key(entry: dict[str, Any], data: str) -> tuple:
    """Task instances with equal keys read the same inputs (analysis/inputs.py)."""
    if entry["task"] in ("verbatim", "perturbed_recall"):
        return ("suffix", data, entry.get("limit"))
    if entry["task"] in ("perplexity", "ndcg10"):
        return ("text", data)
    return (entry["task"], data, repr(sorted((k, v) for k, v in entry.items() if k not in ("family", "primary"))))


def sums_by_instance(session: Session, bases: dict[str, Any], modules: dict[str, Any],
                     masks: dict[str, dict[str, Any]], sets: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Instance -> module -> (sums, counts); instances reading the same data are computed once."""
    from analysis.collect import band_sums

    done: dict[tuple, dict[str, Any]] = {}
    out = {}
    for name, inputs in sets.items():
        key = input_key(session.suite[name], str(getattr(session.tasks[name][0], "data", name)))
        if key not in done:
            done[key] = band_sums(session.loaded.model, modules, bases, masks, inputs,
                                  session.config["analyze"]["batch_size"], session.loaded.device)
        out[name] = done[key]
    return out


def pool(per_instance: dict[str, dict[str, Any]], names: list[str], module: str) -> tuple[Any, Any]:
    import torch

    return (torch.cat([per_instance[n][module][0] for n in names]),
            torch.cat([per_instance[n][module][1] for n in names]))


# ---------------------------------------------------------------------------------------------
# spectrum
# ---------------------------------------------------------------------------------------------

def spectrum(config: dict[str, Any]) -> dict[str, Any]:
    import torch

    from analysis.bands import band_masses, bootstrap_ratios
    from analysis.collect import spectrum_masks
    from core.measures import percentile_interval
    from core.runrecord import now

    session = Session(config)
    a = config["analyze"]
    bases, modules, factor_report = session.bases(session.method, a.get("layers"))
    masks = {n: spectrum_masks(b) for n, b in bases.items()}
    band_names = list(next(iter(masks.values())))
    wanted = sorted({n for names in session.groups.values() for n in names} | set(session.tasks))
    sets, skipped = session.input_sets(wanted)
    groups = {g: [n for n in names if n in sets] for g, names in session.groups.items()}
    missing = [g for g, names in groups.items() if not names]
    if a["reference"] in missing:
        raise DataError(f"group '{a['reference']}' has no input set this analysis can read (task types: "
                        f"{', '.join(session.suite[n]['task'] for n in session.groups[a['reference']])})")
    groups = {g: names for g, names in groups.items() if names}
    per_instance = sums_by_instance(session, bases, modules, masks, sets)
    reference = a["reference"]
    comparisons = [g for g in groups if g != reference]
    result: dict[str, Any] = {
        "kind": KIND, "command": "spectrum", "format": FORMAT, "created": now(),
        "config": {k: config[k] for k in ("model", "method", "suite", "seed", "analyze")},
        "factors": factor_report, "groups": groups, "reference": reference, "bands": band_names,
        "examples": {n: s.examples for n, s in sets.items()}, "skipped_tasks": skipped,
        "matrices": {}, "summary": {},
    }
    replicates: dict[str, list[torch.Tensor]] = {g: [] for g in comparisons}
    points: dict[str, list[torch.Tensor]] = {g: [] for g in comparisons}
    for name, basis in bases.items():
        entry: dict[str, Any] = {
            "layer": basis.layer, "role": basis.role, "rho": basis.rho, "components": int(basis.C.numel()),
            "band_mass": band_masses(basis.lam, basis.mu, {b: m for b, m in masks[name].items() if b != "all"}),
            "removed_components": int(basis.removed.sum()),
            "mean_norm": {}, "ratios": {}, "removed_share": {},
        }
        for inst in sets:
            sums, counts = per_instance[inst][name]
            mean = sums.sum(0) / counts.sum()
            entry["mean_norm"][inst] = dict(zip(band_names, mean.tolist()))
            entry["removed_share"][inst] = float(mean[band_names.index("removed")] / mean[band_names.index("all")])
        for g in [reference, *comparisons]:
            sums, counts = pool(per_instance, groups[g], name)
            entry["mean_norm"][f"group:{g}"] = dict(zip(band_names, (sums.sum(0) / counts.sum()).tolist()))
        ref_sums, ref_counts = pool(per_instance, groups[reference], name)
        for g in comparisons:
            sums, counts = pool(per_instance, groups[g], name)
            ratio, reps = bootstrap_ratios(ref_sums, ref_counts, sums, counts, a["resamples"], config["seed"])
            lo, hi = percentile_interval(reps.cpu().numpy(), a["level"])
            entry["ratios"][f"{reference}/{g}"] = {
                b: {"ratio": float(ratio[i]), "lo": float(lo[i]), "hi": float(hi[i])} for i, b in enumerate(band_names)}
            points[g].append(ratio)
            replicates[g].append(reps)
        result["matrices"][name] = entry
    # Over all analysed matrices: the mean of their ratios, with the interval of that mean over the
    # replicates. Every matrix uses the same seed, hence the same resampled examples in replicate r,
    # so the matrices' correlation (they see the same inputs) is kept, not averaged away.
    for g in comparisons:
        ratio = torch.stack(points[g]).mean(0)
        lo, hi = percentile_interval(torch.stack(replicates[g]).mean(0).cpu().numpy(), a["level"])
        result["summary"][f"{reference}/{g}"] = {
            b: {"ratio": float(ratio[i]), "lo": float(lo[i]), "hi": float(hi[i])} for i, b in enumerate(band_names)}
    write_outputs("spectrum", config, result)
    return result


# ---------------------------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------------------------

def finished_runs(config: dict[str, Any]) -> list[tuple[Path, dict[str, Any]]]:
    """Complete run files of this model (same model settings), suite, seed and method name."""
    from core.io import read_json

    folder = Path(config["runs_dir"]) / config["model"]["name"] / config["suite"]["name"] / config["method"]["name"]
    runs = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        run = read_json(path)
        if (run and run.get("status") == "complete" and run["config"]["model"] == config["model"]
                and run["config"]["suite"] == config["suite"] and run["config"]["seed"] == config["seed"]):
            runs.append((path, run))
    return runs


def predict(config: dict[str, Any]) -> dict[str, Any]:
    from analysis.collect import spectrum_masks
    from analysis.predict import family_drops, removed_share, spearman
    from core.families import family_goal
    from core.runrecord import now
    from methods.base import build_method

    runs = finished_runs(config)
    if not runs:
        raise DataError(
            f"no finished {config['method']['name']} run of model {config['model']['name']} (these model settings), "
            f"suite {config['suite']['name']}, seed {config['seed']} under {config['runs_dir']}; run one first: "
            f"python -m harness suite={config['suite']['name']} method={config['method']['name']} runs_dir={config['runs_dir']} ...")
    session = Session(config)
    families = {n: f for n, (_, f) in session.tasks.items()}
    sets, skipped = session.input_sets(list(session.tasks))
    result: dict[str, Any] = {
        "kind": KIND, "command": "predict", "format": FORMAT, "created": now(),
        "config": {k: config[k] for k in ("model", "method", "suite", "seed", "analyze")},
        "examples": {n: s.examples for n, s in sets.items()}, "skipped_tasks": skipped, "runs": [],
    }
    for path, run in runs:
        method = build_method(run["config"]["method"])
        bases, modules, _ = session.bases(method, config["analyze"].get("layers"))
        masks = {n: {b: m for b, m in spectrum_masks(basis).items() if b in ("removed", "all")} for n, basis in bases.items()}
        per_instance = sums_by_instance(session, bases, modules, masks, sets)
        drops = family_drops(run, {t: f for t, f in families.items() if t in sets})
        shares = {}
        for family in drops:
            names = [t for t in sets if families[t] == family]
            per_matrix = []
            for name in bases:
                sums, counts = pool(per_instance, names, name)
                total = sums.sum(0) / counts.sum()
                per_matrix.append(removed_share(float(total[0]), float(total[1])))
            shares[family] = sum(per_matrix) / len(per_matrix)
        ordered = sorted(drops)
        rho_s, p, n = spearman([shares[f] for f in ordered], [drops[f] for f in ordered])
        skills = [f for f in ordered if family_goal(f) == "keep"]  # the paper's downstream tasks
        rho_k, p_k, n_k = spearman([shares[f] for f in skills], [drops[f] for f in skills])
        removed = sum(int(b.removed.sum()) for b in bases.values())
        total = sum(int(b.removed.numel()) for b in bases.values())
        result["runs"].append({
            "run_file": str(path), "method": run["config"]["method"], "rho": run["config"]["method"].get("rho"),
            "components_removed_share": removed / total if total else 0.0,
            "families": {f: {"removed_share": shares[f], "drop": drops[f]} for f in ordered},
            "spearman": {"rho": rho_s, "p": p, "n": n},
            "spearman_skills": {"rho": rho_k, "p": p_k, "n": n_k, "families": skills}})
    xs = [fam["removed_share"] for r in result["runs"] for fam in r["families"].values()]
    ys = [fam["drop"] for r in result["runs"] for fam in r["families"].values()]
    rho_s, p, n = spearman(xs, ys)
    result["spearman_all_runs"] = {"rho": rho_s, "p": p, "n": n}
    write_outputs("predict", config, result)
    return result


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------

def write_outputs(command: str, config: dict[str, Any], result: dict[str, Any]) -> dict[str, Path]:
    from analysis import report
    from core.io import atomic_path, atomic_write_json, atomic_write_text

    folder = out_dir(config)
    stem = file_stem(command, config)
    paths = {"json": folder / f"{stem}.json", "md": folder / f"{stem}.md"}
    markdown = report.spectrum_markdown(result) if command == "spectrum" else report.predict_markdown(result)
    pngs = report.spectrum_pngs(result) if command == "spectrum" else report.predict_pngs(result)
    for suffix, png in pngs.items():
        paths[suffix] = folder / f"{stem}-{suffix}.png"
        with atomic_path(paths[suffix]) as temp:
            temp.write_bytes(png)
    result["outputs"] = {k: str(v) for k, v in paths.items()}
    atomic_write_text(paths["md"], markdown)
    atomic_write_json(paths["json"], result)
    return paths


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m studies.analyze {{{'|'.join(COMMANDS)}}} [overrides ...]\n"
              "  e.g. python -m studies.analyze spectrum model=organism analyze.layers=[3]", file=sys.stderr)
        return 2
    command, overrides = argv[0], argv[1:]
    debug = any(o == "debug=true" for o in overrides)
    try:
        config = compose_config(overrides)
        debug = bool(config.get("debug")) or debug
        result = spectrum(config) if command == "spectrum" else predict(config)
    except HarnessError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(Path(result["outputs"]["md"]).read_text(encoding="utf-8"))
    for path in result["outputs"].values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
