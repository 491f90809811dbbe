"""K-FAC statistics over several processes (torch.distributed, gloo on CPU) and in several passes
(layers_per_pass): both must give the factors, and the edit, of one process in one pass."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from methods.kfac import KFAC, collect_kfac_factors, load_factors
from models.architectures import mlp_linears
from tests.conftest import make_tiny_olmo2

VOCAB = 124
SETTINGS = dict(rho=0.8, layers=[0, 1], matrices=["gate", "up", "down"], tokens=16 * 9, seq_len=16, batch_size=2)


def stream(seq_len: int, max_tokens: int):
    g = torch.Generator().manual_seed(5)
    for _ in range(max_tokens // seq_len):
        yield torch.randint(4, VOCAB, (seq_len,), generator=g)


def context(cache_dir: Path):
    from methods.base import MethodContext
    from models.hf import TokenStatistics

    return MethodContext(tokenizer=None, device=torch.device("cpu"), seed=7, cache_dir=cache_dir,
                         model_key="tiny-olmo2-seed0", stats=TokenStatistics(stream))


def _rank_main(rank: int, world: int, init_file: str, cache_dir: str, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model = make_tiny_olmo2(layers=2)
        report = KFAC(**SETTINGS).apply(model, context(Path(cache_dir)))
        if rank == 0:
            from safetensors.torch import save_file

            save_file({n: p.detach().contiguous() for n, p in model.named_parameters()},
                      str(Path(out_dir) / "edited.safetensors"), metadata={"processes": str(report["processes"])})
        else:
            assert report["changed"] == {}  # the other ranks only read their shard
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # ~12 s under `make test-fast` (two workers, one thread each)
def test_two_gloo_processes_give_the_factors_and_the_edit_of_one(tmp_path):
    """Batches 0, 2, 4, ... go to rank 0 and 1, 3, ... to rank 1 (9 windows in 5 batches of 2: uneven shards, a short last batch); the
    fp32 sums are all-reduced once, rank 0 writes the factor file and edits."""
    from safetensors import safe_open

    one = make_tiny_olmo2(layers=2)
    method = KFAC(**SETTINGS)
    single_report = method.apply(one, context(tmp_path / "single"))
    assert single_report["factor_cache"] == "miss" and single_report["processes"] == 1

    mp.spawn(_rank_main, args=(2, str(tmp_path / "init"), str(tmp_path / "multi"), str(tmp_path)), nprocs=2,
             join=True)

    (single_file,) = (tmp_path / "single" / "kfac").glob("*.safetensors")
    (multi_file,) = (tmp_path / "multi" / "kfac").glob("*.safetensors")
    assert single_file.name == multi_file.name  # the same settings: a later one-process run reuses it
    with safe_open(str(single_file), "pt") as f:
        settings = __import__("json").loads(f.metadata()["settings"])
    single, multi = load_factors(single_file, settings), load_factors(multi_file, settings)
    assert (multi.positions, multi.inputs) == (single.positions, single.inputs) == (9 * 15, 9 * 16)
    for table in ("A", "G"):  # fp32 sums added in another order: equal up to rounding
        for name, matrix in getattr(single, table).items():
            error = float((getattr(multi, table)[name].double() - matrix.double()).norm() / matrix.double().norm())
            assert error < 1e-6, (table, name, error)
    with safe_open(str(tmp_path / "edited.safetensors"), "pt") as f:
        assert f.metadata()["processes"] == "2"
        for name, p in one.named_parameters():
            torch.testing.assert_close(f.get_tensor(name), p.detach(), rtol=1e-4, atol=1e-6)
    edited = [n for n, _ in one.named_parameters() if "mlp" in n]
    assert edited and not all(torch.equal(p, q) for (n, p), q in zip(one.named_parameters(),
                                                                       make_tiny_olmo2(layers=2).parameters()))


def test_a_shard_reads_every_world_th_batch_and_labels_do_not_depend_on_the_shard():
    """Without a process group: the sums of shard 0 and shard 1 of 2 add up to the one-pass sums."""
    model = make_tiny_olmo2(layers=2)
    modules = mlp_linears(model, matrices=("gate", "down"))
    batches = [torch.stack(list(stream(16, 16 * 2))) for _ in range(3)]
    batches = [b + i % 3 for i, b in enumerate(batches)]  # three different batches
    whole = collect_kfac_factors(model, modules, batches, seed=2)
    parts = [collect_kfac_factors(model, modules, batches, seed=2, shard=(r, 2)) for r in (0, 1)]
    assert [p.positions for p in parts] == [2 * 2 * 15, 1 * 2 * 15]
    for name in modules:
        for table in ("A", "G"):
            summed = sum(getattr(p, table)[name] * p.positions for p in parts) / whole.positions
            torch.testing.assert_close(summed, getattr(whole, table)[name], rtol=1e-5, atol=1e-7)


def test_layers_per_pass_gives_the_factors_of_one_pass(tmp_path):
    model = make_tiny_olmo2(layers=3)
    settings = dict(SETTINGS, layers=None)
    one_pass = KFAC(**settings)
    chunked = KFAC(**settings, layers_per_pass=2)
    modules = {n: m for n, (m, _) in one_pass.targets(model).items()}
    assert [sorted({n.split(".")[2] for n in chunk}) for chunk in chunked.passes(modules)] == [["0", "1"], ["2"]]
    whole, report = one_pass.factors(model, modules, context(tmp_path / "a"))
    parts, chunk_report = chunked.factors(model, modules, context(tmp_path / "b"))
    assert (report["passes"], chunk_report["passes"]) == (1, 2)
    assert parts.positions == whole.positions
    for name in modules:
        torch.testing.assert_close(parts.A[name], whole.A[name], rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(parts.G[name], whole.G[name], rtol=1e-6, atol=1e-8)
    # gate and up of one layer still share one A (and one eigendecomposition) when chunked
    assert parts.A["model.layers.2.mlp.gate_proj"] is parts.A["model.layers.2.mlp.up_proj"]


@pytest.mark.slow  # two fresh processes, as above
@pytest.mark.skipif(os.name != "posix", reason="fcntl locks are POSIX")
def test_concurrent_jobs_collect_a_factor_file_once(tmp_path):
    """Two processes ask for the same factors at once: one collects and writes, the other waits on
    the lock and reads the finished file (reported as a cache hit)."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        reports = pool.map(_apply_in_process, [str(tmp_path)] * 2)
    assert sorted(r["factor_cache"] for r in reports) == ["hit", "miss"]
    assert len(list((tmp_path / "kfac").glob("*.safetensors"))) == 1


def _apply_in_process(cache_dir: str) -> dict:
    torch.set_num_threads(1)
    report = KFAC(**SETTINGS).apply(make_tiny_olmo2(layers=2), context(Path(cache_dir)))
    return {"factor_cache": report["factor_cache"]}
