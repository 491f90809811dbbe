"""Issue 29's hostile-input battery: ~100 bad inputs across every command users run (the harness
and its Hydra overrides for every method, model, suite and task key; the leaderboard; the fidelity
study; model builds; attack tables; mining; the recorded sweep; the Python API), plus a few valid
controls. Each case runs as a subprocess on a tiny saved model (seconds, not minutes) and is
classified:

    ok          bad input: exit 2, exactly one stderr line `error: ...`, early; a control: exit 0;
                input that is skipped by design (a corrupt run file): exit 0 with one `warning:` line each
    traceback   a Python traceback on stderr
    silent      exit 0 on bad input (accepted without a word)
    late        failed only after the expensive step began (baseline progress printed, a run file
                written, or more than LATE_S seconds of CPU time)
    multi-line  failed early, but not in one `error:` line
    exit-code   one line, but an exit code other than 2 (130 for Ctrl-C)
    hang        still running after the timeout
    control     a valid input that did not succeed

    python benchmarks/hostile_battery.py [--out benchmarks/hostile_battery.md] [--only SUBSTRING]

The table goes to benchmarks/hostile_battery.md (written atomically), with this command and the counts.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# A backstop in CPU seconds (wall time depends on what else the machine runs): start-up costs a
# few; the markers of the expensive step are its progress lines and the run file.
LATE_S = 45.0
TIMEOUT_S = 400.0  # wall time: on a shared machine a 10-second run has taken 3 minutes
CLASSES = ("ok", "traceback", "silent", "late", "multi-line", "exit-code", "hang", "control")


@dataclass
class Case:
    id: str
    command: str  # the module run (`python -m <command>`), or "api" (python -c)
    argv: list[str]  # {model} {verbatim} {quotes} {text} {W} {runs} are filled in
    expect: str = "error"  # error | ok (a control) | warn (exit 0 with warning lines) | interrupt
    tiny: bool = False  # harness: prepend the tiny-model arguments
    timeout: float = TIMEOUT_S


def tiny_args() -> list[str]:
    return ["model=hf", "model.path={model}", "suite=verbatim_files", "suite.tasks.verbatim.data={verbatim}",
            "suite.tasks.quotes.data={quotes}", "runs_dir={runs}", "cache_dir={W}/cache", "device=cpu"]


def h(id: str, *argv: str, expect: str = "error") -> Case:
    """`python -m harness` on the tiny model with `argv` over it."""
    return Case(id, "harness", list(argv), expect, tiny=True)


def hm(id: str, method: str, *argv: str) -> Case:
    return h(id, f"method={method}", *argv)


API_PRELUDE = """
import sys, traceback
sys.path.insert(0, {repo!r})
from core.errors import HarnessError
import harness
W = {W!r}
def tiny():
    from transformers import AutoModelForCausalLM, AutoTokenizer
    return AutoModelForCausalLM.from_pretrained(W + "/tiny/model"), AutoTokenizer.from_pretrained(W + "/tiny/model")
TINY = ["model=hf", "model.path=" + W + "/tiny/model", "suite=verbatim_files", "device=cpu",
        "suite.tasks.verbatim.data=" + W + "/tiny/verbatim.jsonl", "suite.tasks.quotes.data=" + W + "/tiny/quotes.jsonl",
        "cache_dir=" + W + "/cache"]
try:
    exec({code!r})
except Exception as e:
    frames = traceback.extract_tb(e.__traceback__)
    at_the_door = isinstance(e, TypeError) and frames[-1].filename == "<string>"  # a wrong signature
    if (isinstance(e, HarnessError) or at_the_door) and "\\n" not in str(e):
        print(f"error: {{type(e).__name__}}: {{e}}", file=sys.stderr)
        sys.exit(2)
    raise
