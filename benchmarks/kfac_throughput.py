"""K-FAC statistics pass vs a plain forward+backward, on CPU, same process, same batches.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/kfac_throughput.py

Model: a randomly initialised OLMo-2 of the organism's size at the time (hidden 192, MLP 768, 4 layers,
4 heads, vocab 1,100, seq 128, batch 8). Rounds interleave the measurements so that load from
other processes hits them alike; medians are reported, and the ratios are what to read (absolute
times depend on the machine). Then: peak memory of one pass of each kind (separate processes),
eigendecomposition + edit time, selection at OLMo-2 7B sizes, and a FLOP projection for OLMo-2 7B
(3 layers, gate+up, 20M tokens) on one H100."""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HIDDEN, MLP, LAYERS, HEADS, VOCAB, SEQ, BATCH = 192, 768, 4, 4, 1100, 128, 8


def make_model():
    from transformers import Olmo2Config, Olmo2ForCausalLM

    torch.manual_seed(0)
    return Olmo2ForCausalLM(Olmo2Config(
        vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=MLP, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, num_key_value_heads=HEADS, max_position_embeddings=SEQ))


def make_batches(count: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randint(0, VOCAB, (BATCH, SEQ), generator=g) for _ in range(count)]


def forward_backward(model, batches) -> None:
    """The plain training step without the optimizer: mean next-token CE, all parameter grads."""
    model.train()
    for batch in batches:
        logits = model(input_ids=batch).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB).float(), batch[:, 1:].reshape(-1))
        loss.backward()
        model.zero_grad(set_to_none=True)


def covariance_matmuls(modules, batches) -> None:
    """Only the fp32 x^T x of the statistics pass, on random rows of the same shapes (inputs of
    every edited module, gate/up sharing one; output gradients of every module)."""
    n = BATCH * (SEQ - 1)
    shapes = []
    for name, m in modules.items():
        if not name.endswith("up_proj"):  # up shares gate's input
            shapes.append(m.in_features)
        shapes.append(m.out_features)
    sums = [torch.zeros(d, d) for d in shapes]
    rows = [torch.randn(n, d) for d in shapes]
    for _ in batches:
        for s, r in zip(sums, rows):
            s.addmm_(r.T, r)


