"""Tables for people: Markdown and a static HTML page (plots inline), plus CSV/Parquet for pandas.

One table pair per model × suite: methods as rows, task instances (grouped by family, in the
paper's Figure 3 order) as columns. The first table shows the primary metric as % of the
unedited model ("% kept", see leaderboard/aggregate.py), best per column in bold; the second the
raw numbers with 95 % intervals (one seed) or mean ± std (several seeds). Markdown and CSV hold
no timestamps and use fixed float formats, so the same runs give byte-identical files.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path

from core.families import family_goal, family_rank
from core.io import atomic_path
from core.runcolumns import MethodColumn
from leaderboard.aggregate import REFERENCE_METHODS

NO_BEST_METHODS = REFERENCE_METHODS  # the unedited reference is shown but never marked best


@dataclass
class Cell:
    text: str
    bold: bool = False


@dataclass
class Section:
    model: str
    suite: str
    columns: list[str]  # header texts after the fixed ones
    pct_rows: list[list[Cell]] = field(default_factory=list)
    raw_rows: list[list[Cell]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.model} · {self.suite}"


FIXED = ["method", "data needed", "seeds"]


def _finite(x: float) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def fmt_pct(mean: float, std: float) -> str:
    if not _finite(mean):
        return "n/a"
    return f"{mean:.1f}" + (f" ± {std:.1f}" if _finite(std) else "")


def fmt_raw(mean: float, std: float, lo: float, hi: float) -> str:
    if not _finite(mean):
        return "n/a"
    if _finite(std):
        return f"{mean:.4f} ± {std:.4f}"
    return f"{mean:.4f}" + (f" [{lo:.4f}, {hi:.4f}]" if _finite(lo) else "")


def build_sections(summary: "pandas.DataFrame", long: "pandas.DataFrame") -> list[Section]:
    from core.measures import mean_std

    sections = []
    for (model, suite), table in summary.groupby(["model", "suite"], sort=False):
        tasks = list(dict.fromkeys(table.task))  # summary is already in family order
        info = table.drop_duplicates("task").set_index("task")
        cols = []
        for t in tasks:
            fam, metric = info.family[t], info.metric[t]
            arrow = {"remove": "↓", "keep": "↑", "reference": "·"}[family_goal(fam)]
            cols.append(f"{fam}{'' if t == fam else ': ' + t} ({metric}) {arrow}")
        sec = Section(model, suite, cols)
        variants = list(dict.fromkeys(table.variant))
        cells = {(r.variant, r.task): r for r in table.itertuples()}
        # Best per column: the lowest mean % kept for 'remove' families, the highest otherwise,
        # compared at display precision (ties all bold).
        best: dict[str, float] = {}
        for t in tasks:
            vals = [round(cells[v, t].pct_kept_mean, 1) for v in variants if (v, t) in cells
                    and cells[v, t].method not in NO_BEST_METHODS and _finite(cells[v, t].pct_kept_mean)]
            if vals and family_goal(info.family[t]) != "reference":
                best[t] = min(vals) if family_goal(info.family[t]) == "remove" else max(vals)
        # Unedited row: each baseline evaluation once (the runs on one seed and organism share it;
        # another organism seed is another unedited model), averaged per seed (replicate), then
        # mean ± std over the seeds: two baselines of one seed are one seed.
        prim = long[(long.model == model) & (long.suite == suite) & long.primary]
        base = prim.drop_duplicates(["baseline_key", "task"])
        row = [Cell("unedited"), Cell(""), Cell(str(base.replicate.nunique()))]
        for t in tasks:
            b = base[base.task == t]
            m, s = mean_std(b.groupby("replicate", sort=False).baseline.mean().tolist())
            lo, hi = (b.baseline_ci_low.iloc[0], b.baseline_ci_high.iloc[0]) if len(b) == 1 else (math.nan, math.nan)
            row.append(Cell(fmt_raw(m, s, lo, hi)))
        sec.raw_rows.append(row)
        for v in variants:
            first = next(cells[v, t] for t in tasks if (v, t) in cells)
            head = [Cell(v), Cell(first.data_needed), Cell(str(first.seeds))]
            pct, raw = list(head), list(head)
            for t in tasks:
                r = cells.get((v, t))
                if r is None:
                    pct.append(Cell("")), raw.append(Cell(""))
                    continue
                is_best = (t in best and r.method not in NO_BEST_METHODS and _finite(r.pct_kept_mean)
                           and round(r.pct_kept_mean, 1) == best[t])
                pct.append(Cell(fmt_pct(r.pct_kept_mean, r.pct_kept_std), is_best))
                raw.append(Cell(fmt_raw(r.edited_mean, r.edited_std, r.edited_ci_low, r.edited_ci_high)))
            sec.pct_rows.append(pct)
            sec.raw_rows.append(raw)
        sections.append(sec)
    return sections


LEGEND = """\
Columns: one per task instance, `family: task (primary metric)`; ↓ = a family whose content the
method should remove (lower % kept is better), ↑ = a skill to keep (higher is better), · = a
chance-level reference (never-trained control passages: no best). Best per
column in **bold** (the unedited reference `none` is never marked). `data needed`: what the method
was given besides general text. % kept = edited / unedited × 100 of the primary metric, except
for lower-is-better metrics of skills (perplexity's mean NLL): unedited / edited × 100, so below
100 always means worse. n/a: the unedited value is 0. Several seeds: mean ± std over seeds; one
seed: raw values carry a 95 % interval (Wilson for proportions, bootstrap for means).
See docs/leaderboard.md."""


# --- Headline: ranking at matched utility (leaderboard/headline.py) ------------------------------

HEADLINE_TITLE = "Headline: ranking at matched utility"
HEADLINE_LEGEND = """\
Each method's best setting at matched utility. **Utility** of a run = the mean over the suite's
skill families (↑ below) of the family's % kept, itself the mean over its tasks of the primary
metric's % kept, each task capped at 100 (an edit cannot keep more than all of a skill; uncapped,
a method that improves perplexity could hide damage elsewhere); tasks whose unedited value is 0
are left out. **Memorization** of a run = % kept of the primary metric of `memorized_val` (recall
of memorized passages no method is shown), or of `memorized` when the suite has none (named in
each heading). **Selection** of a run = % kept of `memorized_tune` (the organism's tune split,
read only to choose a setting), or its memorization when the suite has no tune split. A
configuration's values: mean over its seeds (utility ± std). **Best setting at ≥ T %**: of the
method's configurations whose mean utility is ≥ T, the one with the lowest selection (ties: higher
utility), scored by its memorization; its [95 % interval] is the Wilson interval of the edited
recall pooled over its seeds (all their examples together), as % of the unedited recall pooled
the same way (the unedited recall's own noise is not in it). **Area**: R(t) = the most
memorization removed (100 − % kept) by a configuration of the method with utility ≥ t, at least 0
(the unedited model removes nothing at utility 100); area = mean of R(t) for t from 50 to 100
(100 = removes everything while keeping every skill; 0 = never removes anything without losing
more than half the skills); several seeds: also each seed's front alone, mean ± std (a seed that
lacks some configurations has a lower front). **Rank**: by memorization kept at ≥ 95 % (methods
with no setting there last), then at ≥ 90 %, then area, then name. **Membership AUC**: where the
suite has a `membership` task, its primary AUC (min-k %) of the chosen setting, mean over seeds,
with the union of the seeds' bootstrap intervals (0.5: the passages look never seen). The unedited reference `none`
is the no-edit point, not a contestant. Method seconds: median over the method's runs of its own
time, on the device named (not comparable across devices); a K-FAC run that reused cached
statistics did not pay for collecting them (counted in the cell). Statistics stream: the tokens
(or images) K-FAC and random ablation read for their curvature statistics; other methods read
none (—)."""


@dataclass
class HeadlineSection:
    model: str
    suite: str
    family: str  # the memorization family ("" when there is no table)
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""  # why there is no table
    about: str = ""  # which tasks the two axes come from

    @property
    def title(self) -> str:
        return f"Headline · {self.model} · {self.suite}" + (f" (memorization: {self.family})" if self.family else "")


def headline_columns() -> list[str]:
    from leaderboard.headline import THRESHOLDS

    cols = ["rank", "method", "data needed"]
    for t in THRESHOLDS:
        cols += [f"best setting at ≥ {t:g} %", f"memorization kept at ≥ {t:g} % [95 % CI]", f"utility at ≥ {t:g} %",
                 f"membership AUC at ≥ {t:g} % [95 % CI]"]
    return cols + ["area (t = 50–100)", "configs swept", "seeds", "method seconds (median)", "device",
                   "statistics stream"]


def _fmt_mem(mean: float, low: float, high: float) -> str:
    return f"{mean:.1f}" + (f" [{low:.1f}, {high:.1f}]" if _finite(low) and _finite(high) else "")


def _fmt_auc(mean: float, low: float, high: float) -> str:
    """A membership-inference AUC (0.5: the content looks never seen) with its interval, or —."""
    if not _finite(mean):
        return "—"
    return f"{mean:.2f}" + (f" [{low:.2f}, {high:.2f}]" if _finite(low) and _finite(high) else "")


def _fmt_statistics(unit: str, low: float, high: float) -> str:
    if not unit or not _finite(low):
        return "—"
    amount = f"{low:,.0f}" if low == high else f"{low:,.0f}–{high:,.0f}"
    return f"{amount} {unit}"


def headline_row(r, extra: "list[MethodColumn]" = ()) -> list[Cell]:
    """The cells of one headline.csv row (aggregate/headline column names); `extra`: the columns
    the methods declared (core.runcolumns): counts noted in the seconds cell, amounts in the last."""
    from leaderboard.headline import THRESHOLDS

    row = r._asdict() if hasattr(r, "_asdict") else dict(r)
    cells = [Cell(str(int(row["rank"]))), Cell(row["method"]), Cell(row["data_needed"])]
    for t in THRESHOLDS:
        tag = f"{t:g}"
        if not row[f"variant_{tag}"]:
            cells += [Cell(f"none ≥ {tag} %"), Cell("—"), Cell("—"), Cell("—")]
            continue
        seeds = int(row[f"seeds_{tag}"])
        label = row[f"variant_{tag}"] + (f", {seeds} of {int(row['seeds'])} seeds" if seeds != row["seeds"] else "")
        cells += [Cell(label), Cell(_fmt_mem(row[f"memorization_{tag}"], row[f"memorization_ci_low_{tag}"],
                                             row[f"memorization_ci_high_{tag}"])),
                  Cell(fmt_pct(row[f"utility_{tag}"], row[f"utility_std_{tag}"])),
                  Cell(_fmt_auc(row[f"membership_{tag}"], row[f"membership_ci_low_{tag}"],
                                row[f"membership_ci_high_{tag}"]))]
    area = f"{row['area']:.1f}"
    if row["seeds"] > 1 and _finite(row["area_seed_std"]):
        area += f" (per seed {row['area_seed_mean']:.1f} ± {row['area_seed_std']:.1f})"
    seconds = f"{row['method_seconds_median']:.1f}" if _finite(row["method_seconds_median"]) else "—"
    for c in extra:
        if c.role == "count" and row[f"{c.name}_hits"]:
            seconds += f" ({int(row[f'{c.name}_hits'])} of {int(row['runs'])} runs {c.what})"
    amounts = [_fmt_statistics(row[f"{c.name}_unit"], row[f"{c.name}_min"], row[f"{c.name}_max"])
               for c in extra if c.role == "amount"]
    cells += [Cell(area), Cell(str(int(row["configs"]))), Cell(str(int(row["seeds"]))), Cell(seconds),
              Cell(row["device"]), Cell("; ".join(a for a in amounts if a != "—") or "—")]
    return cells


def build_headline_sections(long: "pandas.DataFrame", table: "pandas.DataFrame") -> list[HeadlineSection]:
    """One section per model × suite of the long table: the headline rows (headline.headline_table),
    or a note saying why there are none."""
    from core.runcolumns import from_record
    from leaderboard.headline import no_headline_reason

    extra = [from_record(e) for e in table.attrs.get("method_columns", [])]
    sections = []
    for (model, suite), g in long.groupby(["model", "suite"], sort=False):
        rows = table[(table.model == model) & (table.suite == suite)]
        reason = no_headline_reason(g.family, g.method)
        if reason is not None or rows.empty:
            sections.append(HeadlineSection(model, suite, "", note=f"No headline: {reason or 'no method to rank'}."))
            continue
        family = rows.memorization_family.iloc[0]
        prim = g[g.primary].drop_duplicates("task")
        skills = sorted({f for f in prim.family if family_goal(f) == "keep"}, key=family_rank)
        # A skill whose % kept is never finite (unedited value 0 in every run) is in no utility.
        finite = set(g[g.primary & g.pct_kept.map(math.isfinite)].family)
        mem_tasks = prim[prim.family == family]
        mem = ", ".join(f"{t} ({m})" for t, m in zip(mem_tasks.task, mem_tasks.metric))
        about = (f"Memorization: `{family}`: {mem}. Utility over the skill families "
                 f"{', '.join(f for f in skills if f in finite)}"
                 + "".join(f"; {f} left out (its unedited value is 0)" for f in skills if f not in finite) + ".")
        sections.append(HeadlineSection(model, suite, family, [headline_row(r, extra) for r in rows.itertuples(index=False)],
                                        about=about))
    return sections


LEGEND_SUMMARY = "How to read this table"


def legend_markdown(text: str, summary: str = LEGEND_SUMMARY) -> list[str]:
    """A legend as a collapsible block after the tables it explains (results first, definitions on
    demand): <details> renders folded on GitHub and in the HTML page, Markdown inside it intact."""
    return ["<details>", f"<summary>{html.escape(summary)}</summary>", "", text, "", "</details>", ""]


def headline_markdown(sections: list[HeadlineSection]) -> list[str]:
    if not sections:
        return []
    cols = headline_columns()
    out = [f"## {HEADLINE_TITLE}", ""]
    for sec in sections:
        out += [f"### {sec.title}", ""]
        if sec.note:
            out += [sec.note, ""]
            continue
        out += [sec.about, "", _md_row([Cell(c) for c in cols]), "|" + "|".join(["---:"] + ["---"] * (len(cols) - 1)) + "|"]
        out += [_md_row(r) for r in sec.rows] + [""]
    return out + legend_markdown(HEADLINE_LEGEND, "How to read the headline")


def _md_row(cells: list[Cell]) -> str:
    def one(c: Cell) -> str:
        text = c.text.replace("|", "\\|")
        return f"**{text}**" if c.bold and text else text
    return "| " + " | ".join(one(c) for c in cells) + " |"


def sources_line(n_runs: int, run_dirs: list[Path]) -> str:
    """Which run folders the page was built from, as given on the command line (the output folder
    is left out: the same runs give the same bytes wherever they are written)."""
    dirs = " ".join(Path(d).as_posix() for d in run_dirs)
    return (f"{n_runs} runs read from {', '.join(f'`{Path(d).as_posix()}`' for d in run_dirs)}. "
            f"Regenerate with `python -m leaderboard {dirs} --out <folder>`.")


def markdown(sections: list[Section], n_runs: int, run_dirs: list[Path],
             headline: list[HeadlineSection] | None = None) -> str:
    out = ["# Leaderboard", "", sources_line(n_runs, run_dirs), ""] + headline_markdown(headline or [])
    if headline:
        out += ["## All configurations", ""]
    if not sections:
        out += ["No complete runs found.", ""]
    for sec in sections:
        header = [Cell(h) for h in FIXED + sec.columns]
        rule = "|" + "|".join(["---"] * 3 + ["---:"] * len(sec.columns)) + "|"
        out += [f"## {sec.title}", "", "### % of unedited (primary metric)", "", _md_row(header), rule]
        out += [_md_row(r) for r in sec.pct_rows]
        out += ["", "### Raw values", "", _md_row(header), rule]
        out += [_md_row(r) for r in sec.raw_rows]
        out.append("")
    if sections:
        out += legend_markdown(LEGEND, "How to read the tables of all configurations")
    return "\n".join(out)


def write_csv(df: "pandas.DataFrame", path: Path) -> None:
    """Atomically (core.io.atomic_path): a full disk leaves the old file, never a truncated one."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")


