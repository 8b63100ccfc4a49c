"""Rendering library events with rich: a story on stderr, progress bars only on a terminal."""

from __future__ import annotations

import threading

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TransferSpeedColumn

from ..reporting import Meter, NullReporter


class _RichMeter:
    def __init__(self, owner: ConsoleReporter, task: TaskID) -> None:
        self._owner = owner
        self._task = task

    def advance(self, n: int) -> None:
        self._owner.progress.advance(self._task, n)

    def close(self) -> None:
        self._owner.release(self._task)


class ConsoleReporter(NullReporter):
    """One shared progress display (hosts of a fan-out each get a bar), lines above it."""

    def __init__(self, quiet: bool = False) -> None:
        # User and remote text (labels, paths, messages) is never markup nor emoji codes.
        self.console = Console(stderr=True, highlight=False, emoji=False)
        self.quiet = quiet
        self.warnings: list[str] = []
        self.progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=self.console,
            transient=True,
        )
        self._lock = threading.Lock()
        self._active = 0

    def step(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"[green]•[/green] {escape(message)}", soft_wrap=True)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.console.print(f"[yellow]! warning:[/yellow] {escape(message)}", soft_wrap=True)

    def meter(self, label: str, total: int | None) -> Meter:
        if self.quiet or not self.console.is_terminal:
            return super().meter(label, total)
        with self._lock:
            if self._active == 0:
                self.progress.start()
            self._active += 1
            task = self.progress.add_task(escape(label), total=total)
        return _RichMeter(self, task)

    def release(self, task: TaskID) -> None:
        with self._lock:
            self.progress.remove_task(task)
            self._active -= 1
            if self._active == 0:
                self.progress.stop()
