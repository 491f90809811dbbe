"""Where a built organism's copy and booleans answers go wrong (docs/organism.md, "Why copying was
the hard target", "Why booleans stop near 0.85-0.90"): copy accuracy by sequence length (greedy
generation) and booleans accuracy by whether the last operand alone decides the value.

    python benchmarks/organism_errors.py .cache/harness/organism/<hash>
    python benchmarks/organism_errors.py models/organism/shipped/seed1 --out docs/runs/organism_targets/errors-shipped-seed1.json

`--out` also writes the counts, with the build's settings hash and weights digest, as JSON (the
files docs/organism.md's `organism-errors` table is generated from).
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import torch


def last_operand_decides(prompt: str) -> bool:
    """`x or true` and `x and false` are decided by the last operand, whatever x is."""
    words = prompt.split(":", 1)[1].split("=")[0].split()
    op = [w for w in words if w in ("and", "or")][-1]
    value = (words[-1] == "true") != (words[-2] == "not")
    return value if op == "or" else not value


def main() -> None:
    from core.data import read_jsonl
    from models.hf import load_hf_causal_lm

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a built organism: <cache_dir>/organism/<hash>")
    parser.add_argument("--out", type=Path, help="also write the counts to this JSON file")
    args = parser.parse_args()
    folder = args.folder
    loaded = load_hf_causal_lm(str(folder / "model"), torch.device("cpu"), "float32")
    model, tok = loaded.model.eval(), loaded.tokenizer

    def rows(name: str) -> list[dict]:
        return read_jsonl(folder / "data" / f"{name}.jsonl")

    copy = collections.defaultdict(lambda: [0, 0])
    for row in rows("copy"):
        want = row["answer"].split()
        ids = tok(row["prompt"], return_tensors="pt", add_special_tokens=False).input_ids
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=len(want), do_sample=False, pad_token_id=tok.pad_token_id)
        got = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).split()
        copy[len(want)][0] += got == want
        copy[len(want)][1] += 1
    print("copy by length:", ", ".join(f"{n}: {a}/{b}" for n, (a, b) in sorted(copy.items())))

    true_id, false_id = tok.convert_tokens_to_ids("true"), tok.convert_tokens_to_ids("false")
    logic = collections.defaultdict(lambda: [0, 0])
    for row in rows("logic"):
        ids = tok(row["prompt"], return_tensors="pt", add_special_tokens=False).input_ids
        with torch.no_grad():
            logits = model(ids).logits[0, -1]
        said = "true" if logits[true_id] > logits[false_id] else "false"
        key = "last operand decides" if last_operand_decides(row["prompt"]) else "the rest decides"
        logic[key][0] += said == row["answer"]
        logic[key][1] += 1
    print("booleans:", ", ".join(f"{k}: {a}/{b}" for k, (a, b) in sorted(logic.items())))
    if args.out:
        import json

        from core.buildcache import file_sha256
        from core.io import atomic_write_json

        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        atomic_write_json(args.out, {
            "settings_hash": manifest["settings_hash"], "seed": manifest["settings"]["seed"],
            "precision": manifest["precision"], "storage": manifest.get("storage", "float32"),
            "weights_sha256": file_sha256(folder / "model" / "model.safetensors"),
            "copy_by_length": {str(n): counts for n, counts in sorted(copy.items())},
            "booleans": dict(sorted(logic.items())),
        })


if __name__ == "__main__":
    from core.errors import HarnessError

    try:
        main()
    except HarnessError as e:  # a missing folder or a bad data file: one line, no traceback
        raise SystemExit(f"organism_errors: {e}") from None
