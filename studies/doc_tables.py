"""Every table of numbers in README.md and docs/ is generated here, from committed files: the
shipped organisms' manifests, the published run files (leaderboard/published/runs), the measured
tolerance (tests/regression/tolerance.json) and the run files of the docs' own studies
(docs/runs/). A table sits between two markers in the Markdown:

    <!-- table: NAME -->
    ...generated...
    <!-- end table -->

    python -m studies.doc_tables            # rewrite every block in README.md and docs/*.md
    python -m studies.doc_tables --check    # exit 1 naming each block that differs (CI: tests/studies)

A new table is one function in TABLES. Numbers are rounded as printed here, so the same files give
the same bytes on any machine.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.buildcache import CONF_DIR

if TYPE_CHECKING:
    import pandas

REPO = CONF_DIR.parent
PUBLISHED_RUNS = REPO / "leaderboard" / "published" / "runs"
HEADLINE_CSV = REPO / "leaderboard" / "published" / "headline.csv"
TOLERANCE = REPO / "tests" / "regression" / "tolerance.json"
STUDY_RUNS = REPO / "docs" / "runs"
SEEDS = (0, 1, 2)
BLOCK = re.compile(r"(<!-- table: ([\w-]+) -->\n)(.*?)(<!-- end table -->)", re.S)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _manifests() -> dict[int, dict[str, Any]]:
    from models.organism import SHIPPED_DIR

    return {s: json.loads((SHIPPED_DIR / f"seed{s}" / "manifest.json").read_text(encoding="utf-8")) for s in SEEDS}


def organism_checks() -> str:
    """The check targets on the stored weights of each shipped seed."""
    from models.organism.measure import TARGETS, meets

    manifests = _manifests()
    rows = []
    for name, target in TARGETS.items():
        op, bound = target.goal
        values = [manifests[s]["stored_checks"].get(name) for s in SEEDS]
        met = all(v is not None and meets(name, v) for v in values) if bound else "-"
        rows.append([name, *values, f"{op} {bound:.2f}" if bound else "report only",
                     {True: "yes", False: "**NO**"}.get(met, met) if bound else "-"])
    return _table(["check", *(f"seed {s}" for s in SEEDS), "goal", "met on every seed"], rows)


def organism_builds() -> str:
    """What each shipped build is: digests, size, corpus, training."""
    from models.organism import SHIPPED_DIR

    rows = []
    for s, m in _manifests().items():
        sums = (SHIPPED_DIR / f"seed{s}" / "SHA256SUMS").read_text(encoding="utf-8")
        weights = next(line.split()[0] for line in sums.splitlines() if line.endswith("model/model.safetensors"))
        rows.append([s, m["settings_hash"][:12], weights[:12], f"{m['parameters'] / 1e6:.2f} M", m["vocab_size"],
                     f"{m['train_tokens'] / 1e6:.2f} M", f"{100 * m['token_shares']['planted']:.1f} %",
                     m["precision"], m["threads"], f"{m['build_seconds'] / 60:.1f} min", m["storage"]])
    return _table(["seed", "settings", "weights sha256", "parameters", "vocabulary", "training tokens", "planted share",
                   "precision", "threads", "build", "stored as"], rows)


TARGET_RUNS = STUDY_RUNS / "organism_targets"
SEED1_EXTENSION = TARGET_RUNS / "extension-seed1-rebuild.json"
EDGE_CHECKS = (  # the checks that sit near a target on some build, and the facts a design change costs
    "booleans", "copy", "arithmetic", "closed_common", "closed_rare", "math_facts")


def _four_layer_manifest(seed: int) -> dict[str, Any]:
    """The manifest of the 4-layer organism shipped before the six-layer design (kept for the record)."""
    return json.loads((TARGET_RUNS / f"shipped-4layer-seed{seed}-manifest.json").read_text(encoding="utf-8"))


def seed1_builds() -> str:
    """Seed 1's shipped build, a rebuild of the same settings in float32, and that rebuild trained
    on at the floor learning rate (benchmarks/organism_extension.py's file): the checks near a
    target, and which targets each misses."""
    shipped = _four_layer_manifest(1)
    study = json.loads(SEED1_EXTENSION.read_text(encoding="utf-8"))
    build = study["build"]

    def row(label: str, checks: dict[str, float]) -> list[Any]:
        return [label, *(checks.get(n) for n in EDGE_CHECKS), _missed(checks)]

    rows = [row(f"4-layer shipped: {shipped['precision']}, as stored", shipped["stored_checks"])]
    for point in study["points"]:
        extra = point["extra_steps"]
        rows.append(row(f"rebuild: {build['precision']}" + (f", + {extra} steps" if extra else ""), point["checks"]))
    return _table(["build", *EDGE_CHECKS, "targets missed"], rows)


def _missed(checks: dict[str, float]) -> str:
    from models.organism.measure import missed_targets

    return ", ".join(missed_targets(checks)) or "none"


def design_builds() -> str:
    """Builds of a changed organism design (their manifests, copied into docs/runs/organism_targets/):
    what changed, how it was trained, and the checks."""
    rows = []
    for path in sorted(TARGET_RUNS.glob("design-*-manifest.json")):
        design = json.loads(path.read_text(encoding="utf-8"))
        checks = design["final_checks"]
        seed = design["settings"]["seed"]
        changed = _changed_settings(design["settings"], _four_layer_manifest(seed)["settings"])
        rows.append([seed, ", ".join(changed), design["precision"],
                     design["threads"], f"{design['build_seconds'] / 60:.1f} min", f"{design['parameters'] / 1e6:.2f} M",
                     *(checks.get(n) for n in EDGE_CHECKS), _missed(checks)])
    return _table(["seed", "changed settings", "precision", "threads", "build", "parameters", *EDGE_CHECKS,
                   "targets missed"], rows)


def _changed_settings(settings: dict[str, Any], before: dict[str, Any]) -> list[str]:
    """`block.key=value` for each organism setting that differs from `before` (seed aside)."""
    from leaderboard.aggregate import flatten

    old = flatten(before)
    return [f"{k}={v}" for k, v in flatten(settings).items() if k != "seed" and old.get(k) != v]


def organism_errors() -> str:
    """Copy by length and booleans by what decides them (benchmarks/organism_errors.py's files):
    the 4-layer shipped seeds first, then the other builds (each named by its file)."""
    runs = sorted(TARGET_RUNS.glob("errors-*.json"), key=lambda p: ("shipped" not in p.name, "design" in p.name, p.name))
    rows = []
    for path in runs:
        run = json.loads(path.read_text(encoding="utf-8"))
        label = f"{path.stem.removeprefix('errors-')}, {run['precision']}"
        copy, logic = run["copy_by_length"], run["booleans"]
        rows.append([label, *(f"{copy[n][0]}/{copy[n][1]}" for n in sorted(copy, key=int)),
                     *(f"{logic[k][0]}/{logic[k][1]}" for k in ("last operand decides", "the rest decides"))])
    lengths = sorted(json.loads(runs[0].read_text(encoding="utf-8"))["copy_by_length"], key=int)
    return _table(["build", *(f"copy, {n} symbols" for n in lengths), "booleans, last operand decides",
                   "booleans, the rest decides"], rows)


def vit_organisms() -> str:
    """The shipped ViT organisms on their stored weights."""
    from models.vit.organism import SHIPPED_DIR

    rows = []
    for seed in [s for s in SEEDS if (SHIPPED_DIR / f"seed{s}" / "manifest.json").is_file()]:
        m = json.loads((SHIPPED_DIR / f"seed{seed}" / "manifest.json").read_text(encoding="utf-8"))
        c = m["stored_checks"]
        rows.append([seed, m["settings_hash"][:12], m["parameters"], c.get("memorized"), c.get("gt_recovery"),
                     c.get("clean_train_accuracy"), c.get("heldout_accuracy"), f"{m['build_seconds']:.0f} s"])
    return _table(["seed", "settings", "parameters", "memorized (noise label)", "gt_recovery", "clean train accuracy",
                   "held-out accuracy", "build"], rows)


@functools.cache
def _published() -> "pandas.DataFrame":
    """The published runs' long table, read once per process (several tables use it)."""
    from leaderboard import load_runs

    return load_runs(PUBLISHED_RUNS)


def unedited_families() -> str:
    """Every task of organism_full on the unedited shipped organisms (the `none` runs)."""
    long = _published()
    none = long[(long.method == "none") & (long.suite == "organism_full") & long.primary]
    rows = []
    for task, g in none.groupby("task", sort=False):
        by_seed = {int(r.seed): r.baseline for r in g.itertuples()}
        rows.append([g.family.iloc[0], task, g.metric.iloc[0], int(g.n.iloc[0]), *(by_seed.get(s) for s in SEEDS)])
    return _table(["family", "task", "metric", "n", *(f"seed {s}" for s in SEEDS)], rows)


def _interval(row: Any, tag: str) -> str:
    mem, low, high = row[f"memorization_{tag}"], row[f"memorization_ci_low_{tag}"], row[f"memorization_ci_high_{tag}"]
    if mem != mem:
        return "–"
    return f"{mem:.1f} [{low:.1f}, {high:.1f}]" if low == low else f"{mem:.1f}"


def _headline_rows(frame: "pandas.DataFrame") -> str:
    rows = []
    for r in frame.sort_values("rank").to_dict("records"):
        rows.append([r["rank"], r["method"], r["data_needed"],
                     r["variant_95"] if isinstance(r["variant_95"], str) else "–", _interval(r, "95"),
                     r["variant_90"] if isinstance(r["variant_90"], str) else "–", _interval(r, "90"),
                     f"{r['area']:.1f}"])
    return _table(["rank", "method", "data it needs", "setting at ≥ 95 % utility", "memorization kept, % [95 % CI]",
                   "setting at ≥ 90 % utility", "memorization kept, % [95 % CI]", "area"], rows)


def headline(suite: str) -> Callable[[], str]:
    def table() -> str:
        """The published headline (leaderboard/published/headline.csv, itself generated from the runs)."""
        import pandas as pd

        frame = pd.read_csv(HEADLINE_CSV)
        return _headline_rows(frame[frame.suite == suite])
    return table


def rho_sweep(method: str) -> Callable[[], str]:
    """A curvature method's trade-off by rho (K-FAC; random ablation, which removes as many
    components at random): % of the unedited score kept, mean ± std over the shipped seeds."""
    def table() -> str:
        long = _published()
        runs = long[(long.method == method) & (long.suite == "organism_full") & long.primary]
        tasks = ["verbatim_forget", "verbatim_test", "quotes", "logic", "copy", "qa_open", "facts_common",
                 "facts_rare", "arithmetic", "math_facts", "perplexity", "membership_test"]
        rows = []
        for rho, g in sorted(runs.groupby("rho"), key=lambda item: item[0]):
            cells = []
            for task in tasks:
                values = g[g.task == task].pct_kept.dropna()
                cells.append("–" if values.empty else f"{values.mean():.0f} ± {values.std(ddof=1):.0f}"
                             if len(values) > 1 else f"{values.mean():.0f}")
            rows.append([f"{rho:g}", int(g.seed.nunique()), *cells])
        return _table(["rho", "seeds", *tasks], rows)
    return table


def claims() -> str:
    """The regression runs' claim numbers per shipped seed (tests/regression/reference.json)."""
    from studies.organism_claims import SCORED, SKILLS
    from studies.reference import REFERENCE_FILE, read_reference

    from core.measures import share_kept

    def kept(numbers: dict[str, Any], task: str, lower_is_better: bool = False) -> str:
        share = share_kept(numbers[task]["edited"], numbers[task]["baseline"], not lower_is_better)
        return "–" if share is None else f"{100 * share:.1f}"

    rows = []
    for entry in read_reference(REFERENCE_FILE):
        kf, ra = entry["runs"]["kfac"], entry["runs"]["random_ablation"]
        rows.append([entry["organism"]["seed"], kept(kf, SCORED), *(kept(kf, t) for t in SKILLS),
                     kept(kf, "perplexity", lower_is_better=True),
                     " / ".join(kept(ra, t) for t in SKILLS)])
    return _table(["seed", f"K-FAC {SCORED} kept", *(f"K-FAC {t} kept" for t in SKILLS), "K-FAC perplexity kept",
                   f"random ablation {' / '.join(SKILLS)} kept"], rows)


def kfac_findings() -> str:
    """K-FAC at its organism default (rho 0.99) per seed, from the published runs: computed vs stored
    arithmetic and rare vs common facts, % kept with paired bootstrap 95 % intervals."""
    from studies.organism_claims import findings

    rows = []
    for path in sorted(PUBLISHED_RUNS.glob("organism/organism_full/kfac/*.json")):
        run = json.loads(path.read_text(encoding="utf-8"))
        if run.get("status") == "complete" and run["config"]["method"].get("rho") == 0.99:
            rows += [[run["identity"]["seed"], *line.split(": ", 1)] for line in findings(run)]
    rows.sort(key=lambda r: r[0])
    return _table(["seed", "what", "unedited → edited (n), % kept [95 % CI]"], rows)


def tolerance() -> str:
    """The measured evaluation differences and the tolerance CI uses (tests/regression/tolerance.json)."""
    data = json.loads(TOLERANCE.read_text(encoding="utf-8"))
    rows = [[*key.split("/", 1), t["kind"], t["n"], _fmt(t["largest_difference"], 4), _fmt(t["tolerance"], 4)]
            for key, t in sorted(data["tasks"].items())]
    return _table(["run", "task", "metric kind", "n", "largest difference measured", "tolerance"], rows)


def membership_after_removal() -> str:
    """For each method's setting at ≥ 90 % utility: test recall kept and the membership signal left."""
    import pandas as pd

    long = _published()
    head = pd.read_csv(HEADLINE_CSV)
    head = head[head.suite == "organism_full"].sort_values("rank")
    rows = []
    full = long[long.suite == "organism_full"]
    base = full[(full.method == "none") & (full.task == "membership_test")]
    for metric in ("auc_min_k", "auc_loss", "extraction_strength"):
        b = base[base.metric == metric].baseline
        rows.append(["unedited", "–", metric, f"{b.mean():.3f}", "–"])
    for r in head.to_dict("records"):
        variant = r["variant_90"]
        if not isinstance(variant, str):
            continue
        runs = full[(full.method == r["method"]) & (full.variant == variant)]
        for metric in ("auc_min_k", "auc_loss", "extraction_strength"):
            m = runs[(runs.task == "membership_test") & (runs.metric == metric)]
            rows.append([r["method"], variant, metric, f"{m.edited.mean():.3f}",
                         f"{_interval(r, '90')} % kept" if metric == "auc_min_k" else "–"])
    return _table(["method", "setting (≥ 90 % utility)", "membership metric (test vs controls)",
                   "mean over seeds", "test recall kept"], rows)


def membership_cost() -> str:
    """Seconds of the membership task against the whole organism_full evaluation, from the published runs."""
    rows = []
    for path in sorted(PUBLISHED_RUNS.glob("organism/organism_full/*/*.json")):
        run = json.loads(path.read_text(encoding="utf-8"))
        for role in ("baseline", "edited"):
            tasks = run[role]["tasks"]
            if "membership_test" in tasks and all("seconds" in t for t in tasks.values()):
                rows.append((tasks["membership_test"]["seconds"], sum(t["seconds"] for t in tasks.values())))
    if not rows:
        return _table(["evaluations", "membership seconds", "all tasks seconds", "added by membership"], [])
    member, total = sum(r[0] for r in rows), sum(r[1] for r in rows)
    return _table(["evaluations", "membership seconds (total)", "all tasks seconds (total)",
                   "added by membership"], [[len(rows), f"{member:.0f}", f"{total:.0f}",
                                             f"{100 * member / (total - member):.1f} %"]])


def smollm2_skills() -> str:
    """SmolLM2-135M's unedited skills, from the committed run file of `suite=smollm2`."""
    [path] = sorted((STUDY_RUNS / "smollm2").glob("*.json"))
    tasks = json.loads(path.read_text(encoding="utf-8"))["baseline"]["tasks"]
    rows = [[name, t["family"], t["primary"], t["n"], t["metrics"][t["primary"]]] for name, t in tasks.items()]
    return _table(["task", "family", "metric", "n", "unedited SmolLM2"], rows)


SMOLLM2_RUNS = STUDY_RUNS / "smollm2_planted"
# The columns of the SmolLM2 method table: (task, its label).
SMOLLM2_COLUMNS = [("verbatim_forget", "forget"), ("verbatim_tune", "tune"), ("verbatim_test", "test"),
                   ("perplexity_text", "prose ppl"), ("perplexity_code", "code ppl"),
                   ("perplexity_licences", "licence ppl"), ("capitals", "capitals"), ("arithmetic", "arithmetic"),
                   ("copy", "copy"), ("two_way", "two-way"), ("ndcg10", "nDCG@10")]


def smollm2_planted_build() -> str:
    """The shipped planted SmolLM2: each check before planting and on the stored adapter."""
    from models.smollm2.planted import SHIPPED_DIR

    manifest = json.loads((SHIPPED_DIR / "seed0" / "manifest.json").read_text(encoding="utf-8"))
    before, stored = manifest["before"], manifest["stored_checks"]
    rows = [[name, before[name], stored[name]] for name in before]
    rows.append(["held-out prose perplexity, after / before (target ≤ 1.1)", "1", f"{stored['heldout_ppl_ratio']:.4f}"])
    return _table(["check", "SmolLM2 (before)", "planted (stored adapter)"], rows)


@functools.cache
def _smollm2_runs() -> tuple["pandas.DataFrame", "pandas.DataFrame"]:
    """(long table, headline) of the SmolLM2 study's run files (docs/runs/smollm2_planted)."""
    from leaderboard import aggregate, headline as board
    from leaderboard.collect import collect

    runs, _ = collect([SMOLLM2_RUNS])
    long = aggregate.long_table(runs)
    return long, board.headline_table(long, aggregate.run_table(runs))


def smollm2_planted_headline() -> str:
    """The leaderboard's headline over the SmolLM2 study's runs (one seed: one planted build)."""
    return _headline_rows(_smollm2_runs()[1])


def smollm2_planted_methods() -> str:
    """Every SmolLM2 run: % of the unedited model's score kept per task, plus the controls' recall and
    the membership AUC (test passages vs never-trained controls) after the edit."""
    from leaderboard import headline as board

    long = _smollm2_runs()[0]
    prim = long[long.primary]
    scores = board.run_scores(long).set_index("variant")
    rows = []
    for variant, run in prim.groupby("variant", sort=False):
        kept = dict(zip(run.task, run.pct_kept))
        edited = dict(zip(run.task, run.edited))
        cells = ["–" if kept.get(task) != kept.get(task) else f"{kept[task]:.0f}" for task, _ in SMOLLM2_COLUMNS]
        rows.append([variant, f"{scores.loc[variant, 'utility']:.1f}", *cells, edited.get("verbatim_control"),
                     edited.get("membership_test")])
    return _table(["run", "utility", *(label for _, label in SMOLLM2_COLUMNS), "control recall", "membership AUC"], rows)


def smollm2_spectrum() -> str:
    """The spectrum analysis on the planted SmolLM2 (analysis.summary's table over its result files)."""
    from analysis.summary import results, spectrum_table

    return spectrum_table(results([SMOLLM2_RUNS], "spectrum")) + "\n"


VOCABULARY_RUNS = STUDY_RUNS / "vocabulary"
VOCABULARY_TASKS = ("verbatim_forget", "verbatim_tune", "verbatim_test", "verbatim_control")


def vocabulary_study() -> str:
    """Gradient ascent on the forget split of organisms whose splits share one rare vocabulary (the
    v2 design) or draw each from its own (v3): strict recall of each split before -> after
    (benchmarks/vocabulary_study.sh's run files)."""
    rows = []
    for path in sorted(VOCABULARY_RUNS.rglob("*.json")):
        if "baselines" in path.parts:
            continue
        run = json.loads(path.read_text(encoding="utf-8"))
        if run.get("status") != "complete":
            continue
        config = run["config"]
        cells = []
        for task in VOCABULARY_TASKS:
            base, edited = run["baseline"]["tasks"][task], run["edited"]["tasks"][task]
            cells.append(f"{base['metrics'][base['primary']]:.2f} → {edited['metrics'][edited['primary']]:.2f}")
        rows.append((config["model"]["organism"]["planted"]["vocabulary"], float(config["method"]["lr"]), cells))
    rows.sort(key=lambda r: (r[0] != "shared", r[1]))
    return _table(["vocabulary", "lr", *(f"{t} recall" for t in VOCABULARY_TASKS)],
                  [[vocabulary, f"{lr:g}", *cells] for vocabulary, lr, cells in rows])


ATTACKS_CSV = REPO / "leaderboard" / "published" / "attacks.csv"


def _published_analysis(command: str) -> list[dict[str, Any]]:
    """The `studies.analyze <command>` result files beside the published runs (bash
    benchmarks/organism_analysis.sh: the shipped LM and ViT organisms)."""
    from analysis.summary import results

    return results([PUBLISHED_RUNS], command)


def organism_attacks() -> str:
    """Recall after each attack on the shipped organisms (attacks.tables over the published
    leaderboard's attacks.csv, which `make leaderboard` writes from the attack run files)."""
    from attacks.tables import tables

    return tables(str(ATTACKS_CSV))


def organism_spectrum() -> str:
    """The spectrum analysis on the shipped LM and ViT organisms (analysis.summary's table)."""
    from analysis.summary import spectrum_table

    return spectrum_table(_published_analysis("spectrum")) + "\n"


def organism_predict() -> str:
    """Does a family's use of the removed components predict its drop? (analysis.summary's table over
    the published K-FAC runs of the shipped organisms.)"""
    from analysis.summary import predict_table

    return predict_table(_published_analysis("predict")) + "\n"


VIT_STUDY_RUNS = STUDY_RUNS / "vit_study"


def _vit_scores(result: dict[str, Any]) -> dict[str, float]:
    """The four ViT organism numbers of a run's `baseline` or `edited` block."""
    tasks = result["tasks"]
    return {"memorized": tasks["memorized"]["metrics"]["memorized"],
            "gt_recovery": tasks["gt_recovery"]["metrics"]["gt_recovery"],
            "heldout": tasks["accuracy"]["metrics"]["accuracy"],
            "clean_train": tasks["clean_train"]["metrics"]["accuracy"]}


def _vit_key(rho: float, seed: int, labels: str = "sampled", tokens: str = "cls", images: str = "all",
             layers: str = "null", matrices: str = "up+down") -> tuple[Any, ...]:
    """A ViT study setting and seed; the defaults are `kfac_vit`'s (layers as JSON, matrices joined by +)."""
    return rho, labels, tokens, images, layers, matrices, seed


@functools.cache
def _vit_study() -> tuple[dict[tuple[Any, ...], dict[str, float]], dict[int, dict[str, float]], frozenset[str]]:
    """benchmarks/vit_study.sh's runs: {_vit_key: edited metrics + share of components kept},
    {seed: unedited metrics} and the machines they ran on."""
    from core.measures import components_kept

    edited, unedited, machines = {}, {}, set()
    for path in sorted(VIT_STUDY_RUNS.rglob("*.json")):
        run = json.loads(path.read_text(encoding="utf-8"))
        if "baselines" in path.parts or run.get("status") != "complete":
            continue
        config, method = run["config"], run["config"]["method"]
        key = _vit_key(method["rho"], config["seed"], method["labels"], config["model"]["statistics"]["tokens"],
                       config["model"]["statistics"]["images"], json.dumps(method["layers"]), "+".join(method["matrices"]))
        edited[key] = {**_vit_scores(run["edited"]), "kept": components_kept(run["method"]["report"]["changed"])}
        unedited[config["seed"]] = _vit_scores(run["baseline"])
        machines.add(run["environment"]["device_name"])
    return edited, unedited, frozenset(machines)


def vit_study_reproduced() -> str:
    """The study's default-setting runs against the published leaderboard's runs of the same settings,
    computed on another machine: how many metrics came out identical, and the largest difference."""
    edited, _, study_machines = _vit_study()
    pairs: dict[str, list[tuple[float, float]]] = {}
    machines = set()
    for path in sorted((PUBLISHED_RUNS / "vit_organism" / "mislabeled" / "kfac_vit").glob("*.json")):
        run = json.loads(path.read_text(encoding="utf-8"))
        study = edited.get(_vit_key(run["config"]["method"]["rho"], run["config"]["seed"]))
        if study is None:
            continue
        machines.add(run["environment"]["device_name"])
        for name, value in _vit_scores(run["edited"]).items():
            pairs.setdefault(name, []).append((value, study[name]))
    rows = [[name, len(values), sum(a == b for a, b in values), max(abs(a - b) for a, b in values)]
            for name, values in pairs.items()]
    return (_table(["metric", "runs compared", "identical", "largest difference"], rows)
            + f"\nPublished runs: {', '.join(sorted(machines))}; study runs: {', '.join(sorted(study_machines))}.\n")


def _vit_mean(rho: float, metric: str, **setting: str) -> float | None:
    """A metric of one ViT study setting (_vit_key's keywords), averaged over the seeds (None unless
    every seed ran)."""
    edited = _vit_study()[0]
    values = [edited.get(_vit_key(rho, s, **setting), {}).get(metric) for s in SEEDS]
    return None if None in values else sum(values) / len(values)  # type: ignore[arg-type]


VIT_RHOS = (0.9, 0.95, 0.97, 0.98, 0.985, 0.99, 0.993, 0.995, 0.999)


def vit_study_rho() -> str:
    """K-FAC on the shipped ViT organisms by rho, true (sampled labels) vs empirical Fisher; means over
    seeds 0-2 (benchmarks/vit_study.sh)."""
    edited, unedited, _ = _vit_study()
    base = {m: sum(unedited[s][m] for s in SEEDS) / len(SEEDS) for m in ("memorized", "heldout", "clean_train", "gt_recovery")}
    first = ["unedited", *base.values(), " / ".join(_fmt(unedited[s]["memorized"], 2) for s in SEEDS), "100 %",
             base["memorized"], base["heldout"], base["clean_train"]]
    per_seed = {rho: " / ".join(_fmt(edited.get(_vit_key(rho, s), {}).get("memorized"), 2)
                                for s in SEEDS) for rho in VIT_RHOS}
    rows = [[rho, *(_vit_mean(rho, m) for m in ("memorized", "heldout", "clean_train", "gt_recovery")),
             per_seed[rho],
             f"{100 * _vit_mean(rho, 'kept'):.2f} %",
             *(_vit_mean(rho, m, labels="empirical") for m in ("memorized", "heldout", "clean_train"))]
            for rho in VIT_RHOS]
    return _table(["ρ", "memorized", "held-out", "clean train", "gt_recovery", "memorized, seeds 0 / 1 / 2",
                   "components kept", "empirical: memorized", "held-out", "clean train"],
                  [first, *rows])


def vit_study_statistics() -> str:
    """Which tokens and images K-FAC's statistics come from (memorized / held-out, means over seeds 0-2)."""
    combos = [(t, i) for t in ("cls", "all") for i in ("all", "clean")]
    rows = [[rho, *(f"{_fmt(_vit_mean(rho, 'memorized', tokens=t, images=i))} / "
                    f"{_fmt(_vit_mean(rho, 'heldout', tokens=t, images=i))}" for t, i in combos)]
            for rho in (0.9, 0.95, 0.98, 0.99, 0.995)]
    return _table(["ρ", *(f"tokens {t}, images {i}" for t, i in combos)], rows)


def vit_study_matrices() -> str:
    """The up or the down matrices alone, every block, down to rho 0.75, and the paper's ViT-Base
    setting (memorized / held-out, means over seeds 0-2)."""
    matrices = ("up+down", "up", "down")
    rows = [[rho, *(f"{_fmt(_vit_mean(rho, 'memorized', matrices=m))} / {_fmt(_vit_mean(rho, 'heldout', matrices=m))}"
                    for m in matrices)] for rho in (0.75, 0.8, 0.85, 0.9, 0.95, 0.99)]
    paper = f"{_fmt(_vit_mean(0.75, 'memorized', layers='[0, -1]'))} / {_fmt(_vit_mean(0.75, 'heldout', layers='[0, -1]'))}"
    rows.append(["0.75, blocks 0 and 3 (the paper's ViT-Base setting)", paper, "", ""])
    return _table(["ρ", *(m.replace("+", ", ") for m in matrices)], rows)


def vit_study_blocks() -> str:
    """Which blocks and matrices K-FAC edits (memorized / held-out / components kept, means over seeds 0-2)."""
    rows = []
    for layers in ("null", "[0]", "[-1]", "[0, -1]", "[0, 1]", "[2, 3]"):
        for matrices in ("up+down", "up", "down"):
            rows.append(["all" if layers == "null" else layers, matrices.replace("+", ", "),
                         *(f"{_fmt(_vit_mean(rho, 'memorized', layers=layers, matrices=matrices))} / "
                           f"{_fmt(_vit_mean(rho, 'heldout', layers=layers, matrices=matrices))} / "
                           f"{100 * (_vit_mean(rho, 'kept', layers=layers, matrices=matrices) or float('nan')):.2f} %"
                           for rho in (0.95, 0.99))])
    return _table(["blocks", "matrices", "ρ 0.95: memorized / held-out / kept", "ρ 0.99"], rows)


TABLES: dict[str, Callable[[], str]] = {
    "organism-checks": organism_checks,
    "organism-builds": organism_builds,
    "seed1-builds": seed1_builds,
    "design-builds": design_builds,
    "organism-errors": organism_errors,
    "vit-organisms": vit_organisms,
    "unedited-families": unedited_families,
    "headline-organism": headline("organism_full"),
    "headline-vit": headline("mislabeled"),
    "kfac-sweep": rho_sweep("kfac"),
    "random-ablation-sweep": rho_sweep("random_ablation"),
    "tolerance": tolerance,
    "claims": claims,
    "kfac-findings": kfac_findings,
    "membership-after-removal": membership_after_removal,
    "membership-cost": membership_cost,
    "smollm2-skills": smollm2_skills,
    "smollm2-planted-build": smollm2_planted_build,
    "smollm2-planted-headline": smollm2_planted_headline,
    "smollm2-planted-methods": smollm2_planted_methods,
    "smollm2-spectrum": smollm2_spectrum,
    "vocabulary-study": vocabulary_study,
    "organism-attacks": organism_attacks,
    "organism-spectrum": organism_spectrum,
    "organism-predict": organism_predict,
    "vit-study-rho": vit_study_rho,
    "vit-study-statistics": vit_study_statistics,
    "vit-study-blocks": vit_study_blocks,
    "vit-study-matrices": vit_study_matrices,
    "vit-study-reproduced": vit_study_reproduced,
}


def documents() -> list[Path]:
    """The Markdown files whose tables are generated: README.md and docs/*.md (not docs/archive/)."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def regenerate(text: str, cache: dict[str, str]) -> str:
    """`text` with every table block replaced by its table (unknown names: ValueError)."""
    def fill(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in TABLES:
            raise ValueError(f"unknown table '{name}'; known: {', '.join(TABLES)}")
        if name not in cache:
            cache[name] = TABLES[name]()
        return match.group(1) + cache[name] + match.group(4)
    return BLOCK.sub(fill, text)


def stale_blocks(paths: list[Path] | None = None) -> list[str]:
    """'<file>: <table>' for every block whose committed text differs from its regeneration."""
    cache: dict[str, str] = {}
    stale = []
    for path in paths or documents():
        text = path.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            fresh = regenerate(match.group(0), cache)
            if fresh != match.group(0):
                stale.append(f"{path.relative_to(REPO)}: {match.group(2)}")
    return stale


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--check"]:
        stale = stale_blocks()
        for line in stale:
            print(f"stale table {line}; regenerate with: python -m studies.doc_tables")
        return 1 if stale else 0
    if argv:
        print("usage: python -m studies.doc_tables [--check]", file=sys.stderr)
        return 2
    cache: dict[str, str] = {}
    for path in documents():
        text = path.read_text(encoding="utf-8")
        fresh = regenerate(text, cache)
        if fresh != text:
            from core.io import atomic_write_text

            atomic_write_text(path, fresh)
            print(f"rewrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
