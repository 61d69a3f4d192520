"""Reporting training progress: a rich progress bar, plain lines for log files, or nothing."""
from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text


def format_losses(values: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4g}" for k, v in values.items())


class _SpeedColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:.1f} it/s" if task.speed else "-- it/s", style="progress.data.speed")


class Reporter:
    """Prints notes only; the base of the others."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)

    def note(self, message: str) -> None:
        """A message for the user (warnings, choices made)."""
        self.console.print(message, soft_wrap=True)

    def start(self, total: int, done: int) -> None: ...

    def advance(self, done: int) -> None: ...

    def log(self, done: int, values: dict[str, float]) -> None: ...

    def close(self) -> None: ...


class RichReporter(Reporter):
    """Progress bar: step, each loss term (refreshed at logged steps), it/s, ETA."""

    def start(self, total: int, done: int) -> None:
        self.progress = Progress(
            TextColumn("step {task.completed}/{task.total}"), BarColumn(), TextColumn("{task.fields[losses]}"),
            _SpeedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=self.console,
        )
        self.task = self.progress.add_task("fit", total=total, completed=done, losses="")
        self.progress.start()

    def advance(self, done: int) -> None:
        self.progress.update(self.task, completed=done)

    def log(self, done: int, values: dict[str, float]) -> None:
        self.progress.update(self.task, completed=done, losses=format_losses(values))

    def close(self) -> None:
        self.progress.stop()


class PlainReporter(Reporter):
    """One plain line at the first logged step after every 10% of the steps or every
    ``interval_s`` seconds, whichever comes first, and at the end: for log files."""

    def __init__(self, console: Console | None = None, interval_s: float = 60.0) -> None:
        super().__init__(console)
        self.interval_s = interval_s

    def start(self, total: int, done: int) -> None:
        self.total, self.first, self.began = total, done, time.perf_counter()
        self.every = max(1, total // 10)
        self.next = (done // self.every + 1) * self.every
        self.last_line = self.began

    def log(self, done: int, values: dict[str, float]) -> None:
        now = time.perf_counter()
        if done < self.next and done != self.total and now - self.last_line < self.interval_s:
            return
        self.next, self.last_line = (done // self.every + 1) * self.every, now
        rate = (done - self.first) / max(time.perf_counter() - self.began, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else 0.0
        self.console.print(f"step {done}/{self.total}  {format_losses(values)}  {rate:.1f} it/s  "
                           f"ETA {eta:.0f}s", soft_wrap=True)


def default_reporter(quiet: bool) -> Reporter:
    """A progress bar on a terminal; plain lines with ``quiet`` or when the output is not a terminal
    (a log file, a pipe, CI, nohup), where a progress bar would show nothing."""
    console = Console(stderr=True, highlight=False)
    return PlainReporter(console) if quiet or not console.is_terminal else RichReporter(console)


class SilentReporter(Reporter):
    """Reports nothing (the data-parallel processes other than rank 0)."""

    def note(self, message: str) -> None:
        pass
