"""The Python API: `harness.evaluate(...)` runs what `python -m harness ...` runs, and
`harness.edit(model, ...)` applies a method to a Hugging Face model you hold in memory.

Both write nothing unless asked: `evaluate` puts its run file in a temporary folder unless it is
given `runs_dir` (the cache of organisms and factor files, `cache_dir`, is used as on the command
line); `edit` writes nothing unless given `cache_dir` (to keep factor files) or `save_to` (to
export the edited model). Bad input raises the command line's one-line errors as exceptions
(`core.errors.HarnessError` and its subclasses). docs/python_api.md shows both in use.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.buildcache import CONF_DIR
from core.errors import ConfigError
from harness.config import check_command_line, check_group_choices, open_task_settings, with_model_suite
from harness.execute import execute
from models.hf import CausalLMData, TokenStatistics

if TYPE_CHECKING:
    import torch
    from omegaconf import DictConfig


def evaluate(*overrides: str, runs_dir: str | Path | None = None) -> dict[str, Any]:
    """Run one experiment as `python -m harness <overrides>` does and return its run record
    (docs/DESIGN.md's run file schema). E.g. `evaluate("method=kfac", "method.rho=0.99")`.

    `runs_dir` (or a `runs_dir=` override) keeps the run file and the cached baseline there, and
    reuses finished work found there; without it they go to a temporary folder that is removed.
    `save_edited=<dir>` exports the edited model, `tracker=<name>` logs the run, as on the
    command line. One configuration per call: a sweep (`method=a,b`) is a ConfigError."""
    argv = open_task_settings([str(o) for o in overrides])
    for arg in argv:
        if arg.startswith("-"):  # -m, --cfg, ...: the command line's flags, not a configuration
            raise ConfigError(f"evaluate takes overrides only, not the flag '{arg}'; call it once per configuration")
    with contextlib.ExitStack() as stack:
        if runs_dir is None and not any(arg.lstrip("+").startswith("runs_dir=") for arg in argv):
            runs_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="harness-runs-"))
        if runs_dir is not None:
            argv.append(f"runs_dir={_quoted(str(runs_dir))}")
        _check_single_run(argv)
        check_command_line(argv)
        cfg = stack.enter_context(composed(argv))
        return execute(cfg)


def _quoted(value: str) -> str:
    """A value as one Hydra override value, whatever characters a path holds."""
    return "'" + value.replace("'", "\\'") + "'"


def _check_single_run(argv: list[str]) -> None:
    from harness.config import parse_overrides

    choices, _ = parse_overrides(argv)
    for group, options in choices.items():
        if len(options) > 1:
            raise ConfigError(f"evaluate runs one configuration, and {group}={','.join(options)} is a sweep; "
                              f"call evaluate once per {group}")


@contextlib.contextmanager
def composed(argv: list[str]) -> Iterator["DictConfig"]:
    """The config `python -m harness <argv>` runs, composed with Hydra's compose API, with Hydra's
    runtime state (the chosen config names: `method=kfac_vit` files runs as kfac_vit) set as
    the command line sets it, and cleared when the block ends."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException
    from omegaconf import open_dict, read_write
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = compose(config_name="config", overrides=with_model_suite(argv), return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(f"bad override: {str(e).strip().splitlines()[0]}") from None
    HydraConfig.instance().set_config(cfg)
    with read_write(cfg), open_dict(cfg):  # what hydra.main's task function receives: no hydra node
        del cfg["hydra"]
    try:
        yield cfg
    finally:
        HydraConfig.instance().cfg = None  # type: ignore[assignment]


class GivenData(CausalLMData):
    """The data handed to `edit`: references as in `model.data` (a path, `hf:<dataset>`), and the
    statistics text may also be a list of strings."""

    missing_hint = "pass data={{'{kind}': <path>}} to harness.edit"
    data_key = "data['{kind}']"

    def statistics(self) -> TokenStatistics:
        texts = self.refs.get("stats")
        if isinstance(texts, (list, tuple)):
            from core.data import token_windows

            return TokenStatistics(lambda seq_len, max_tokens: token_windows(iter(texts), self.tokenizer,
                                                                              seq_len, max_tokens))
        return super().statistics()


DATA_KEYS = ("stats", "forget", "retain", "retain_seq_len", "retain_max_tokens")


def method_config(method: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """conf/method/<method>.yaml as the command line composes it, with `settings` over it."""
    from omegaconf import OmegaConf

    check_group_choices([f"method={method}"])
    with composed([f"method={method}"]) as cfg:
        config = OmegaConf.to_container(cfg.method, resolve=True)
    return {**config, **settings}  # type: ignore[dict-item]


def edit(model: "torch.nn.Module", tokenizer: Any = None, method: str = "kfac",
         data: str | Path | Mapping[str, Any] | None = None, *, seed: int = 0,
         cache_dir: str | Path | None = None, save_to: str | Path | None = None,
         **settings: Any) -> tuple["torch.nn.Module", dict[str, Any]]:
    """Apply `method` (a conf/method/ name: kfac, svd, npo, ...) to `model` in place, as a run
    does, and return (the edited model, the method's report).

    `settings` override the method's config (`rho=0.9`, `tokens=50000`). `data` is what the method
    reads, as `model.data` on the command line: {"stats": text (a .txt/.jsonl path, `hf:<dataset>`,
    or a list of strings), "forget": verbatim JSONL path, "retain": text path}; a plain path or list
    is the statistics text. `cache_dir` keeps factor files for reuse (default: a temporary folder);
    `save_to` exports the edited model with provenance (harness/export.py). The model is edited in
    place: `copy.deepcopy` it first to keep the original."""
    from harness.export import check_export_target, provenance, save_edited, weights_digest
    from harness.pipeline import apply_method, check_method_data
    from methods.base import build_method
    from models.base import LoadedModel

    import torch

    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"harness.edit edits a loaded model (a torch.nn.Module), got {type(model).__name__}; "
                          "load it first, e.g. AutoModelForCausalLM.from_pretrained(path)")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    if data is not None and not isinstance(data, (str, Path, Mapping, list, tuple)):
        raise ConfigError(f"data must be a path, a list of texts, or a mapping (keys: {', '.join(DATA_KEYS)}), "
                          f"got {type(data).__name__}")
    if tokenizer is None:
        raise ConfigError("harness.edit needs the model's tokenizer: edit(model, tokenizer=..., ...)")
    refs = dict(data) if isinstance(data, Mapping) else {"stats": data} if data is not None else {}
    unknown = sorted(set(refs) - set(DATA_KEYS))
    if unknown:
        raise ConfigError(f"data: unknown key(s) {', '.join(unknown)}; valid: {', '.join(DATA_KEYS)}")
    for kind, ref in refs.items():
        if isinstance(ref, Path):
            refs[kind] = str(ref)
        elif isinstance(ref, (list, tuple)) and kind != "stats":
            raise ConfigError(f"data['{kind}'] must be a path (only data['stats'] may be a list of texts)")
    method_cfg = method_config(method, settings)
    chosen = build_method(method_cfg)  # settings checked before anything slow
    target = check_export_target(save_to, "save_to") if save_to is not None else None
    try:
        chosen.check(model)
    except ConfigError as e:
        raise ConfigError(f"method {method}: {e}") from None
    base_digest = weights_digest(model) if target is not None or cache_dir is not None else None
    device = next(model.parameters()).device
    with contextlib.ExitStack() as stack:
        cache = Path(cache_dir) if cache_dir is not None else Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="harness-edit-")))
        loaded = LoadedModel(model, tokenizer, name=_model_name(model), key=f"in-memory:{(base_digest or 'unkeyed')[:16]}",
                             data={}, device=device, sources=GivenData(refs, {}, tokenizer))
        check_method_data(chosen, loaded, method)
        report = apply_method(chosen, loaded, {"seed": seed, "cache_dir": str(cache)}, None)
    if target is not None:
        record = provenance(base_name=loaded.name, base_key=None, base_digest=base_digest or "",
                            method_label=method, method_settings=method_cfg, report=report, seed=seed)
        save_edited(model, tokenizer, target, record, "save_to")
    return model, report


def _model_name(model: Any) -> str:
    from models.hf import safe_name

    name = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
    return safe_name(str(name))
