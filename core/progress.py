"""Progress that talks in a log file too.

`make_progress()` gives rich's live Progress on a terminal; when stdout is not a terminal (a
cluster job, `nohup ... > log.txt`, CI) rich's transient display prints nothing until the end, so
it gives `LogProgress` instead: the same calls (add_task / advance / update / remove_task, used as
a context manager) print one plain line per task at most every `interval` seconds, plus its first
step and its end:

    [progress] K-FAC statistics: 12,000/200,000 (6%) 1,534/s ETA 2m03s

The interval is `interval` or the HARNESS_PROGRESS_INTERVAL environment variable (seconds,
default 30). Everything that creates a Progress calls `make_progress`; everything that receives
one uses only the calls above, so either kind works.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

DEFAULT_INTERVAL = 30.0


def format_duration(seconds: float) -> str:
    """2m03s, 1h02m, 45s."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def progress_line(description: str, done: float, total: float | None, elapsed: float) -> str:
    """One log line: done/total, percent, rate and ETA (what is known)."""
    count = f"{done:,.0f}" + (f"/{total:,.0f} ({100 * done / total:.0f}%)" if total else "")
    rate = done / elapsed if elapsed > 0 else 0.0
    parts = [f"[progress] {description}: {count}"]
    if rate > 0:
        parts.append(f"{rate:,.1f}/s" if rate < 10 else f"{rate:,.0f}/s")
        if total:
            remaining = max(total - done, 0) / rate
            parts.append(f"ETA {format_duration(remaining)}" if done < total else f"took {format_duration(elapsed)}")
    return " ".join(parts)


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float = 0.0
    start: float = field(default_factory=time.monotonic)
    last_print: float | None = None
    printed: float | None = None  # `completed` as of the last line


class LogProgress:
    """rich.progress.Progress's task API, printing plain lines at an interval (see module doc)."""

    def __init__(self, interval: float | None = None, stream: TextIO | None = None,
                 clock: Any = time.monotonic) -> None:
        if interval is None:
            interval = float(os.environ.get("HARNESS_PROGRESS_INTERVAL", DEFAULT_INTERVAL))
        self.interval, self.stream, self.clock = interval, stream, clock
        self.tasks: dict[int, _Task] = {}
        self._next_id = 0

    def __enter__(self) -> "LogProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        now = self.clock()  # where each task ended, if its last line said less
        for task in self.tasks.values():
            if task.printed != task.completed:
                self._print(task, now)

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        task_id, self._next_id = self._next_id, self._next_id + 1
        self.tasks[task_id] = _Task(description, total, start=self.clock())
        return task_id

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def update(self, task_id: int, *, advance: float | None = None, completed: float | None = None,
               total: float | None = None, description: str | None = None, **_: Any) -> None:
        task = self.tasks[task_id]
        if total is not None:
            task.total = total
        if description is not None:
            task.description = description
        if completed is not None:
            task.completed = completed
        if advance is not None:
            task.completed += advance
        now = self.clock()
        finished = task.total is not None and task.completed >= task.total
        if task.last_print is None or finished or now - task.last_print >= self.interval:
            self._print(task, now)

    def remove_task(self, task_id: int) -> None:
        self.tasks.pop(task_id, None)

    def _print(self, task: _Task, now: float) -> None:
        task.last_print, task.printed = now, task.completed
        stream = self.stream or sys.stdout
        print(progress_line(task.description, task.completed, task.total, now - task.start), file=stream, flush=True)


def make_progress(console: Any = None, transient: bool = True, interval: float | None = None) -> Any:
    """rich's live Progress on a terminal, LogProgress otherwise (stdout redirected to a file)."""
    from rich.console import Console
    from rich.progress import Progress

    console = console or Console()
    if console.is_terminal:
        return Progress(console=console, transient=transient)
    return LogProgress(interval=interval, stream=console.file)
