"""One training step of the organism's model (conf/model/organism.yaml: OLMo-2, 6 layers, hidden 256, batch 8 x 128, AdamW)
on the CPU, by thread count and precision: the numbers behind the organism's thread setting
(docs/organism.md, "Threads"; BENCHMARKS.md).

    python benchmarks/organism_step.py [--rounds 4] [--steps 10]

Each round runs every configuration once, in the same process (rounds interleaved, so load on a
shared machine hits them alike); a configuration's time is the median step of its `--steps` steps
after 3 warm-ups. Prints min and median over rounds, and each one's ratio to float32 at 1 thread.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

CONFIGS = (("float32", 1), ("float32", 2), ("bfloat16", 1), ("bfloat16", 2))


def step_seconds(model: torch.nn.Module, optimizer: torch.optim.Optimizer, ids: torch.Tensor, precision: str,
                 threads: int, steps: int) -> float:
    torch.set_num_threads(threads)
    times = []
    for i in range(steps + 3):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            loss = model(input_ids=ids, labels=ids).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i >= 3:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    from models.organism import default_settings
    from models.organism.train import build_model

    torch.manual_seed(0)
    # The organism's own model (conf/model/organism.yaml), at about its vocabulary size.
    model = build_model(default_settings(), 2200, {"pad": 0, "bos": 1, "eos": 2})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)
    ids = torch.randint(5, 2200, (8, 128))
    results: dict[tuple[str, int], list[float]] = {c: [] for c in CONFIGS}
    for _ in range(args.rounds):
        for precision, threads in CONFIGS:
            results[(precision, threads)].append(step_seconds(model, optimizer, ids, precision, threads, args.steps))
    base = statistics.median(results[CONFIGS[0]])
    print("| precision | threads | step min (ms) | step median (ms) | speed vs float32, 1 thread (median) |")
    print("|---|---|---|---|---|")
    for (precision, threads), times in results.items():
        median = statistics.median(times)
        print(f"| {precision} | {threads} | {1000 * min(times):.0f} | {1000 * median:.0f} | {base / median:.2f}x |")


if __name__ == "__main__":
    main()
