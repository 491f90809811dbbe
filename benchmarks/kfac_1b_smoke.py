"""Smoke run of the whole K-FAC pipeline at real OLMo-2 dimensions (random weights, no download):
build the model from its published shape, collect A and G for one or a few layers over seeded
random tokens, eigendecompose, select, edit. Prints the time of each step and the process's peak
resident memory after it (ru_maxrss: torch allocates outside Python's tracemalloc), and on a GPU the
peak GPU memory (torch.cuda.max_memory_allocated).

    OMP_NUM_THREADS=2 flock /work/heavy.lock .venv/bin/python benchmarks/kfac_1b_smoke.py \\
        --shape olmo2_1b --layers 15 --tokens 4096 --seq-len 512 --batch-size 2
    python benchmarks/kfac_1b_smoke.py --shape olmo2_7b --layers 23 24 25 --tokens 32768 \\
        --batch-size 16 --device cuda --autocast bfloat16           # a GPU

Results: BENCHMARKS.md, "Real dimensions".
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time

import torch


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="olmo2_1b")
    parser.add_argument("--layers", type=int, nargs="+", default=[15])
    parser.add_argument("--matrices", nargs="+", default=["gate", "up"])
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--rho", type=float, default=0.6)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--autocast", default=None, choices=["bfloat16", "float16"],
                        help="autocast dtype of the statistics pass (the paper's: bfloat16); default fp32")
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"

    from methods.kfac import KFAC, collect_kfac_factors, eigh_descending, keep_counts, kfac_edit_weight
    from models.architectures import set_weight_out_in, weight_as_out_in
    from models.shapes import load

    steps: dict[str, dict[str, float]] = {}

    def record(name: str, start: float) -> None:
        if gpu:
            torch.cuda.synchronize(device)  # kernels run asynchronously: time them to the end
        steps[name] = {"seconds": round(time.perf_counter() - start, 2), "peak_rss_gb": round(peak_rss_gb(), 2)}
        line = f"{name:>12}: {steps[name]['seconds']:8.2f} s   peak RSS so far {steps[name]['peak_rss_gb']:6.2f} GB"
        if gpu:
            steps[name]["peak_gpu_gb"] = round(torch.cuda.max_memory_allocated(device) / 1024 ** 3, 2)
            line += f"   peak GPU memory so far {steps[name]['peak_gpu_gb']:6.2f} GiB"
        print(line, flush=True)

    where = torch.cuda.get_device_name(device) if gpu else platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {where}, autocast {args.autocast or 'none (fp32)'}")
    record("imports", time.perf_counter())
    start = time.perf_counter()
    loaded = load({"shape": args.shape, "dtype": "float32", "seed": 0}, device, None)
    model = loaded.model
    params = sum(p.numel() for p in model.parameters())
    record("build", start)

    method = KFAC(rho=args.rho, layers=args.layers, matrices=args.matrices, tokens=args.tokens,
                  seq_len=args.seq_len, batch_size=args.batch_size)
    targets = method.targets(model)
    stats = loaded.sources.statistics()
    start = time.perf_counter()
    factors = collect_kfac_factors(model, {n: m for n, (m, _) in targets.items()},
                                   stats.batches(args.tokens, args.batch_size, args.seq_len), source=stats,
                                   autocast_dtype=getattr(torch, args.autocast) if args.autocast else None)
    record("collection", start)

    start = time.perf_counter()
    eig_A: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for name in targets:
        if id(factors.A[name]) not in eig_A:
            eig_A[id(factors.A[name])] = eigh_descending(factors.A[name])
    record("eigh A", start)
    start = time.perf_counter()
    eig_G = {name: eigh_descending(factors.G[name]) for name in targets}
    record("eigh G", start)

    start = time.perf_counter()
    for name in targets:
        keep_counts(eig_G[name][0], eig_A[id(factors.A[name])][0], args.rho)
    record("selection", start)

    start = time.perf_counter()
    facts = {}
    for name, (module, rho) in targets.items():
        new_weight, facts[name] = kfac_edit_weight(weight_as_out_in(module), eig_A[id(factors.A[name])],
                                                   eig_G[name], rho)
        set_weight_out_in(module, new_weight)
    record("select+edit", start)

    shapes = {name: {"A": list(factors.A[name].shape), "G": list(factors.G[name].shape)} for name in targets}
    print(json.dumps({"shape": args.shape, "device": where, "autocast": args.autocast, "parameters": params, "positions": factors.positions,
                      "tokens": factors.inputs, "factor_shapes": shapes, "steps": steps,
                      "edit": {n: {k: f[k] for k in ("mass_kept", "components_kept", "components_total")}
                               for n, f in facts.items()}}, indent=1))


if __name__ == "__main__":
    main()
