"""Progress lines in a log file: interval, done/total, rate, ETA."""

import io

from core.progress import LogProgress, format_duration, make_progress, progress_line


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_prints_first_step_then_at_the_interval_and_at_the_end() -> None:
    out, clock = io.StringIO(), Clock()
    with LogProgress(interval=10, stream=out, clock=clock) as progress:
        task = progress.add_task("K-FAC statistics", total=100)
        for _ in range(100):
            clock.now += 1  # one step a second
            progress.advance(task)
        progress.remove_task(task)
    lines = out.getvalue().splitlines()
    # step 1, then every 10 s (steps 11, 21, ..., 91), then the last step
    assert len(lines) == 1 + 9 + 1
    assert lines[0] == "[progress] K-FAC statistics: 1/100 (1%) 1.0/s ETA 1m39s"
    assert lines[1].startswith("[progress] K-FAC statistics: 11/100 (11%) 1.0/s ETA 1m29s")
    assert lines[-1] == "[progress] K-FAC statistics: 100/100 (100%) 1.0/s took 1m40s"


def test_update_with_advance_and_unknown_total() -> None:
    out, clock = io.StringIO(), Clock()
    progress = LogProgress(interval=0, stream=out, clock=clock)
    task = progress.add_task("training", total=None)
    clock.now = 4
    progress.update(task, advance=20)
    assert out.getvalue().splitlines() == ["[progress] training: 20 5.0/s"]


def test_line_and_duration_formats() -> None:
    assert format_duration(3725) == "1h02m" and format_duration(45) == "45s" and format_duration(123) == "2m03s"
    assert progress_line("x", 0, 10, 0.0) == "[progress] x: 0/10 (0%)"
    assert progress_line("x", 12000, 200000, 8.0) == "[progress] x: 12,000/200,000 (6%) 1,500/s ETA 2m05s"


def test_make_progress_is_plain_lines_without_a_terminal() -> None:
    from rich.console import Console

    out = io.StringIO()
    with make_progress(Console(file=out), interval=0) as progress:
        task = progress.add_task("scoring", total=2)
        progress.advance(task)
        progress.advance(task)
    assert [line.split(":")[0] for line in out.getvalue().splitlines()] == ["[progress] scoring"] * 2
    assert type(make_progress(Console(file=io.StringIO(), force_terminal=True))).__name__ == "Progress"


def test_a_task_that_stops_short_gets_its_last_line_at_exit() -> None:
    out, clock = io.StringIO(), Clock()
    with LogProgress(interval=100, stream=out, clock=clock) as progress:
        task = progress.add_task("K-FAC statistics", total=2000)
        for _ in range(3):  # the text ran out after 768 of 2000 tokens
            clock.now += 1
            progress.advance(task, 256)
    assert out.getvalue().splitlines() == ["[progress] K-FAC statistics: 256/2,000 (13%) 256/s ETA 7s",
                                           "[progress] K-FAC statistics: 768/2,000 (38%) 256/s ETA 5s"]