"""


def api(id: str, code: str, expect: str = "error") -> Case:
    return Case(id, "api", [code], expect)


def cases() -> list[Case]:
    c: list[Case] = []
    # -- controls: valid inputs that must succeed
    c += [h("control-none", expect="ok"),
          h("control-kfac", "method=kfac", "model.data.stats={text}", "method.tokens=2000", "method.seq_len=32",
            expect="ok"),
          Case("control-leaderboard", "leaderboard", ["{W}/lb_runs", "--out", "{W}/lb_out", "--no-html"], "ok"),
          Case("control-harness-help", "harness", ["--help"], "ok"),
          Case("control-mine", "studies.mine", ["model=hf", "model.path={model}", "device=cpu", "cache_dir={W}/cache",
                                                "out_dir={W}/mined_ok", "prefix_len=4", "suffix_len=2",
                                                "corpus={text}", "max_windows=8"], "ok"),
          api("control-api-evaluate", "harness.evaluate(*TINY, runs_dir=W + '/api_runs')", expect="ok"),
          Case("interrupt-during-baseline", "harness", ["eval.batch_size=1", "cache_dir={W}/cache_interrupt"], "interrupt",
               tiny=True)]
    # -- K-FAC and its variants: every setting (stats data given, so the data check passes)
    kf = ["model.data.stats={text}"]
    c += [hm(f"kfac-{k}-{v}", "kfac", *kf, f"method.{k}={v}") for k, v in (
        ("rho", "abc"), ("rho", "1.5"), ("rho", "null"), ("layers", "abc"), ("layers", "[1.5]"), ("layers", "[]"),
        ("matrices", "[gate,foo]"), ("matrices", "[]"), ("overrides", "{9:{gate:0.9}}"), ("labels", "foo"), ("tokens", "0"), ("seq_len", "1"), ("seq_len", "100000"),
        ("batch_size", "2.5"), ("dtype", "float8"), ("module_pattern", "'['"), ("module_pattern", "nomatch_xyz"),
        ("layers_per_pass", "0"), ("band_size", "0"), ("images", "-1"))]
    c += [hm("kfac-overrides-layer-9", "kfac", *kf, "++method.overrides={9:{gate:0.9}}"),
          hm("kfac-overrides-rho-7", "kfac", *kf, "++method.overrides={0:{gate:7}}"),
          hm("kfac-overrides-matrix-foo", "kfac", *kf, "++method.overrides={0:{foo:0.9}}"),
          hm("kfac_paper-band_size-0", "kfac_paper", *kf, "method.band_size=0"),
          hm("kfac_paper-band_at-abc", "kfac_paper", *kf, "method.band_at=abc"),
          hm("random_ablation-rho-2", "random_ablation", *kf, "method.rho=2"),
          hm("random_ablation-layers-99", "random_ablation", *kf, "method.layers=[99]")]
    # -- SVD
    c += [hm(f"svd-{k}-{v}", "svd", f"method.{k}={v}") for k, v in (
        ("layers", "[99]"), ("fractions.gate", "2"), ("fractions.gate", "abc"), ("fractions.gate", "-0.1"),
        ("fractions", "{foo:0.5}"))]
    # -- forget/retain methods (forget and retain data given)
    fr = ["model.data.forget={verbatim}", "model.data.retain={text}"]
    c += [hm(f"{m}-{k}-{v}", m, *fr, f"method.{k}={v}") for m, k, v in (
        ("balanced_subnet", "ratio", "2"), ("balanced_subnet", "lr", "abc"), ("balanced_subnet", "micro_batch_size", "0"),
        ("balanced_subnet", "micro_batch_size", "32"), ("balanced_subnet", "retain_weight", "-1"),
        ("grad_diff", "params", "foo"), ("grad_diff", "lr", "-1"), ("grad_diff", "max_grad_norm", "0"),
        ("gradient_ascent", "epochs", "0"), ("gradient_ascent", "batch_size", "0"),
        ("gradient_ascent", "prefix_len", "-1"), ("gradient_ascent", "forget_loss_on", "middle"),
        ("gradient_ascent", "matrices", "[qkv]"), ("gradient_ascent", "lr", "inf"),
        ("neuron_zero_out", "score", "foo"), ("neuron_zero_out", "chunk", "0"), ("neuron_zero_out", "ratio", "1.5"),
        ("npo", "beta", "-1"), ("npo", "lr", "nan"))]
    c += [hm("none-extra-key", "none", "method.foo=1"), h("method-unknown", "method=bogus"),
          h("method-two-without-m", "method=kfac,npo")]
    # -- model keys
    c += [h("model-path-missing", "model.path={W}/no_such_model"), h("model-path-empty-dir", "model.path={W}/empty_dir"),
          h("model-path-a-file", "model.path={W}/afile"), h("model-dtype", "model.dtype=float8"),
          h("model-gguf-missing", "model.gguf_file=missing.gguf"), h("model-trust-not-bool", "model.trust_remote_code=maybe"),
          h("model-unknown", "model=bogus"), h("model-key-typo", "model.pth={model}"),
          h("model-stats-hf-missing", "method=kfac", "model.data.stats=hf:no/such_dataset_xyz"),
          h("model-stats-model-unknown", "method=kfac", "model.data.stats=model:nothing"),
          h("model-stats-empty-dir", "method=kfac", "model.data.stats={W}/empty_dir"),
          h("model-forget-a-dir", "method=gradient_ascent", "model.data.forget={W}/adir")]
    # -- suite and task keys, data files
    c += [h("suite-unknown", "suite=bogus"),
          h("verbatim-missing-file", "suite.tasks.verbatim.data={W}/nope.jsonl"),
          h("verbatim-a-dir", "suite.tasks.verbatim.data={W}/adir"),
          h("verbatim-empty", "suite.tasks.verbatim.data={W}/empty.jsonl"),
          h("verbatim-binary", "suite.tasks.verbatim.data={W}/binary.jsonl"),
          h("verbatim-latin1", "suite.tasks.verbatim.data={W}/latin1.jsonl"),
          h("verbatim-not-object", "suite.tasks.verbatim.data={W}/list_rows.jsonl"),
          h("quotes-empty", "suite.tasks.quotes.data={W}/empty.jsonl"),
          h("quotes-binary", "suite.tasks.quotes.data={W}/binary.jsonl"),
          h("task-unknown", "suite.tasks.verbatim.task=bogus"),
          h("task-family-custom", "suite.tasks.verbatim.family=my_family", expect="ok"),  # a new family is a skill to keep (core/families.py)
          h("task-key-typo", "suite.tasks.verbatim.foo=1"),
          h("task-limit-float", "suite.tasks.verbatim.limit=1.5"),
          h("membership-nonmembers-missing", "suite.tasks.membership.nonmembers={W}/nope.jsonl"),
          h("suite-added-task-unknown", "+suite.tasks.extra={task:bogus}")]
    # -- top-level keys, groups, grammar
    c += [h("seed-abc", "seed=abc"), h("seed-float", "seed=1.5"),
          h("device-tpu", "device=tpu"), h("device-cuda-7", "device=cuda:7"),
          h("eval-batch-abc", "eval.batch_size=abc"), h("debug-not-bool", "debug=maybe"), h("hub-not-bool", "hub=maybe"),
          h("save-edited-a-file", "save_edited={W}/afile"), h("save-edited-unwritable", "save_edited=/proc/edited"),
          h("attack-unknown", "attack=bogus"), h("attack-sample-n-0", "attack=standard", "attack.attacks.sample.n=0"),
          h("attack-quantize-scheme", "attack=standard", "attack.attacks.quantize.schemes=[int1]"),
          h("tracker-unknown", "tracker=bogus"), h("sweep-unknown", "sweep=bogus"),
          h("plus-unknown", "+unknown=1"), h("tilde-seed", "~seed"), h("tilde-method", "~method"),
          h("no-equals", "method.rho"), h("grammar-quote", "seed='1"), h("interpolation-missing-env", "seed=${oc.env:NO_SUCH_VAR_XYZ}"),
          h("interpolation-missing-key", "seed=${nope}"), h("unknown-flag", "--foo"), h("flag-between-overrides", "method=none", "-m", "seed=1"),
          h("multirun-bad-value", "-m", "method=kfac", "method.rho=0.5,abc", "model.data.stats={text}")]
    # -- other commands
    c += [Case("leaderboard-missing-dir", "leaderboard", ["{W}/no_runs", "--out", "{W}/lb1"]),
          Case("leaderboard-dir-is-file", "leaderboard", ["{W}/afile", "--out", "{W}/lb2"]),
          Case("leaderboard-bad-option", "leaderboard", ["--bogus"]),
          Case("leaderboard-garbage-runs", "leaderboard", ["{W}/garbage_runs", "--out", "{W}/lb3", "--no-html"], "warn"),
          Case("fidelity-no-command", "studies.fidelity", []),
          Case("fidelity-bogus-command", "studies.fidelity", ["bogus"]),
          Case("fidelity-reference-missing", "studies.fidelity", ["check", "--reference", "{W}/nope.json"]),
          Case("fidelity-tolerance-missing", "studies.fidelity", ["check", "--tolerance", "{W}/nope.json"]),
          Case("fidelity-seeds-abc", "studies.fidelity", ["sweep", "--seeds", "abc"]),
          Case("fidelity-bad-override", "studies.fidelity", ["check", "method.rho=abc"]),
          Case("fidelity-rhos-out-of-range", "studies.fidelity", ["sweep", "--rhos", "2", "--finished-only",
                                                                  "--out", "{W}/fs.md"]),
          Case("build-bogus-kind", "models.build", ["bogus"]),
          Case("build-seed-abc", "models.build", ["organism", "--seed", "abc"]),
          Case("build-threads-negative", "models.build", ["organism", "--threads", "-1"]),
          Case("build-seed-negative", "models.build", ["organism", "--seed", "-1"]),
          Case("tables-no-args", "attacks.tables", []),
          Case("tables-missing-file", "attacks.tables", ["{W}/nope.csv"]),
          Case("tables-a-dir", "attacks.tables", ["{W}/adir"]),
          Case("tables-empty-file", "attacks.tables", ["{W}/empty.csv"]),
          Case("tables-wrong-columns", "attacks.tables", ["{W}/nocols.csv"]),
          Case("tables-binary", "attacks.tables", ["{W}/binary.csv"])]
    mine = ["model=hf", "model.path={model}", "device=cpu", "cache_dir={W}/cache", "out_dir={W}/mined",
            "prefix_len=4", "suffix_len=2"]
    c += [Case(f"mine-{name}", "studies.mine", [*mine, *extra]) for name, extra in (
        ("no-corpus", []), ("corpus-missing", ["corpus={W}/nope.txt"]), ("corpus-a-dir-empty", ["corpus={W}/empty_dir"]),
        ("corpus-binary", ["corpus={W}/binary.txt"]),
        ("prefix-len-0", ["corpus={text}", "prefix_len=0"]), ("suffix-len-negative", ["corpus={text}", "suffix_len=-1"]),
        ("stride-0", ["corpus={text}", "stride=0"]),
        ("max-windows-abc", ["corpus={text}", "max_windows=abc"]), ("forget-fraction-abc", ["corpus={text}", "forget_fraction=abc"]),
        ("key-typo", ["corpus={text}", "strid=4"]))]
    c += [Case("sweep-no-method", "harness.sweep", []), Case("sweep-method-unknown", "harness.sweep", ["method=bogus"]),
          Case("sweep-bad-value", "harness.sweep", ["method=kfac", "method.rho=abc"])]
    # -- the Python API
    c += [api("api-evaluate-method-unknown", "harness.evaluate(*TINY, 'method=bogus')"),
          api("api-evaluate-not-a-string", "harness.evaluate(5)"),
          api("api-evaluate-bad-value", "harness.evaluate(*TINY, 'seed=abc')"),
          api("api-evaluate-sweep", "harness.evaluate(*TINY, 'method=kfac,npo')"),
          api("api-evaluate-bad-kwarg", "harness.evaluate(*TINY, runs=W)"),
          api("api-evaluate-runs-dir-file", "harness.evaluate(*TINY, runs_dir=W + '/afile')"),
          api("api-edit-no-model", "harness.edit(None, tokenizer=tiny()[1], method='kfac', data=W + '/tiny/text.txt')"),
          api("api-edit-model-a-string", "harness.edit('my_model', tokenizer=tiny()[1], method='kfac', data=W + '/tiny/text.txt')"),
          api("api-edit-method-unknown", "m, t = tiny(); harness.edit(m, t, method='bogus')"),
          api("api-edit-rho-5", "m, t = tiny(); harness.edit(m, t, method='kfac', data=W + '/tiny/text.txt', rho=5)"),
          api("api-edit-setting-typo", "m, t = tiny(); harness.edit(m, t, method='kfac', data=W + '/tiny/text.txt', rhoo=0.9)"),
          api("api-edit-stats-missing", "m, t = tiny(); harness.edit(m, t, method='kfac', data=W + '/nope.txt')"),
          api("api-edit-data-not-mapping", "m, t = tiny(); harness.edit(m, t, method='kfac', data=42)"),
          api("api-edit-seed-str", "m, t = tiny(); harness.edit(m, t, method='kfac', data=W + '/tiny/text.txt', seed='0')")]
    return c


def make_workspace(w: Path) -> None:
    sys.path[:0] = [str(REPO / "tests"), str(REPO)]
    from conftest import WORDS, make_tiny_olmo2, make_tiny_tokenizer

    tiny = w / "tiny"
    make_tiny_olmo2().save_pretrained(tiny / "model")
    make_tiny_tokenizer().save_pretrained(tiny / "model")
    rng = random.Random(0)

    def words(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))

    (tiny / "verbatim.jsonl").write_text("".join(json.dumps({"prefix_text": words(16), "suffix_text": words(8)}) + "\n"
                                                 for _ in range(6)))
    (tiny / "quotes.jsonl").write_text("".join(json.dumps({"full_quote": words(14)}) + "\n" for _ in range(6)))
    (tiny / "text.txt").write_text("\n\n".join(words(40) for _ in range(50)) + "\n")
    for d in ("adir", "empty_dir", "lb_runs"):
        (w / d).mkdir()
    (w / "adir" / "x.jsonl").write_text(json.dumps({"prefix_text": "w1", "suffix_text": "w2"}) + "\n")
    (w / "afile").write_text("x")
    for name in ("empty.jsonl", "empty.csv"):
        (w / name).write_text("")
    for name in ("binary.jsonl", "binary.csv", "binary.txt"):
        (w / name).write_bytes(bytes(range(256)) * 4)
    (w / "latin1.jsonl").write_bytes((json.dumps({"prefix_text": "w1 w2", "suffix_text": "w3"}, ensure_ascii=False)
                                      .replace("w3", "caf\u00e9") + "\n").encode("latin-1"))
    (w / "latin1.txt").write_bytes(("caf\u00e9 " * 40 + "\n").encode("latin-1"))
    (w / "list_rows.jsonl").write_text("[5, 6, 7]\n")
    (w / "nocols.csv").write_text("a,b\n1,2\n")
    (w / "garbage_runs").mkdir()
    (w / "garbage_runs" / "seed0-x.json").write_text("{oops")
    (w / "garbage_runs" / "seed1-y.json").write_bytes(bytes(range(256)))


def fill(arg: str, w: Path, runs: Path) -> str:
    tiny = w / "tiny"
    return (arg.replace("{model}", str(tiny / "model")).replace("{verbatim}", str(tiny / "verbatim.jsonl"))
            .replace("{quotes}", str(tiny / "quotes.jsonl")).replace("{text}", str(tiny / "text.txt"))
            .replace("{runs}", str(runs)).replace("{W}", str(w)))


def command_line(case: Case, w: Path, runs: Path) -> list[str]:
    if case.command == "api":
        return [sys.executable, "-c", API_PRELUDE.format(repo=str(REPO), W=str(w), code=case.argv[0])]
    flags = list(itertools.takewhile(lambda a: a.startswith("-"), case.argv))  # Hydra's flags go first
    argv = [*flags, *(tiny_args() if case.tiny else []), *case.argv[len(flags):]]
    return [sys.executable, "-m", case.command, *(fill(a, w, runs) for a in argv)]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # finished (waited-for) children
    return usage.ru_utime + usage.ru_stime


def run_case(case: Case, w: Path) -> dict:
    runs = w / "runs" / "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in case.id)
    cmd = command_line(case, w, runs)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "HARNESS_CACHE_DIR": str(w / "cache"), "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1",
           "PYTHONPATH": str(REPO), "HARNESS_PROGRESS_INTERVAL": "0"}  # every step prints: late failures show
    env.pop("HARNESS_DEBUG", None)
    start, cpu_before = time.perf_counter(), children_cpu()
    # A background job of a non-interactive shell ignores SIGINT, and its children inherit that:
    # Ctrl-C is restored to its default so that the child's Python turns it into KeyboardInterrupt.
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    hung, interrupted = False, False
    if case.expect == "interrupt":
        out_lines = []
        for line in proc.stdout:  # Ctrl-C once the baseline is under way
            out_lines.append(line)
            if line.startswith("[progress]"):
                proc.send_signal(signal.SIGINT)
                interrupted = True
                break
        rest_out, err = proc.communicate(timeout=case.timeout)
        out = "".join(out_lines) + rest_out
    else:
        try:
            out, err = proc.communicate(timeout=case.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            hung = True
    seconds, cpu = time.perf_counter() - start, children_cpu() - cpu_before
    lines = [line for line in err.splitlines() if line.strip()]
    wrote_run = runs.is_dir() and any(p.name.startswith("seed") for p in runs.rglob("*.json"))
    rc = proc.returncode
    if hung:
        cls = "hang"
    elif "Traceback (most recent call last)" in err:
        cls = "traceback"
    elif case.expect == "ok":
        cls = "ok" if rc == 0 else "control"
    elif case.expect == "warn":
        cls = "ok" if rc == 0 and lines and all(line.startswith("warning: ") for line in lines) else "silent"
    elif case.expect == "interrupt" and not interrupted:
        cls = "control"  # no baseline progress to interrupt (the battery's own setup failed)
    elif case.expect == "interrupt":
        cls = ("ok" if rc == 130 and len(lines) == 1 and lines[0].startswith("interrupted:")
               else "silent" if rc == 0 else "exit-code" if len(lines) == 1 else "multi-line")
    elif rc == 0:
        cls = "silent"
    elif "[progress]" in out or wrote_run or cpu > LATE_S:
        cls = "late"
    elif len(lines) != 1 or not lines[0].startswith("error: "):
        cls = "multi-line"
    elif rc != 2:
        cls = "exit-code"
    else:
        cls = "ok"
    shown = lines[-1] if cls == "traceback" and lines else (lines[0] if lines else "")
    return {"id": case.id, "command": case.command, "argv": [a for a in case.argv], "expect": case.expect,
            "class": cls, "rc": rc, "seconds": seconds, "cpu": cpu, "lines": len(lines),
            "message": shown.replace(str(w), "$W").replace(str(REPO), ".")}


def markdown(results: list[dict], command: str) -> str:
    counts = Counter(r["class"] for r in results)
    bad = {k: counts.get(k, 0) for k in CLASSES if k != "ok"}
    out = ["# Hostile-input battery (issue 29)", "",
           f"Generated by `{command}` (benchmarks/hostile_battery.py; do not edit by hand). Each case runs as a "
           "subprocess on a tiny saved model; bad input must end in one `error:` line on stderr, exit code 2 "
           f"(130 for Ctrl-C), before the expensive step (no baseline progress, no run file, under {LATE_S:.0f} s of "
           "CPU time; the table's seconds are wall time, on a shared machine). "
           "`$W` is the battery's temporary folder; harness cases also get the tiny model's arguments "
           "(`model=hf model.path=$W/tiny/model suite=verbatim_files ...`).", "",
           f"**{len(results)} cases: {counts.get('ok', 0)} ok**; "
           + ", ".join(f"{n} {k}" for k, n in bad.items()) + ".", "",
           "| # | command | case | input | result | exit | wall s | CPU s | stderr (first line; a traceback's last) |",
           "|---|---|---|---|---|---|---|---|---|"]

    def cell(text: str) -> str:
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= 220 else text[:217] + "..."

    for i, r in enumerate(results, 1):
        shown = " ".join(r["argv"]) if r["command"] != "api" else r["argv"][0]
        out.append(f"| {i} | {r['command']} | {r['id']} | `{cell(shown)}` | {r['class']}"
                   f"{'' if r['expect'] == 'error' else ' (' + r['expect'] + ')'} | {r['rc']} | {r['seconds']:.1f} | {r['cpu']:.1f} | "
                   f"{cell(r['message'])} |")
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "hostile_battery.md")
    parser.add_argument("--only", help="run the cases whose id contains one of these comma-separated strings "
                        "(no file is written)")
    args = parser.parse_args()
    chosen = [c for c in cases() if args.only is None or any(s in c.id for s in args.only.split(","))]
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        w = Path(tmp)
        make_workspace(w)
        results = []
        for case in chosen:
            r = run_case(case, w)
            print(f"{r['class']:10} {r['seconds']:5.1f}s cpu {r['cpu']:4.1f}s rc={r['rc']} {case.id}: {r['message'][:200]}",
                  flush=True)
            results.append(r)
    counts = Counter(r["class"] for r in results)
    print("counts: " + ", ".join(f"{k} {counts.get(k, 0)}" for k in CLASSES))
    if args.only is None:
        from core.io import atomic_write_text

        atomic_write_text(args.out, markdown(results, "python benchmarks/hostile_battery.py"))
        print(f"wrote {args.out}")
    return 0 if counts.get("ok", 0) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
