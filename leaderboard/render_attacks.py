"""The leaderboard's attack tables (issue 16, docs/attacks.md): one per model × suite, variants as
rows, one column per attack unit as its attack declared it (core.attackrecords)."""

from __future__ import annotations

import html
import math

from leaderboard.render import FIXED, Cell, Section, _html_table, _img, _md_row, fmt_raw, legend_html, legend_markdown

ATTACK_LEGEND = """\
Does the removal last? Recall of the memorized passages no method was shown (family
`memorized_val`, strict = all suffix tokens right) after each attack, on copies of each model:
relearning k steps on half the forget set / retain text / related text (same topic, not the
passages), round-to-nearest quantization of every Linear weight (int8, int4 per channel, int4 in
groups of 128), and sampling (share of prompts with at least one exact continuation among n
samples). `unedited` = the same attack on the unedited model. One seed: 95 % interval; several:
mean ± std over seeds. See docs/attacks.md."""


def _attack_column(row, declared: dict) -> tuple[tuple, str]:
    """(sort key, header) of an attack unit's column, as its attack declared it (core.attackrecords)."""
    column = declared[row.unit]
    return (*column["rank"], row.setting), column["header"]


def build_attack_sections(summary: "pandas.DataFrame") -> list[Section]:
    """One table per model × suite: variants as rows; the headline recall without attack, then one
    column per attack unit."""
    from core.families import HEADLINE_FAMILIES

    sections = []
    if summary.empty:
        return sections
    declared = summary.attrs.get("unit_columns", {})
    for (model, suite), table in summary.groupby(["model", "suite"], sort=False):
        family = next((f for f in HEADLINE_FAMILIES if f in set(table.family)), None)
        if family is None:
            continue
        table = table[table.family == family]
        task = sorted(t for t in set(table.task) if "[" not in t)[0]
        # A task split by relearning on half of its examples counts by its held-out half.
        table = table[table.task.isin([task, f"{task}[heldout]"])]
        columns = sorted({_attack_column(r, declared) for r in table.itertuples()})
        headers = [h for _, h in columns]
        unit_of = {r.unit: _attack_column(r, declared)[1] for r in table.itertuples()}
        table = table.assign(column=[unit_of[u] for u in table.unit])
        sec = Section(model, suite, [f"{family}: {task} no attack"] + headers)
        # Unedited row: the unedited model attacked (the same in every run of one seed and attack
        # config; the run with the most seeds gives it).
        widest = table[table.seeds == table.seeds.max()]
        first = widest.iloc[0]
        row = [Cell("unedited"), Cell(""), Cell(str(int(first.seeds)))]
        row.append(Cell(fmt_raw(first.baseline_no_attack_mean, first.baseline_no_attack_std, math.nan, math.nan)))
        for h in headers:
            g = widest[widest.column == h]
            row.append(Cell("") if g.empty else Cell(fmt_raw(g.baseline_mean.iloc[0], g.baseline_std.iloc[0],
                                                             g.baseline_ci_low.iloc[0], g.baseline_ci_high.iloc[0])))
        sec.raw_rows.append(row)
        for v in dict.fromkeys(table.variant):
            g = table[table.variant == v]
            cells = [Cell(v), Cell(g.data_needed.iloc[0]), Cell(str(int(g.seeds.max())))]
            cells.append(Cell(fmt_raw(g.edited_no_attack_mean.iloc[0], g.edited_no_attack_std.iloc[0], math.nan, math.nan)))
            for h in headers:
                r = g[g.column == h]
                cells.append(Cell("") if r.empty else Cell(fmt_raw(r.edited_mean.iloc[0], r.edited_std.iloc[0],
                                                                   r.edited_ci_low.iloc[0], r.edited_ci_high.iloc[0])))
            sec.raw_rows.append(cells)
        sections.append(sec)
    return sections


def attack_markdown(sections: list[Section]) -> str:
    if not sections:
        return ""
    out = ["# Attacks: does the removal last?", ""]
    for sec in sections:
        header = [Cell(h) for h in FIXED + sec.columns]
        rule = "|" + "|".join(["---"] * 3 + ["---:"] * len(sec.columns)) + "|"
        out += [f"## {sec.title}", "", _md_row(header), rule] + [_md_row(r) for r in sec.raw_rows] + [""]
    return "\n".join(out + legend_markdown(ATTACK_LEGEND, "How to read the attack tables"))


def attack_html(sections: list[Section], images: dict[tuple[str, str], list[tuple[str, bytes]]]) -> str:
    if not sections:
        return ""
    parts = ["<h1>Attacks: does the removal last?</h1>"]
    for sec in sections:
        parts += [f"<h2>{html.escape(sec.title)}</h2>", _html_table(FIXED + sec.columns, sec.raw_rows)]
        for title, png in images.get((sec.model, sec.suite), []):
            parts += _img(title, png)
    return "\n".join(parts + [legend_html(ATTACK_LEGEND, "How to read the attack tables")])
