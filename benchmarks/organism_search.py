"""Organism design search: build several variants of the organism settings in parallel and table
their checks (docs/organism.md, "How the v2 design was chosen"). Each variant is the default
`organism:` block of conf/model/organism.yaml with dotted overrides; each build runs in its own
process, on `--device` (a GPU builds in about a minute, so a grid fits one device call).

    python benchmarks/organism_search.py --device cuda --jobs 12 --out search.json \\
        "v0" "reversed=arithmetic.answer_digits=reversed" "copy200=copy.symbols=200 copy.examples=20000"

    python benchmarks/organism_search.py --table search.json    # the results as a markdown table

A variant is NAME or NAME=KEY=VALUE [KEY=VALUE ...] (values parsed as YAML; +KEY=VALUE adds a
setting the defaults leave out, as Hydra's "+" does). The builds are not
cached (a scratch folder each) and do not touch the app's cache. Reads the yaml with PyYAML, so it
runs where only torch, transformers and PyYAML are installed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def base_settings() -> dict[str, Any]:
    import yaml

    return yaml.safe_load((ROOT / "conf" / "model" / "organism.yaml").read_text())["organism"]


def apply(settings: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    import yaml

    out = copy.deepcopy(settings)
    for item in overrides:
        # "+KEY=VALUE" adds a setting the defaults leave out (as Hydra's "+").
        adding = item.startswith("+")
        key, _, value = item.removeprefix("+").partition("=")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        if leaf not in node and not adding:
            raise SystemExit(f"organism_search: unknown setting '{key}' (to add one: +{key}=...)")
        node[leaf] = yaml.safe_load(value)
    return out


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, _, rest = text.partition("=")
    return name, rest.split() if rest else []


def build_one(settings: dict[str, Any], out: Path) -> None:
    """Child process: build into a scratch folder, write the manifest's summary to `out`."""
    from models.organism import build_organism

    with tempfile.TemporaryDirectory() as folder:
        build_organism(settings, Path(folder))
        manifest = json.loads((Path(folder) / "manifest.json").read_text())
    keep = ("train_tokens", "token_shares", "parameters", "curve", "final_checks", "train_seconds", "build_seconds")
    out.write_text(json.dumps({k: manifest[k] for k in keep}, indent=1))


def table(results: dict[str, Any]) -> str:
    """Markdown: one row per variant, its overrides, tokens, planted share and final checks."""
    checks = list(next((r["final_checks"] for r in results.values() if "final_checks" in r), {}))
    lines = ["| variant | overrides of the default | tokens | planted share | " + " | ".join(checks) + " |",
             "|---|---|---|---|" + "---|" * len(checks)]
    for name, r in results.items():
        if "final_checks" not in r:
            lines.append(f"| {name} | {' '.join(r['overrides'])} | failed |")
            continue
        cells = [f"{r['final_checks'][c]:.2f}" for c in checks]
        lines.append(f"| {name} | {' '.join(r['overrides']) or '-'} | {r['train_tokens'] / 1e6:.2f} M | "
                     f"{100 * r['token_shares']['planted']:.1f} % | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each build (OMP_NUM_THREADS)")
    parser.add_argument("--out", type=Path, default=Path("organism_search.json"))
    parser.add_argument("--table", action="store_true", help="print the results files named as variants as tables")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.table:
        for path in args.variants:
            print(table(json.loads(Path(path).read_text())) + "\n")
        return
    if args.child:
        build_one(json.loads(args.variants[0]), args.child)
        return
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    pending = []
    for text in args.variants:
        name, overrides = parse_variant(text)
        settings = apply(base_settings(), overrides)
        settings["train"]["device"] = args.device
        pending.append((name, overrides, settings))
    results: dict[str, Any] = {}
    scratch = Path(tempfile.mkdtemp())
    running: list[tuple[str, list[str], subprocess.Popen, Path, float]] = []
    while pending or running:
        while pending and len(running) < args.jobs:
            name, overrides, settings = pending.pop(0)
            out = scratch / f"{name}.json"
            proc = subprocess.Popen([sys.executable, __file__, "--child", str(out), json.dumps(settings)], env=env,
                                    stdout=subprocess.DEVNULL, stderr=open(scratch / f"{name}.log", "w"))
            running.append((name, overrides, proc, out, time.time()))
        time.sleep(2)
        for item in list(running):
            name, overrides, proc, out, started = item
            if proc.poll() is None:
                continue
            running.remove(item)
            if proc.returncode == 0:
                results[name] = {"overrides": overrides, **json.loads(out.read_text())}
            else:
                tail = (scratch / f"{name}.log").read_text()[-2000:]
                results[name] = {"overrides": overrides, "error": tail}
            checks = results[name].get("final_checks", {})
            print(f"{name:>14} {time.time() - started:6.0f}s " + " ".join(f"{k}={v:.2f}" for k, v in checks.items())
                  + ("  FAILED" if proc.returncode else ""), flush=True)
            args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
