"""Leaderboard: read run files, aggregate them, write Markdown/CSV/HTML tables and plots.

`python -m leaderboard [RUN_DIR ...] [--out DIR]` (docs/leaderboard.md). Importing this package
loads nothing heavy: pandas, scipy and matplotlib load only when the leaderboard is built.
"""