def collect(model, modules, batches) -> None:
    from methods.kfac import collect_kfac_factors

    collect_kfac_factors(model, modules, batches, labels="sampled")


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): CPU time is less sensitive to other processes
    competing for the same cores, so the ratios are read from it."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def peak_memory(mode: str) -> None:
    """Child process: peak RSS after building the model and batches, and after one pass of `mode`
    over 2 batches of 64 x 128 tokens (no warm-up before, so the difference is what the pass adds), in MB."""
    from models.architectures import mlp_linears

    model = make_model()
    modules = mlp_linears(model)
    batches = [b.repeat(8, 1) for b in make_batches(2)]  # 64 sequences a batch: activations dominate
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    forward_backward(model, batches) if mode == "fwdbwd" else collect(model, modules, batches)
    print(json.dumps({"rss_before_mb": round(before), "rss_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


def projection_7b() -> dict:
    """FLOPs of the statistics pass for OLMo-2 7B, 3 layers (23-25), gate+up, 20M tokens, seq 512.
    Forward: 2 FLOPs per weight per token, plus attention scores (4 * seq * d per layer).
    Backward: activation gradients only (weights are frozen), from the loss down to layer 23:
    2 FLOPs per weight of layers 23-31 and the LM head, attention twice its forward.
    Covariances (fp32): 2 d^2 per token for A of gate/up (shared) and 2 * 11008^2 for each G."""
    d, mlp, layers, vocab, seq, tokens = 4096, 11008, 32, 100352, 512, 20e6
    per_layer = 4 * d * d + 3 * d * mlp
    attention = 4 * seq * d
    forward = 2 * (layers * per_layer + d * vocab) + layers * attention
    backward = 2 * (9 * per_layer + d * vocab) + 9 * 2 * attention
    covariance = 3 * (2 * d * d + 2 * 2 * mlp * mlp)
    bf16_peak, tf32_peak, mfu = 989e12, 494.5e12, 0.4  # H100 SXM dense tensor-core peaks; assumed 40 % MFU
    model_s = tokens * (forward + backward) / (bf16_peak * mfu)
    cov_s = tokens * covariance / (tf32_peak * mfu)
    return {"gflop_per_token_forward": forward / 1e9, "gflop_per_token_backward": backward / 1e9,
            "gflop_per_token_covariance": covariance / 1e9, "model_minutes": model_s / 60,
            "covariance_minutes_tf32": cov_s / 60, "covariance_minutes_fp32_no_tf32": tokens * covariance / (67e12 * mfu) / 60,
            "total_minutes": (model_s + cov_s) / 60,
            "factor_memory_gb": 3 * (d * d + 2 * mlp * mlp) * 4 / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--peak-memory", choices=["fwdbwd", "collect"])
    args = parser.parse_args()
    if args.peak_memory:
        return peak_memory(args.peak_memory)

    from methods.kfac import collect_kfac_factors, eigh_descending, keep_counts, kfac_edit_weight
    from models.architectures import mlp_linears

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    model = make_model()
    modules = mlp_linears(model)  # all 4 layers, gate+up+down: the organism default of the time
    batches = make_batches(args.batches)
    tokens = args.batches * BATCH * SEQ
    forward_backward(model, batches[:1]); collect(model, modules, batches[:1])  # warm-up
    times = {"fwd+bwd": [], "collect": [], "covariance": []}
    for _ in range(args.rounds):
        times["fwd+bwd"].append(timed(lambda: forward_backward(model, batches)))
        times["collect"].append(timed(lambda: collect(model, modules, batches)))
        times["covariance"].append(timed(lambda: covariance_matmuls(modules, batches)))
    print(f"{tokens} tokens per measurement, {args.rounds} rounds; min (least disturbed) and median:")
    for clock, index in (("wall", 0), ("cpu", 1)):
        for stat, reduce in (("min", min), ("median", statistics.median)):
            best = {k: reduce(t[index] for t in v) for k, v in times.items()}
            line = "  ".join(f"{k} {v:.3f} s ({tokens / v:.0f} tok/s)" for k, v in best.items())
            print(f"  {clock:<4} {stat:<6} {line}")
            print(f"  {clock:<4} {stat:<6} collect / fwd+bwd = {best['collect'] / best['fwd+bwd']:.3f}; "
                  f"collect / (fwd+bwd + covariance) = {best['collect'] / (best['fwd+bwd'] + best['covariance']):.3f}"
                  "  (goal <= 1.1)")
    for k, v in times.items():
        print(f"  rounds {k:<10} wall: {', '.join(f'{t[0]:.2f}' for t in v)}")

    for mode in ("fwdbwd", "collect"):
        out = subprocess.run([sys.executable, __file__, "--peak-memory", mode], capture_output=True, text=True, check=True)
        print(f"  peak RSS, 2 batches of 64 x {SEQ} tokens, {mode:<8}: {out.stdout.strip()}")

    factors = collect_kfac_factors(model, modules, batches, labels="sampled")
    start = time.perf_counter()
    eigen = {}
    for name, module in modules.items():
        A = factors.A[name]
        if id(A) not in eigen:
            eigen[id(A)] = eigh_descending(A)
        kfac_edit_weight(module.weight, eigen[id(A)], eigh_descending(factors.G[name]), 0.99)
    print(f"  eigendecomposition + edit, {len(modules)} matrices (rho 0.99): {time.perf_counter() - start:.3f} s")

    g = torch.Generator().manual_seed(0)
    lam = (torch.rand(11008, generator=g, dtype=torch.float64) ** 8).sort(descending=True).values
    mu = (torch.rand(4096, generator=g, dtype=torch.float64) ** 8).sort(descending=True).values
    start = time.perf_counter()
    counts = keep_counts(lam, mu, 0.6)
    print(f"  keep_counts at 7B gate size (11008 x 4096, rho 0.6): {time.perf_counter() - start:.3f} s, "
          f"kept {int(counts.sum())} of {11008 * 4096}")
    start = time.perf_counter()
    products = torch.outer(lam, mu).flatten().sort(descending=True).values
    k = int((products.cumsum(0) < 0.6 * products.sum()).sum()) + 1
    print(f"  full outer-product sort, same sizes:                  {time.perf_counter() - start:.3f} s, kept {k}")
    del products

    print("OLMo-2 7B projection (layers 23-25, gate+up, 20M tokens, seq 512, one H100):")
    for key, value in projection_7b().items():
        print(f"  {key:<32} {value:10.2f}")


if __name__ == "__main__":
    main()
