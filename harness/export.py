"""Take the edited model away: a `save_pretrained` folder (safetensors weights, config, tokenizer)
with its provenance, written by `save_edited=<dir>` on the command line, `harness.evaluate(...,
"save_edited=<dir>")` and `harness.edit(..., save_to=<dir>)` alike.

The folder holds, besides what transformers writes:
- `harness_export.json`: the provenance (base model's weight digest, method and its resolved
  settings, the statistics it read, the run's identity and headline metrics, edited weights'
  digest). It is also the marker that the folder is one of ours: an export replaces an earlier
  export, and never a folder without it (unless that folder is empty).
- `README.md`: a model card saying the same in words.

The folder is written beside its destination under a temporary name and renamed into place, so a
reader (or a rerun after a kill) sees the old export or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError

if TYPE_CHECKING:
    import torch

MARKER = "harness_export.json"
FORMAT = "memorization-harness edited model"


def check_export_target(folder: str | Path, what: str = "save_edited") -> Path:
    """The export folder, checked before any slow work: it must be new, empty, or an earlier
    export of ours (it holds MARKER), and its parent must be writable."""
    from core.io import check_writable_dir

    folder = Path(folder).expanduser().absolute()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{what}={folder} is a file; pass a folder for the edited model")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MARKER).is_file():
        raise ConfigError(f"{what}={folder} holds files that are not an earlier export of this harness "
                          f"(no {MARKER}); pass a new or empty folder")
    check_writable_dir(folder.parent, f"{what} (its parent folder)")
    return folder


def weights_digest(model: "torch.nn.Module") -> str:
    """sha256 over the model's state dict: every tensor's name, dtype, shape and bytes, in name
    order. Equal digests mean equal weights, whatever file layout they were saved in."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def headline_metrics(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each task's primary metric, before and after the edit, from a run record."""
    baseline = (run.get("baseline") or {}).get("tasks") or {}
    out = {}
    for task, entry in (run.get("edited") or {}).get("tasks", {}).items():
        metric = entry["primary"]
        out[task] = {"family": entry.get("family"), "metric": metric, "n": entry.get("n"),
                     "baseline": (baseline.get(task) or {}).get("metrics", {}).get(metric),
                     "edited": entry["metrics"][metric]}
    return out


def statistics_read(report: dict[str, Any]) -> dict[str, Any]:
    """What a curvature method's report says it read from the statistics stream (tokens or images,
    and the positions counted); empty for methods that read none."""
    return {k: report[k] for k in ("tokens", "images", "positions", "factor_cache") if k in report}


def provenance(*, base_name: str, base_key: str | None, base_digest: str, method_label: str,
               method_settings: dict[str, Any], report: dict[str, Any], seed: int,
               run: dict[str, Any] | None = None) -> dict[str, Any]:
    """The provenance record of an export (harness_export.json), less the edited weights' digest
    (save_edited adds it)."""
    from core.runrecord import _git_commit, now

    try:
        from importlib.metadata import version

        harness_version = version("memorization-harness")
    except Exception:  # not installed as a package (a plain checkout)
        harness_version = None
    return {
        "format": FORMAT,
        "created": now(),
        "harness": {"version": harness_version, "git_commit": _git_commit()},
        "base_model": {"name": base_name, "key": base_key, "weights_sha256": base_digest},
        "method": {"label": method_label, "settings": method_settings, "seed": seed,
                   "statistics": statistics_read(report), "changed": sorted(report.get("changed") or {})},
        "run": None if run is None else {"identity": run.get("identity"), "updated": run.get("updated"),
                                         "suite": (run.get("config") or {}).get("suite", {}).get("name")},
        "headline_metrics": None if run is None else headline_metrics(run),
    }


def model_card(record: dict[str, Any]) -> str:
    """README.md of the export: the provenance in words, with a front matter the hub reads."""
    method, base = record["method"], record["base_model"]
    lines = ["---", "library_name: transformers", "tags:", "- memorization-removal",
             f"- {method['label']}", "---", "",
             f"# {base['name']}, edited with {method['label']}", "",
             f"This model is `{base['name']}` after the memorization-removal method `{method['label']}` "
             "(memorization-harness). It loads as any transformers model: "
             "`AutoModelForCausalLM.from_pretrained(<this folder>)`.", "",
             f"- base model weights (sha256 of the state dict): `{base['weights_sha256']}`",
             f"- edited weights (sha256 of the state dict): `{record.get('edited_weights_sha256')}`",
             f"- method settings: `{json.dumps(method['settings'], sort_keys=True)}`",
             f"- seed: {method['seed']}"]
    if method["statistics"]:
        lines.append(f"- statistics read: {', '.join(f'{k} {v}' for k, v in method['statistics'].items())}")
    if record.get("run"):
        ident = record["run"]["identity"] or {}
        lines += [f"- run: {', '.join(f'{k}={v}' for k, v in ident.items())}", "",
                  "| task | family | metric | baseline | edited |", "| --- | --- | --- | --- | --- |"]
        for task, m in (record.get("headline_metrics") or {}).items():
            lines.append(f"| {task} | {m['family']} | {m['metric']} | {_fmt(m['baseline'])} | {_fmt(m['edited'])} |")
    lines += ["", f"Full provenance: `{MARKER}`.", ""]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def save_edited(model: "torch.nn.Module", tokenizer: Any, folder: str | Path, record: dict[str, Any],
                what: str = "save_edited") -> Path:
    """Write `model` (and `tokenizer`, or an image processor; None for neither) as a save_pretrained
    folder at `folder` with the provenance `record`; return the folder. Atomic, and it replaces
    only an earlier export (check_export_target)."""
    import transformers

    transformers.utils.logging.disable_progress_bar()  # the run's own progress shows its steps
    folder = check_export_target(folder, what)
    record = {**record, "edited_weights_sha256": weights_digest(model)}
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    old = None
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        (tmp / MARKER).write_text(json.dumps(record, indent=1, default=str) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(model_card(record), encoding="utf-8")
        for path in tmp.iterdir():  # on disk before the rename makes the folder visible
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        if folder.is_dir() and any(folder.iterdir()):  # an earlier export (checked above): set it aside
            old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".old"))
            os.replace(folder, old / folder.name)
        os.replace(tmp, folder)  # onto a missing or empty folder
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return folder


class RunExport:
    """The pipeline's export of one run (`save_edited=<dir>`): `begin` digests the base weights
    before the method edits them, `finish` writes the folder once the run is complete."""

    def __init__(self, folder: Path, base_digest: str) -> None:
        self.folder, self.base_digest = folder, base_digest

    @classmethod
    def begin(cls, config: dict[str, Any], model: "torch.nn.Module") -> "RunExport | None":
        if not config.get("save_edited"):
            return None
        return cls(check_export_target(config["save_edited"]), weights_digest(model))

    def finish(self, loaded: Any, run: dict[str, Any]) -> dict[str, Any]:
        """Write the export of finished `run`; return what the run file records about it."""
        config = run["config"]
        record = provenance(base_name=loaded.name, base_key=loaded.key, base_digest=self.base_digest,
                            method_label=run["identity"]["method"], method_settings=config["method"],
                            report=run["method"]["report"], seed=config["seed"], run=run)
        processor = loaded.tokenizer if loaded.tokenizer is not None else getattr(loaded, "processor", None)
        folder = save_edited(loaded.model, processor, self.folder, record)
        written = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        return {"folder": str(folder), "edited_weights_sha256": written["edited_weights_sha256"],
                "base_weights_sha256": self.base_digest}
