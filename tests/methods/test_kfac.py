"""K-FAC: factors against a slow per-window autograd reference and against curvlinops, component
selection against a full sort, the edit, the factor cache, and config errors."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest
import torch

from core.errors import ConfigError, DataError
from methods.kfac import (KFAC, Factors, check_finite, collect_kfac_factors, eigh_descending, label_generator,
                          kfac_edit_weight, keep_counts, load_factors, save_factors)
from models.base import sample_labels
from models.architectures import mlp_linears, weight_as_out_in
from tests.conftest import make_tiny_olmo2

VOCAB = 124  # tests/conftest.py: 120 words + 4 specials


def windows(count: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(4, VOCAB, (count, length), generator=g)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


# ----------------------------------------------------------------------------------------------
# Factors
# ----------------------------------------------------------------------------------------------

def reference_factors(model, modules, batches, labels_per_batch):
    """Slow and obvious: one window at a time, the window's summed per-position loss, its gradient
    w.r.t. each module's output by autograd, then one outer product per position (the last
    position, which predicts nothing, dropped)."""
    A = {n: 0.0 for n in modules}
    G = {n: 0.0 for n in modules}
    count = 0
    for batch, labels in zip(batches, labels_per_batch):
        labels = labels.view(batch.shape[0], -1)
        for ids, targets in zip(batch, labels):
            seen = {}
            hooks = [m.register_forward_hook(lambda mod, args, out, name=name: seen.__setitem__(name, (args[0], out)))
                     for name, m in modules.items()]
            logits = model(input_ids=ids[None]).logits[0, :-1].float()
            for h in hooks:
                h.remove()
            loss = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
            grads = torch.autograd.grad(loss, [seen[n][1] for n in modules])
            for name, g in zip(modules, grads):
                x = seen[name][0][0]
                for t in range(len(targets)):
                    A[name] = A[name] + torch.outer(x[t], x[t]).detach()
                    G[name] = G[name] + torch.outer(g[0, t], g[0, t])
            count += len(targets)
    return {n: a / count for n, a in A.items()}, {n: g / count for n, g in G.items()}


def labels_as_collected(model, batches, labels, seed):
    """The labels collect_kfac_factors uses: gold next tokens, or sampled sequence by sequence
    from a generator seeded per batch (label_generator: the same calls in the same order)."""
    out = []
    with torch.no_grad():
        for index, batch in enumerate(batches):
            if labels == "empirical":
                out.append(batch[:, 1:].reshape(-1))
            else:
                gen = label_generator(seed, index, torch.device("cpu"))
                logits = model(input_ids=batch).logits[:, :-1]
                out.append(torch.cat([sample_labels(row, gen) for row in logits]))
    return out


@pytest.mark.parametrize("labels", ["sampled", "empirical"])
def test_factors_equal_per_window_autograd_reference(labels):
    model = make_tiny_olmo2()
    modules = mlp_linears(model, matrices=("gate", "up", "down"))
    batches = [windows(3, 7, seed=1), windows(2, 7, seed=2)]  # unequal batches: scaling must not depend on n
    factors = collect_kfac_factors(model, modules, batches, labels=labels, seed=5)
    ref_A, ref_G = reference_factors(model, modules, batches, labels_as_collected(model, batches, labels, 5))
    assert factors.positions == 5 * 6 and factors.inputs == 5 * 7
    for name in modules:
        assert relative_error(factors.A[name], ref_A[name]) < 1e-5, name
        assert relative_error(factors.G[name], ref_G[name]) < 1e-4, name
    # gate and up read the same input: one A object, computed once
    assert factors.A["model.layers.0.mlp.gate_proj"] is factors.A["model.layers.0.mlp.up_proj"]
    assert factors.A["model.layers.0.mlp.down_proj"] is not factors.A["model.layers.0.mlp.up_proj"]
    # the pass leaves the model as it found it
    assert all(p.requires_grad for p in model.parameters()) and not model.training


@pytest.mark.parametrize("arch", ["gpt2", "neox"])
def test_factors_equal_reference_on_gpt2_conv1d_and_neox(arch):
    from tests.models.test_architectures import tiny

    model = tiny(arch).eval()  # vocabulary 50
    modules = mlp_linears(model, matrices=("up", "down"))
    batches = [torch.randint(0, 50, (2, 6), generator=torch.Generator().manual_seed(0))]
    factors = collect_kfac_factors(model, modules, batches, labels="empirical")
    ref_A, ref_G = reference_factors(model, modules, batches, [batches[0][:, 1:].reshape(-1)])
    for name in modules:
        assert relative_error(factors.A[name], ref_A[name]) < 1e-5, name
        assert relative_error(factors.G[name], ref_G[name]) < 1e-4, name


def test_factors_equal_curvlinops_kfac():
    """curvlinops.KFACLinearOperator with CrossEntropyLoss(reduction="mean"),
    kfac_approx="expand" (every sequence position is a data point sharing the weight), fed
    windows[:, :-1] with targets windows[:, 1:]: its A averages x x^T over all fed positions and
    its G averages g g^T with g the gradient of the summed per-position loss, i.e. our
    convention on our windows with the last position dropped. Empirical Fisher
    (fisher_type="empirical") with the gold next tokens, and the true Fisher with one sampled label
    per position: curvlinops' empirical Fisher fed our sampled labels (labels_as_collected) as
    targets, which is its one-sample Monte-Carlo Fisher for those draws (our labels are seeded per
    batch, so its own sampler cannot draw the same ones). Tolerance 1e-4 relative."""
    curvlinops = pytest.importorskip("curvlinops")

    class Logits(torch.nn.Module):  # curvlinops wants (batch, classes, positions)
        def __init__(self, lm):
            super().__init__()
            self.lm = lm

        def forward(self, ids):
            return self.lm(input_ids=ids).logits.transpose(1, 2)

    model = make_tiny_olmo2()
    modules = mlp_linears(model, matrices=("gate", "up", "down"))
    batches = [windows(3, 9, seed=3), windows(3, 9, seed=4)]
    for ours in ("empirical", "sampled"):
        targets = labels_as_collected(model, batches, ours, seed=11)
        data = [(b[:, :-1], t.view(b.shape[0], -1)) for b, t in zip(batches, targets)]
        kfac = curvlinops.KFACLinearOperator(
            Logits(model), torch.nn.CrossEntropyLoss(reduction="mean"),
            [m.weight for m in modules.values()], data, fisher_type="empirical", mc_samples=1,
            kfac_approx="expand", check_deterministic=False, seed=11, num_data=6)
        kfac.compute_kronecker_factors()
        factors = collect_kfac_factors(model, modules, batches, labels=ours, seed=11)
        for name in modules:
            assert relative_error(factors.A[name], kfac._input_covariances[f"lm.{name}"]) < 1e-4, (ours, name)
            assert relative_error(factors.G[name], kfac._gradient_covariances[f"lm.{name}"]) < 1e-4, (ours, name)


def test_bf16_autocast_keeps_fp32_sums_close_to_the_fp32_factors():
    model = make_tiny_olmo2()
    modules = mlp_linears(model, layers=[1], matrices=("up", "down"))
    batches = [windows(4, 16, seed=1)]
    exact = collect_kfac_factors(model, modules, batches, labels="empirical")
    for dtype in (torch.float32, torch.bfloat16):
        approx = collect_kfac_factors(model, modules, batches, labels="empirical", autocast_dtype=dtype)
        for name in modules:
            assert approx.A[name].dtype == approx.G[name].dtype == torch.float32
            tolerance = 1e-6 if dtype == torch.float32 else 0.05
            assert relative_error(approx.A[name], exact.A[name]) < tolerance
            assert relative_error(approx.G[name], exact.G[name]) < tolerance


def test_sample_labels_follow_the_softmax():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]])).repeat(20000, 1)
    drawn = sample_labels(logits, torch.Generator().manual_seed(0))
    share = torch.bincount(drawn, minlength=3).float() / len(drawn)
    assert torch.allclose(share, torch.tensor([0.7, 0.2, 0.1]), atol=0.015)
    with pytest.raises(DataError, match="NaN/inf logits"):
        sample_labels(torch.full((2, 3), float("nan")), torch.Generator())


def test_vit_statistics_come_from_the_cls_token(tmp_path):
    """A tiny ViT: the pass runs on pixel batches, counts one position (CLS) per image and uses the
    classification loss; A of the up projection equals the mean of CLS-input outer products."""
    import transformers as tf

    from methods.base import MethodContext
    from models.vit import ImageStatistics

    torch.manual_seed(0)
    model = tf.ViTForImageClassification(tf.ViTConfig(
        hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=2,
        image_size=8, patch_size=4, num_labels=5)).eval()
    g = torch.Generator().manual_seed(0)
    images = [(torch.randn(3, 8, 8, generator=g), i % 5) for i in range(10)]
    source = ImageStatistics(lambda n: iter(images[:n]))
    ctx = MethodContext(tokenizer=None, device=torch.device("cpu"), seed=0, cache_dir=tmp_path,
                        model_key="tiny-vit", stats=source)
    up = mlp_linears(model, layers=[0], matrices=("up",))
    factors = collect_kfac_factors(model, up, [(torch.stack([x for x, _ in images]), torch.tensor([y for _, y in images]))],
                                   source=source, labels="empirical")
    seen = {}
    handle = next(iter(up.values())).register_forward_hook(lambda m, a, o: seen.update(x=a[0]))
    with torch.no_grad():
        model(pixel_values=torch.stack([x for x, _ in images]))
    handle.remove()
    cls = seen["x"][:, 0]
    assert factors.positions == 10
    assert relative_error(next(iter(factors.A.values())), cls.T @ cls / 10) < 1e-5

    before = weight_as_out_in(model.vit.layers[0].mlp.fc1).detach().clone()
    report = KFAC(rho=0.9, layers=[0], matrices=["up", "down"], batch_size=4, images=8).apply(model, ctx)
    assert report["images"] == 8 and report["factor_cache"] == "miss"
    assert not torch.equal(before, weight_as_out_in(model.vit.layers[0].mlp.fc1))
    assert set(report["changed"]) == {"vit.layers.0.mlp.fc1.weight", "vit.layers.0.mlp.fc2.weight"}


def test_vit_statistics_over_all_tokens(tmp_path):
    """`tokens="all"` (model.statistics.tokens): every token of every image is a position (4
    patches + CLS here); A is the mean outer product of the layer's inputs over all of them and G
    the mean outer product of the gradients of the images' summed loss w.r.t. each token's output
    (K-FAC "expand"), checked against a plain autograd pass."""
    import transformers as tf

    from models.vit import ImageStatistics, token_count

    torch.manual_seed(0)
    model = tf.ViTForImageClassification(tf.ViTConfig(
        hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=2,
        image_size=8, patch_size=4, num_labels=5)).eval()
    assert token_count(model) == 5
    g = torch.Generator().manual_seed(0)
    pixels = torch.randn(10, 3, 8, 8, generator=g)
    gold = torch.arange(10) % 5
    up = mlp_linears(model, layers=[1], matrices=("up",))
    factors = collect_kfac_factors(model, up, [(pixels[:6], gold[:6]), (pixels[6:], gold[6:])],
                                   source=ImageStatistics(lambda n: iter([]), tokens="all"), labels="empirical")
    assert factors.positions == 50 and factors.inputs == 10

    seen = {}
    module = next(iter(up.values()))

    def keep(m, args, out):
        out.retain_grad()
        seen.update(x=args[0].detach(), out=out)

    handle = module.register_forward_hook(keep)
    model.train()
    loss = torch.nn.functional.cross_entropy(model(pixel_values=pixels).logits, gold, reduction="sum")
    loss.backward()
    handle.remove()
    x = seen["x"].reshape(-1, 16)
    grad = seen["out"].grad.reshape(-1, 24)
    assert relative_error(next(iter(factors.A.values())), x.T @ x / 50) < 1e-5
    assert relative_error(next(iter(factors.G.values())), grad.T @ grad / 50) < 1e-4
    with pytest.raises(ConfigError, match="tokens must be one of"):
        ImageStatistics(lambda n: iter([]), tokens="patches")


# ----------------------------------------------------------------------------------------------
# Selection and edit
# ----------------------------------------------------------------------------------------------

def reference_keep(lam: torch.Tensor, mu: torch.Tensor, rho: float) -> tuple[int, torch.Tensor]:
    """Full outer product, sorted: the fewest largest products reaching rho of the total.
    Returns (count, the set as an out x in bool matrix)."""
    products = torch.outer(lam.double(), mu.double())
    values, order = products.flatten().sort(descending=True, stable=True)
    target = rho * products.sum()
    k = int((values.cumsum(0) < target).sum()) + 1
    keep = torch.zeros(products.numel(), dtype=torch.bool)
    keep[order[:k]] = True
    return k, keep.view_as(products)


def spectrum(n: int, seed: int, zeros: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    values = torch.rand(n, generator=g, dtype=torch.float64) ** 6  # concentrated, like real ones
    values[:zeros] = 0
    return values.sort(descending=True).values


@pytest.mark.parametrize("rho", [0.05, 0.5, 0.9, 0.99, 0.999999])
@pytest.mark.parametrize("band_limit", [1, 64, 1 << 20])  # bisection all the way, partly, not at all
def test_keep_counts_equal_full_sort(rho, band_limit):
    for seed, (out, inn, zeros) in enumerate([(40, 25, 0), (17, 60, 3), (1, 9, 0), (33, 1, 0)]):
        lam, mu = spectrum(out, seed), spectrum(inn, seed + 100, zeros)
        counts = keep_counts(lam, mu, rho, band_limit=band_limit)
        k, keep = reference_keep(lam, mu, rho)
        assert int(counts.sum()) == k
        mine = torch.arange(inn)[None, :] < counts[:, None]
        assert torch.equal(mine, keep), (seed, rho)  # products are distinct: the same set


def test_keep_counts_with_ties_is_minimal_and_prefix_shaped():
    lam = torch.tensor([4.0, 2.0, 2.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    mu = torch.tensor([2.0, 1.0, 1.0, 0.5], dtype=torch.float64)
    products = torch.outer(lam, mu)
    for rho in [0.1, 0.3, 0.5, 0.77, 0.9, 0.95, 0.999]:
        for band_limit in (1, 100):
            counts = keep_counts(lam, mu, rho, band_limit=band_limit)
            k, _ = reference_keep(lam, mu, rho)
            assert int(counts.sum()) == k
            kept = torch.arange(4)[None, :] < counts[:, None]
            mass = products[kept].sum()
            assert mass >= rho * products.sum()
            assert mass - products[kept].min() < rho * products.sum()  # minimal
    assert torch.equal(keep_counts(lam, mu, 1.0), torch.full((6,), 4))


def test_rho_one_leaves_the_weight_unchanged_and_edit_matches_the_formula():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 12, generator=g) * torch.linspace(3, 0.01, 12)
    Y = torch.randn(200, 7, generator=g) * torch.linspace(2, 0.1, 7)
    A, G = X.T @ X / 200, Y.T @ Y / 200
    W = torch.randn(7, 12, generator=g)
    same, facts = kfac_edit_weight(W, A, G, 1.0)
    assert torch.equal(same, W) and facts["components_removed"] == 0 and facts["mass_kept"] == pytest.approx(1.0)
    for rho in (0.3, 0.8, 0.99):
        new, facts = kfac_edit_weight(W, A, G, rho)
        mu, U_A = eigh_descending(A)
        lam, U_G = eigh_descending(G)
        k, keep = reference_keep(lam, mu, rho)
        formula = U_G @ ((U_G.T @ W @ U_A) * keep) @ U_A.T  # W' = U_G (C * M) U_A^T
        assert torch.allclose(new, formula, atol=1e-5)
        assert facts["components_kept"] == k and facts["components_total"] == 84
        assert facts["mass_kept"] >= rho - 1e-12


# ----------------------------------------------------------------------------------------------
# The method: report, cache, errors
# ----------------------------------------------------------------------------------------------

SMALL = dict(tokens=256, seq_len=16, batch_size=4)


def test_apply_reports_and_second_apply_hits_the_cache(method_context):
    model = make_tiny_olmo2()
    method = KFAC(rho=0.9, layers=[1], matrices=["gate", "up"], overrides={"1": {"up": 0.5}}, **SMALL)
    report = method.apply(model, method_context)
    assert report["factor_cache"] == "miss" and report["tokens"] == 256 and report["positions"] == 16 * 15
    up = report["changed"]["model.layers.1.mlp.up_proj.weight"]
    gate = report["changed"]["model.layers.1.mlp.gate_proj.weight"]
    assert (up["rho"], gate["rho"]) == (0.5, 0.9)
    assert gate["mass_kept"] >= 0.9 and up["mass_kept"] >= 0.5
    assert gate["components_kept"] + gate["components_removed"] == gate["components_total"] == 64 * 32
    assert up["components_removed"] > gate["components_removed"] > 0
    edited = {n: p.detach().clone() for n, p in model.named_parameters()}

    again = make_tiny_olmo2()
    report2 = method.apply(again, method_context)
    assert report2["factor_cache"] == "hit"
    for name, p in again.named_parameters():
        assert torch.equal(p, edited[name]), name
    # a sweep over rho reuses the factors; other data settings do not
    assert KFAC(rho=0.99, layers=[1], matrices=["gate", "up"], **SMALL).apply(make_tiny_olmo2(), method_context)["factor_cache"] == "hit"
    assert KFAC(rho=0.99, layers=[1], matrices=["gate", "up"], labels="empirical", **SMALL).apply(
        make_tiny_olmo2(), method_context)["factor_cache"] == "miss"


def test_unreadable_cache_files_are_recomputed(method_context):
    method = KFAC(rho=0.9, layers=[0], **SMALL)
    first = make_tiny_olmo2()
    method.apply(first, method_context)
    (path,) = (Path(method_context.cache_dir) / "kfac").glob("*.safetensors")
    good = path.read_bytes()
    for broken in (b"not a safetensors file", good[: len(good) // 2]):  # garbage; half-written file
        path.write_bytes(broken)
        model = make_tiny_olmo2()
        assert method.apply(model, method_context)["factor_cache"] == "miss"
        assert all(torch.equal(a, b) for a, b in zip(model.parameters(), first.parameters()))
        assert method.apply(make_tiny_olmo2(), method_context)["factor_cache"] == "hit"  # rewritten


def test_killed_collection_or_write_leaves_no_readable_file(method_context, monkeypatch):
    from models.hf import TokenStatistics

    def dying_windows(seq_len, max_tokens):
        yield from list(method_context.stats.windows(seq_len, max_tokens))[:5]
        raise KeyboardInterrupt  # killed mid-collection

    folder = Path(method_context.cache_dir) / "kfac"
    ctx = dataclasses.replace(method_context, stats=TokenStatistics(dying_windows))
    with pytest.raises(KeyboardInterrupt):
        KFAC(rho=0.9, layers=[0], **SMALL).apply(make_tiny_olmo2(), ctx)
    leftovers = lambda: [p for p in folder.glob("*") if p.suffix != ".lock"]  # noqa: E731 (the lock file stays)
    assert not leftovers() if folder.exists() else True

    import safetensors.torch

    def dying_save(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(safetensors.torch, "save_file", dying_save)
    with pytest.raises(KeyboardInterrupt):
        KFAC(rho=0.9, layers=[0], **SMALL).apply(make_tiny_olmo2(), method_context)
    assert leftovers() == []  # neither the final file nor the temp file


def test_nan_factors_are_a_clear_error(method_context, tmp_path):
    model = make_tiny_olmo2()
    with torch.no_grad():
        model.model.layers[1].mlp.down_proj.weight[0, 0] = float("nan")
    for labels in ("sampled", "empirical"):
        with pytest.raises(DataError, match="NaN"):
            KFAC(rho=0.9, labels=labels, **SMALL).apply(model, method_context)
    assert not (Path(method_context.cache_dir) / "kfac").exists() or not list(
        (Path(method_context.cache_dir) / "kfac").glob("*.safetensors"))  # nothing cached
    bad = Factors(A={"m": torch.eye(2)}, G={"m": torch.tensor([[float("inf"), 0], [0, 1.0]])}, positions=1, inputs=2)
    with pytest.raises(DataError, match="factor G of m has NaN/inf.*check its weights"):
        check_finite(bad)
    with pytest.raises(DataError, match="bfloat16 statistics pass overflowed"):
        check_finite(bad, "bfloat16")


def test_poisoned_factor_cache_is_discarded_with_a_warning_and_recomputed(method_context, capsys):
    """A cached factor file with NaN, the wrong shapes or other settings is not an error that
    repeats on every rerun: it is named in one warning line and recomputed."""
    model = make_tiny_olmo2()
    method = KFAC(rho=0.9, layers=[0], **SMALL)
    first = method.apply(copy.deepcopy(model), method_context)
    path = Path(first["factor_file"])
    good = load_factors(path, json.loads(safe_metadata(path)["settings"]))
    assert good is not None
    settings = json.loads(safe_metadata(path)["settings"])
    poisons = {
        "NaN": Factors(A={n: a.clone().fill_(float("nan")) for n, a in good.A.items()}, G=good.G,
                       positions=good.positions, inputs=good.inputs),
        "shapes": Factors(A={n: torch.eye(3) for n in good.A}, G={n: torch.eye(3) for n in good.G},
                          positions=good.positions, inputs=good.inputs),
    }
    for problem, poison in poisons.items():
        save_factors(path, poison, settings)
        capsys.readouterr()
        report = method.apply(copy.deepcopy(model), method_context)
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("warning: discarding cached K-FAC factors") and str(path) in err[0]
        assert ("NaN" in err[0]) if problem == "NaN" else ("shapes" in err[0])
        assert report["factor_cache"] == "miss" and report["changed"].keys() == first["changed"].keys()
        assert load_factors(path, settings) is not None  # overwritten with good factors
    save_factors(path, good, {**settings, "budget": -1})  # a file whose settings are not its name's
    assert load_factors(path, settings) is None and "settings differ" in capsys.readouterr().err
    path.write_bytes(path.read_bytes()[:100])  # truncated
    assert load_factors(path, settings) is None and "unreadable" in capsys.readouterr().err


def safe_metadata(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


def test_unknown_architecture_and_bad_settings_are_config_errors(method_context):
    model = torch.nn.Sequential(torch.nn.Embedding(VOCAB, 8), torch.nn.Linear(8, VOCAB))
    with pytest.raises(ConfigError, match="module_pattern"):
        KFAC(**SMALL).apply(model, method_context)
    for bad in (dict(rho=0), dict(rho=1.5), dict(rho="0.5"), dict(labels="gold"), dict(matrices=["ffn"]),
                dict(matrices="gate"), dict(layers="all"), dict(tokens=0), dict(seq_len=1), dict(dtype="fp8"),
                dict(overrides={"x": {"up": 0.5}}), dict(overrides={"1": {"up": 2}}),
                dict(module_pattern="mlp", layers=[1])):
        with pytest.raises(ConfigError):
            KFAC(**bad)
    with pytest.raises(ConfigError, match="layer 5"):
        KFAC(overrides={"5": {"up": 0.5}}, **SMALL).apply(make_tiny_olmo2(), method_context)
    with pytest.raises(ConfigError, match="not among the edited"):
        KFAC(layers=[0], overrides={"1": {"up": 0.5}}, **SMALL).apply(make_tiny_olmo2(), method_context)


def test_module_pattern_edits_the_matching_linears(method_context):
    model = make_tiny_olmo2()
    report = KFAC(rho=0.9, module_pattern=r"layers\.0\.self_attn\.o_proj$", **SMALL).apply(model, method_context)
    assert list(report["changed"]) == ["model.layers.0.self_attn.o_proj.weight"]


def test_shipped_configs_build():
    from tests.conftest import method_config

    for name in ("kfac", "kfac_olmo2_7b", "kfac_olmo2_1b", "kfac_vit"):
        cfg = method_config(name)
        assert cfg.pop("name") == "kfac"
        KFAC(**cfg)


@pytest.mark.slow
def test_harness_runs_kfac_random_ablation_and_svd_end_to_end(tiny_model_dir, tmp_path):
    """python -m harness method=kfac|random_ablation|svd on the tiny saved model; the second
    K-FAC-family run reuses the factors of the first."""
    from hydra import compose, initialize_config_dir

    from harness.pipeline import run_experiment
    from tests.conftest import harness_args

    conf = Path(__file__).resolve().parents[2] / "conf"
    small = ["method.tokens=512", "method.seq_len=16", "method.batch_size=4",
             f"model.data.stats={tiny_model_dir / 'text.txt'}"]
    reports = {}
    for method, extra in (("kfac", small), ("random_ablation", small), ("svd", [])):
        with initialize_config_dir(config_dir=str(conf), version_base=None):
            cfg = compose(config_name="config",
                          overrides=harness_args(tiny_model_dir, tmp_path / "runs", f"method={method}", *extra))
        run = run_experiment(cfg)
        assert run["status"] == "complete"
        reports[method] = run["method"]["report"]
    assert reports["kfac"]["factor_cache"] == "miss" and reports["random_ablation"]["factor_cache"] == "hit"
    assert reports["kfac"]["tokens"] == 512
    for name, facts in reports["kfac"]["changed"].items():
        assert reports["random_ablation"]["changed"][name]["components_removed"] == facts["components_removed"]
    assert list(reports["svd"]["changed"]) == [f"model.layers.0.mlp.{m}_proj.weight" for m in ("gate", "up", "down")]


def test_rho_one_apply_leaves_the_model_unchanged(method_context):
    model = make_tiny_olmo2()
    before = [p.detach().clone() for p in model.parameters()]
    report = KFAC(rho=1.0, matrices=["gate", "up", "down"], **SMALL).apply(model, method_context)
    assert all(f["components_removed"] == 0 for f in report["changed"].values())
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), before))


def test_kfac_declares_the_columns_old_run_files_are_read_with() -> None:
    """Run files written before methods recorded their columns are read with core.runcolumns'
    LEGACY_COLUMNS: they must stay what K-FAC declares, or old and new K-FAC runs would differ."""
    from core.runcolumns import LEGACY_COLUMNS, declared_columns

    assert KFAC.columns == LEGACY_COLUMNS and KFAC.shards_statistics
    recorded = {"method": {"columns": [c.record() for c in KFAC.columns]}}
    assert declared_columns(recorded) == KFAC.columns and declared_columns({"method": {}}) == LEGACY_COLUMNS


# ----------------------------------------------------------------------------------------------
# Gradient checkpointing; what the statistics pass says before it reads (issue 29, items 5 and 12)
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reentrant", [False, True])
@pytest.mark.parametrize("input_grads", [False, True])
def test_factors_under_gradient_checkpointing_equal_the_plain_pass(reentrant, input_grads):
    import warnings

    batches = [windows(3, 7, seed=1), windows(2, 7, seed=2)]
    plain_model = make_tiny_olmo2(layers=3)
    plain = collect_kfac_factors(plain_model, mlp_linears(plain_model, matrices=("gate", "up", "down")),
                                 batches, labels="sampled", seed=5)
    model = make_tiny_olmo2(layers=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers 5 renamed the call
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": reentrant})
    if input_grads:
        model.enable_input_require_grads()
    modules = mlp_linears(model, matrices=("gate", "up", "down"))
    factors = collect_kfac_factors(model, modules, batches, labels="sampled", seed=5)
    assert factors.positions == plain.positions == 30
    for name in modules:  # each A counted once (not again in the recompute), each G from the backward pass
        assert torch.allclose(factors.A[name], plain.A[name], rtol=1e-5, atol=1e-7), name
        assert torch.allclose(factors.G[name], plain.G[name], rtol=1e-4, atol=1e-9), name
    assert model.config.use_cache is plain_model.config.use_cache  # restored


def test_checkpointing_setting_gives_the_plain_factors_and_restores_the_model(method_context):
    from methods.kfac.statistics import checkpointing_on

    method = KFAC(rho=0.9, layers=[1], matrices=["gate", "up"], **SMALL)
    plain_model = make_tiny_olmo2()
    plain = method.factors(plain_model, {n: m for n, (m, _) in method.targets(plain_model).items()},
                           dataclasses.replace(method_context, cache_dir=method_context.cache_dir / "a"))[0]
    low_memory = KFAC(rho=0.9, layers=[1], matrices=["gate", "up"], checkpointing=True, **SMALL)
    model = make_tiny_olmo2()
    low_memory.check(model)
    factors = low_memory.factors(model, {n: m for n, (m, _) in low_memory.targets(model).items()},
                                 dataclasses.replace(method_context, cache_dir=method_context.cache_dir / "b"))[0]
    for name in plain.A:
        assert torch.allclose(factors.A[name], plain.A[name], rtol=1e-5, atol=1e-7), name
        assert torch.allclose(factors.G[name], plain.G[name], rtol=1e-4, atol=1e-9), name
    assert not checkpointing_on(model)  # switched on for the pass only
    with pytest.raises(ConfigError, match="checkpointing must be true or false"):
        KFAC(checkpointing="yes")
    unsupported = make_tiny_olmo2()
    unsupported.supports_gradient_checkpointing = False  # as a model class without it says
    with pytest.raises(ConfigError, match="does not support gradient checkpointing"):
        low_memory.check(unsupported)


def test_statistics_pass_states_a_capped_budget_and_its_tokens_and_time(method_context, capsys):
    from models.hf import TokenStatistics

    vocab = 124
    short = dataclasses.replace(method_context, stats=TokenStatistics(
        lambda seq_len, max_tokens: iter(windows(min(5, max_tokens // seq_len), seq_len))))
    report = KFAC(rho=0.9, layers=[1], matrices=["gate", "up"], tokens=1000, seq_len=16, batch_size=2).apply(
        make_tiny_olmo2(), short)
    out = capsys.readouterr().out.splitlines()
    assert "K-FAC tokens: 1,000 requested, the stream has 80; using 80" in out
    said = [line for line in out if line.startswith("K-FAC statistics: reading 80 tokens (one pass)")]
    assert len(said) == 1 and " in all at " in said[0] and "measured over 2 batches" in said[0]
    assert out.index(said[0]) > out.index("K-FAC tokens: 1,000 requested, the stream has 80; using 80")
    assert report["tokens"] == 80 and report["tokens_requested"] == 1000
    # a budget the stream fills says nothing about capping; two passes are counted in the total
    KFAC(rho=0.9, layers=[0, 1], matrices=["gate"], layers_per_pass=1, **SMALL).apply(make_tiny_olmo2(), method_context)
    out = capsys.readouterr().out
    assert "requested" not in out and "K-FAC statistics: reading 512 tokens (2 passes over 256)" in out
    assert vocab == len(method_context.tokenizer)


# ----------------------------------------------------------------------------------------------
# kfac_paper: a band of late layers relative to depth (issue 29, item 6)
# ----------------------------------------------------------------------------------------------

def test_band_at_chooses_the_papers_layers_at_any_depth():
    band = KFAC(band_at=0.75, band_size=3)
    assert band.chosen_layers(32) == [23, 24, 25]  # OLMo-2 7B: the paper's layers
    assert band.chosen_layers(16) == [11, 12, 13]
    assert band.chosen_layers(30) == [21, 22, 23]
    assert band.chosen_layers(4) == [1, 2, 3]  # floor(3) = 3 is the last layer: the band moves down
    assert band.chosen_layers(2) == [0, 1]  # a band deeper than the model: every layer
    assert KFAC(band_at=1.0, band_size=2).chosen_layers(10) == [8, 9]
    assert KFAC(band_at=0.0, band_size=1).chosen_layers(10) == [0]
    assert KFAC(layers=[1]).chosen_layers(32) == [1]
    for bad, match in [(dict(band_at=1.5), "band_at must be"), (dict(band_at=True), "band_at must be"),
                       (dict(band_at=0.5, layers=[1]), "both choose layers"),
                       (dict(band_size=0), "band_size must be"),
                       (dict(band_at=0.5, module_pattern="mlp"), "module_pattern")]:
        with pytest.raises(ConfigError, match=match):
            KFAC(**bad)


def test_kfac_paper_preset_edits_gate_and_up_of_a_late_band_at_rho_06(method_context):
    from tests.conftest import method_config

    settings = method_config("kfac_paper")
    assert settings.pop("name") == "kfac"
    method = KFAC(**{**settings, **SMALL})
    assert (method.rho, method.matrices, method.layers) == (0.6, ("gate", "up"), None)
    model = make_tiny_olmo2(layers=8)
    report = method.apply(model, method_context)
    assert report["layers"] == [5, 6, 7]
    assert sorted(report["changed"]) == [f"model.layers.{i}.mlp.{m}_proj.weight" for i in (5, 6, 7) for m in ("gate", "up")]
