"""Peak memory of one K-FAC statistics pass at OLMo-2 1B width (vocabulary 100,352), before and after
the memory fixes of issue 13, each in a fresh process (ru_maxrss), rounds interleaved.

"before" is the code of commit 914b89d, read with `git show` (methods/kfac.py collect_kfac_factors,
which asked autograd for the gradients of every hooked input at once, and TokenStatistics.loss /
sample_labels, which kept an fp32 copy of the (B, T-1, V) logits and built a B·T·V isfinite mask);
"after" is the working tree. Same model (seeded random weights, 1B shape with 2 layers), same
tokens, same hooked modules (gate, up, down of both layers).

    OMP_NUM_THREADS=2 flock /work/heavy.lock .venv/bin/python benchmarks/kfac_memory.py --rounds 2
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BEFORE_COMMIT = "914b89d"


def one_pass(variant: str, tokens: int, seq_len: int, batch_size: int) -> dict:
    import types

    import torch

    from models.shapes import load

    loaded = load({"shape": "olmo2_1b", "dtype": "float32", "num_hidden_layers": 2}, torch.device("cpu"), None)
    model = loaded.model
    from models.architectures import mlp_linears

    modules = mlp_linears(model, matrices=("gate", "up", "down"))
    stats = loaded.sources.statistics()
    before_pass = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if variant == "after":
        from methods.kfac import collect_kfac_factors

        source = stats
    else:
        old = types.ModuleType("old_kfac")
        code = subprocess.run(["git", "show", f"{BEFORE_COMMIT}:methods/kfac.py"], cwd=REPO, check=True,
                              capture_output=True, text=True).stdout
        sys.modules["old_kfac"] = old  # dataclasses look their module up
        exec(compile(code, "old_kfac.py", "exec"), old.__dict__)
        collect_kfac_factors = old.collect_kfac_factors

        class OldTokenStatistics(type(stats)):
            def loss(self, model, batch, labels, generator):  # 914b89d models/hf.py + models/base.py
                ids = batch.to(next(model.parameters()).device)
                logits = model(input_ids=ids).logits[:, :-1]
                flat = logits.reshape(-1, logits.shape[-1]).float()
                if labels == "sampled":
                    probs = flat.detach().float().softmax(dim=-1)
                    if not torch.isfinite(probs).all():
                        raise ValueError("NaN")
                    targets = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
                else:
                    targets = ids[:, 1:].reshape(-1)
                return torch.nn.functional.cross_entropy(flat, targets), flat.shape[0]

        source = OldTokenStatistics(stats.windows)
    start = time.perf_counter()
    factors = collect_kfac_factors(model, modules, source.batches(tokens, batch_size, seq_len), source=source)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"variant": variant, "peak_gb": peak / 1024 ** 2, "pass_added_gb": (peak - before_pass) / 1024 ** 2,
            "seconds": seconds, "positions": factors.positions}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--one", choices=["before", "after"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_pass(args.one, args.tokens, args.seq_len, args.batch_size)))
        return
    results: dict[str, list[dict]] = {"before": [], "after": []}
    for _ in range(args.rounds):
        for variant in ("before", "after"):
            out = subprocess.run([sys.executable, __file__, "--one", variant, "--tokens", str(args.tokens),
                                  "--seq-len", str(args.seq_len), "--batch-size", str(args.batch_size)],
                                 cwd=REPO, check=True, capture_output=True, text=True).stdout
            results[variant].append(json.loads(out.strip().splitlines()[-1]))
            print(variant, results[variant][-1], flush=True)
    for variant, rows in results.items():
        added = [r["pass_added_gb"] for r in rows]
        print(f"{variant}: peak RSS min {min(r['peak_gb'] for r in rows):.2f} GB; added by the pass "
              f"min {min(added):.2f} / median {statistics.median(added):.2f} GB; "
              f"seconds min {min(r['seconds'] for r in rows):.1f}")


if __name__ == "__main__":
    main()
