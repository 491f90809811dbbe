"""What K-FAC costs on a real 135M model on CPU: SmolLM2-135M (model=smollm2's converted base), the
K-FAC statistics pass against a plain forward + backward, interleaved on the same batches of its
statistics text; then eigendecomposition + edit of the band the model's default edits.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/smollm2_kfac_cost.py [--rounds 3] [--batches 2]

Two settings of the statistics pass: the model's kfac default (layers 22-24, gate+up; the backward
stops at layer 22) and every layer's gate/up/down. Ratios are what to read; absolute tokens/s depend
on the machine and on what else runs there (BENCHMARKS.md)."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEQ, BATCH = 128, 8


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=2)
    args = parser.parse_args()

    from core.data import iter_texts, token_windows
    from methods.kfac import collect_kfac_factors, eigh_descending, kfac_edit_weight
    from models.architectures import mlp_linears
    from models.smollm2 import data_files
    from models.smollm2.planted import default_base
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = default_base()
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    windows = list(token_windows(iter_texts(str(data_files()["stats_text"]), {}), tokenizer, SEQ, BATCH * args.batches * SEQ))
    batches = [torch.stack(windows[i:i + BATCH]) for i in range(0, len(windows), BATCH)][:args.batches]
    tokens = sum(b.numel() for b in batches)
    settings = {"band 22-24 gate+up": mlp_linears(model, [22, 23, 24], ["gate", "up"]),
                "all 30 layers gate+up+down": mlp_linears(model)}

    def forward_backward() -> None:
        model.train()
        for batch in batches:
            logits = model(input_ids=batch).logits[:, :-1]
            torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1)).backward()
            model.zero_grad(set_to_none=True)
        model.eval()

    runs = {"fwd+bwd": forward_backward}
    for label, modules in settings.items():
        runs[f"statistics, {label}"] = lambda modules=modules: collect_kfac_factors(model, modules, batches)
    for fn in runs.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.rounds):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {tokens} tokens a measurement "
          f"({args.batches} batches of {BATCH} x {SEQ}), {args.rounds} interleaved rounds")
    plain = times["fwd+bwd"]
    for name, values in times.items():
        print(f"  {name:<42} min {min(values):6.2f} s ({tokens / min(values):5.0f} tok/s)  median "
              f"{statistics.median(values):6.2f} s   / fwd+bwd: min {min(values) / min(plain):.2f}, "
              f"median {statistics.median(values) / statistics.median(plain):.2f}")

    modules = settings["band 22-24 gate+up"]
    factors = collect_kfac_factors(model, modules, batches)
    start = time.perf_counter()
    eigen = {name: (eigh_descending(factors.A[name]), eigh_descending(factors.G[name])) for name in modules}
    middle = time.perf_counter()
    for name, module in modules.items():
        kfac_edit_weight(module.weight, *eigen[name], 0.6)
    end = time.perf_counter()
    print(f"  eigendecomposition of {len(modules)} matrices' A (576) and G (1536): {middle - start:.2f} s; "
          f"edit at rho 0.6: {end - middle:.2f} s")


if __name__ == "__main__":
    main()
