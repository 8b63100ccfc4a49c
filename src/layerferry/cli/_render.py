"""Rendering library events with rich: a story on stderr, progress bars only on a terminal."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from ..reporting import Meter, NullReporter


class _RichMeter:
    def __init__(self, progress: Progress, label: str, total: int | None) -> None:
        self._progress = progress
        self._task = progress.add_task(label, total=total)
        progress.start()

    def advance(self, n: int) -> None:
        self._progress.advance(self._task, n)

    def close(self) -> None:
        self._progress.stop()


class ConsoleReporter(NullReporter):
    def __init__(self, quiet: bool = False) -> None:
        self.console = Console(stderr=True, highlight=False)
        self.quiet = quiet
        self.warnings: list[str] = []

    def step(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"[green]•[/green] {message}", soft_wrap=True)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.console.print(f"[yellow]! warning:[/yellow] {message}", soft_wrap=True)

    def meter(self, label: str, total: int | None) -> Meter:
        if self.quiet or not self.console.is_terminal:
            return super().meter(label, total)
        progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=self.console,
            transient=True,
        )
        return _RichMeter(progress, label, total)
