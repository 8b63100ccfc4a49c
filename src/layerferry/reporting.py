"""How library code tells its story without printing: a reporter the caller supplies.

The CLI renders events with rich; library users pass their own or none (silence).
"""

from __future__ import annotations

from typing import Protocol


class Meter(Protocol):
    def advance(self, n: int) -> None: ...

    def close(self) -> None: ...


class Reporter(Protocol):
    def step(self, message: str) -> None:
        """A milestone worth a line in the story ("committed web as app:hotfix")."""

    def warn(self, message: str) -> None:
        """Something the user must know although the operation goes on."""

    def meter(self, label: str, total: int | None) -> Meter:
        """Byte progress of one transfer."""
        ...


class _NullMeter:
    def advance(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


class NullReporter:
    def step(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def meter(self, label: str, total: int | None) -> Meter:
        return _NullMeter()


class RecordingReporter(NullReporter):
    """Keeps every step and warning; handy for tests and for ``--json`` summaries."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.warnings: list[str] = []

    def step(self, message: str) -> None:
        self.steps.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
