"""Does more training at the schedule's floor learning rate lift a built organism over the targets
it missed? (docs/organism.md, "Seed 1 and the copy target")

    python -m models.build organism --seed 1        # a rebuild here, into <cache_dir>/rebuild/organism/<hash>/
    python benchmarks/organism_extension.py .cache/harness/rebuild/organism/<hash> \
        --out docs/runs/organism_seed1/extension.json

Continues training the build's weights (as saved: float32 after a float32 build) on a fresh
shuffle of its own corpus, one AdamW at a constant learning rate of `lr * min_lr_ratio` (where the
cosine schedule ended), in float32, and measures every check target on the full evaluation sets
after each chunk of steps. Writes one JSON file: the build (settings hash, weights digest,
precision, its own final checks) and the checks after each chunk. About 2 min per 400 steps and
check at 2 threads on a 2-core AMD EPYC (the committed file's `seconds`: 4 chunks).
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import torch

SHUFFLE_OFFSET = 1000  # the extension's batch order: the organism seed plus this (not the build's order)


def main() -> None:
    from core.buildcache import file_sha256
    from core.errors import OneLineParser
    from core.io import atomic_write_json
    from core.runrecord import cpu_name
    from models.hf import load_hf_causal_lm
    from models.organism import prepare_data, training_documents
    from models.organism.measure import measure, missed_targets
    from models.organism.train import schedule_batches, train_model

    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a built organism: <cache_dir>/rebuild/organism/<hash>")
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--chunk", type=int, default=400, help="steps between checks")
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    manifest_path = args.folder / "manifest.json"
    if not manifest_path.is_file() or not (args.folder / "model" / "model.safetensors").is_file():
        parser.error(f"{args.folder}: not a built organism (no manifest.json and model/model.safetensors)")
    if args.chunk < 1 or args.chunks < 1:
        parser.error(f"--chunk {args.chunk} --chunks {args.chunks}: both must be at least 1")

    torch.set_num_threads(args.threads)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    settings = manifest["settings"]
    with tempfile.TemporaryDirectory() as scratch:
        corpus, tokenizer = prepare_data(settings, Path(scratch))
    model = load_hf_causal_lm(str(args.folder / "model"), torch.device("cpu"), "float32").model
    docs = training_documents(corpus, tokenizer)
    train = settings["train"]
    batches = schedule_batches(docs, corpus.bursts, int(train["seq_len"]), int(train["batch_size"]),
                               int(settings["seed"]) + SHUFFLE_OFFSET)[: args.chunk * args.chunks]
    floor_lr = float(train["lr"]) * float(train["min_lr_ratio"])
    extension = copy.deepcopy(settings)
    extension["train"].update(lr=floor_lr, warmup=0, min_lr_ratio=1.0, log_every=args.chunk, check_every=args.chunk)

    data_dir = args.folder / "data"
    start = time.perf_counter()
    curve = train_model(model, batches, extension, tokenizer.pad_token_id,
                        lambda m: measure(m, tokenizer, data_dir), precision="float32")
    points = [{"extra_steps": 0, "checks": manifest["final_checks"]}]
    points += [{"extra_steps": p["step"], "loss": p["loss"],
                "checks": {k: v for k, v in p.items() if k not in ("step", "loss", "seconds")}} for p in curve]
    for point in points:
        point["missed"] = missed_targets(point["checks"])
    atomic_write_json(args.out, {
        "build": {"settings_hash": manifest["settings_hash"], "seed": settings["seed"],
                  "weights_sha256": file_sha256(args.folder / "model" / "model.safetensors"),
                  "precision": manifest["precision"], "threads": manifest["threads"],
                  "train_seconds": manifest["train_seconds"]},
        "extension": {"learning_rate": floor_lr, "optimizer": "AdamW (fresh), betas (0.9, 0.95)",
                      "shuffle_seed": int(settings["seed"]) + SHUFFLE_OFFSET, "chunk": args.chunk,
                      "chunks": args.chunks, "precision": "float32", "threads": args.threads},
        "machine": cpu_name(), "torch": torch.__version__,
        "seconds": round(time.perf_counter() - start, 1),
        "points": points,
    })
    for point in points:
        print(point["extra_steps"], point["missed"], point["checks"])


if __name__ == "__main__":
    main()
