"""python -m leaderboard [RUN_DIR ...] [--out DIR]: regenerate the leaderboard from run files."""

from __future__ import annotations

import sys
from pathlib import Path

from core.errors import HarnessError, OneLineParser

DEFAULT_OUT = Path("leaderboard/generated")


def build(run_dirs: list[Path], out: Path, html_page: bool = True, parquet: bool = True) -> dict:
    """Read the runs, write every output under `out`; return counts and written paths."""
    from core.io import atomic_write_text
    from leaderboard import aggregate, headline, plots, render, render_attacks
    from leaderboard.collect import collect

    runs, skipped = collect(run_dirs)
    long = aggregate.long_table(runs)
    summary = aggregate.summary_table(long) if not long.empty else long
    sections = render.build_sections(summary, long) if not long.empty else []
    top = headline.headline_table(long, aggregate.run_table(runs))  # issue 18: ranking at matched utility
    top_sections = render.build_headline_sections(long, top) if not long.empty else []
    out.mkdir(parents=True, exist_ok=True)
    written = []
    attacks = aggregate.attack_long_table(runs)  # issue 16: attack columns, when runs have them
    attack_summary = aggregate.attack_summary(attacks) if not attacks.empty else attacks
    attack_sections = render_attacks.build_attack_sections(attack_summary)
    atomic_write_text(out / "leaderboard.md", render.markdown(sections, len(runs), run_dirs, top_sections)
                      + render_attacks.attack_markdown(attack_sections))
    render.write_csv(top, out / "headline.csv")
    render.write_csv(long, out / "runs.csv")
    render.write_csv(summary, out / "summary.csv")
    written += [out / "leaderboard.md", out / "headline.csv", out / "runs.csv", out / "summary.csv"]
    if not attacks.empty:
        render.write_csv(attacks, out / "attacks.csv")
        written.append(out / "attacks.csv")
    if parquet and render.write_parquet(long, out / "runs.parquet"):
        written.append(out / "runs.parquet")
    if html_page:
        images: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
        if not long.empty:
            families = aggregate.family_table(long)
            for (model, suite), g in families.groupby(["model", "suite"], sort=False):
                for title, png in (("Memorization vs skills trade-off", plots.tradeoff_png(g)),
                                   ("% kept per family", plots.family_bars_png(g))):
                    if png is not None:
                        images.setdefault((model, suite), []).append((title, png))
        for key, extra in render.analysis_images(run_dirs).items():
            images.setdefault(key, []).extend(extra)
        attack_images: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
        for (model, suite), g in (attack_summary.groupby(["model", "suite"], sort=False) if not attacks.empty else []):
            png = plots.relearn_png(g)
            if png is not None:
                attack_images[(model, suite)] = [("Recovered recall vs relearning steps", png)]
        top_images: dict[tuple[str, str], bytes] = {}
        if not long.empty:
            points = headline.config_points(headline.run_scores(long))
            for sec in top_sections:
                here = points[(points.model == sec.model) & (points.suite == sec.suite)]
                png = plots.headline_png(here, f"{sec.model} · {sec.suite}") if not sec.note else None
                if png is not None:
                    top_images[(sec.model, sec.suite)] = png
        atomic_write_text(out / "index.html", render.html_page(sections, images, len(runs),  # plots are inline
                                                               render_attacks.attack_html(attack_sections, attack_images),
                                                               run_dirs, render.headline_html(top_sections, top_images)))
        written.append(out / "index.html")
    return {"runs": len(runs), "skipped": skipped, "written": written}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m leaderboard", description=__doc__.split(":", 1)[1].strip())
    parser.add_argument("run_dirs", nargs="*", type=Path, default=[Path("runs")],
                        help="folders searched recursively for run files (default: runs)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--no-html", action="store_true", help="skip the HTML page and its plots")
    parser.add_argument("--no-parquet", action="store_true", help="skip runs.parquet (written when pyarrow is importable)")
    args = parser.parse_args(argv)
    try:
        from core.io import check_writable_dir

        check_writable_dir(args.out, "--out")  # before reading every run file
        result = build(args.run_dirs, args.out, html_page=not args.no_html, parquet=not args.no_parquet)
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # e.g. a full disk: every output is written atomically, so none is left half-written
        print(f"error: could not write the leaderboard under --out={args.out}: {e.strerror or e}"
              f"{f' ({e.filename})' if e.filename else ''}; no file there is half-written", file=sys.stderr)
        return 2
    print(f"{result['runs']} runs; skipped {result['skipped']} files")
    for path in result["written"]:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