def write_parquet(df: "pandas.DataFrame", path: Path) -> bool:
    """Parquet beside the CSV when pyarrow is importable; False (nothing written) otherwise."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return True


def _html_table(header: list[str], rows: list[list[Cell]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{'<b>' if c.bold else ''}{html.escape(c.text)}{'</b>' if c.bold else ''}</td>"
                         for c in row) + "</tr>"
        for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# Runs first in <head>: records any script error, then on load checks every image decoded and
# writes the verdict into #page-status (data-status="ok" or "error"), which the browser test reads.
PAGE_CHECK = """<script>
window.pageErrors = [];
function showStatus() {
  var el = document.getElementById('page-status');
  if (!el) return;
  var bad = [];
  for (var i = 0; i < document.images.length; i++) {
    var img = document.images[i];
    if (!img.complete || img.naturalWidth === 0) bad.push('image not loaded: ' + img.alt);
  }
  var problems = window.pageErrors.concat(bad);
  el.setAttribute('data-status', problems.length ? 'error' : 'ok');
  el.textContent = problems.length ? problems.join('; ')
                                   : 'page check ok: ' + document.images.length + ' images loaded';
}
window.onerror = function (msg, src, line) { window.pageErrors.push('script error: ' + msg + ' (line ' + line + ')'); showStatus(); };
window.addEventListener('load', showStatus);
</script>"""

STYLE = """<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #eef; }
img { max-width: 100%; }
#page-status { color: #777; font-size: 0.8em; }
details.legend { margin: 0.5em 0 1.5em; max-width: 60em; font-size: 0.9em; }
details.legend summary { cursor: pointer; color: #335; }
code { background: #f3f3f6; padding: 0 2px; }
</style>"""


def analysis_images(run_dirs: list[Path]) -> dict[tuple[str, str], list[tuple[str, bytes]]]:
    """PNG plots `python -m studies.analyze` wrote under <run dir>/analysis/<model>/<suite>/, if
    any, for the page's model × suite sections (optional: none is fine)."""
    images: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
    for run_dir in map(Path, run_dirs):
        for png in sorted((run_dir / "analysis").glob("*/*/*.png")):
            model, suite = png.parent.parent.name, png.parent.name
            images.setdefault((model, suite), []).append((f"Curvature analysis: {png.stem}", png.read_bytes()))
    return images


def _img(title: str, png: bytes) -> list[str]:
    data = base64.b64encode(png).decode("ascii")
    return [f"<h3>{html.escape(title)}</h3>", f"<img alt=\"{html.escape(title)}\" src=\"data:image/png;base64,{data}\">"]


def _markdown_it() -> "markdown_it.MarkdownIt":
    """CommonMark with raw HTML off (text is escaped, never passed through). markdown-it-py comes
    with rich, a dependency."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False})


def md_inline(text: str) -> str:
    """One line of the Markdown the tables are written in (`code`, **bold**, [links](…)) as HTML."""
    return _markdown_it().renderInline(text).replace("\n", " ")


def md_block(text: str) -> str:
    """Paragraphs of Markdown as HTML."""
    return _markdown_it().render(text).strip()


def legend_html(text: str, summary: str = LEGEND_SUMMARY) -> str:
    """A legend folded into <details> after the results it explains."""
    return f"<details class=\"legend\"><summary>{html.escape(summary)}</summary>\n{md_block(text)}\n</details>"


def headline_html(sections: list[HeadlineSection], images: dict[tuple[str, str], bytes]) -> str:
    if not sections:
        return ""
    parts = [f"<h2>{html.escape(HEADLINE_TITLE)}</h2>"]
    for sec in sections:
        parts.append(f"<h3>{html.escape(sec.title)}</h3>")
        if sec.note:
            parts.append(f"<p>{html.escape(sec.note)}</p>")
            continue
        parts += [f"<p>{md_inline(sec.about)}</p>", _html_table(headline_columns(), sec.rows)]
        if (sec.model, sec.suite) in images:
            parts += _img(f"Memorization kept vs utility: {sec.model} · {sec.suite}", images[(sec.model, sec.suite)])
    parts.append(legend_html(HEADLINE_LEGEND, "How to read the headline"))
    return "\n".join(parts)


def html_page(sections: list[Section], images: dict[tuple[str, str], list[tuple[str, bytes]]], n_runs: int,
              extra_html: str = "", run_dirs: list[Path] | None = None, headline_part: str = "") -> str:
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
             "<title>Leaderboard</title>", STYLE, PAGE_CHECK, "</head><body>",
             "<h1>Leaderboard</h1>",
             f"<p>{md_inline(sources_line(n_runs, run_dirs)) if run_dirs else f'{n_runs} runs.'}</p>"]
    if headline_part:
        parts += [headline_part, "<h2>All configurations</h2>"]
    if not sections:
        parts.append("<p>No complete runs found.</p>")
    for sec in sections:
        header = FIXED + sec.columns
        parts += [f"<h2>{html.escape(sec.title)}</h2>", "<h3>% of unedited (primary metric)</h3>",
                  _html_table(header, sec.pct_rows), "<h3>Raw values</h3>", _html_table(header, sec.raw_rows)]
        for title, png in images.get((sec.model, sec.suite), []):
            parts += _img(title, png)
    if sections:
        parts.append(legend_html(LEGEND, "How to read the tables of all configurations"))
    if extra_html:
        parts.append(extra_html)
    parts += ["<p id=\"page-status\" data-status=\"pending\">page check pending</p>", "</body></html>", ""]
    return "\n".join(parts)
