"""Limits a reader keeps against hostile or broken archives (after containers/image ``iolimits``)."""

from __future__ import annotations

from dataclasses import dataclass

from ..tario.compression import ExpansionBudget

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    manifest_bytes: int = 4 * MiB
    """An OCI manifest, index or image config."""
    manifest_json_bytes: int = 1 * MiB
    """A docker-archive's ``manifest.json``."""
    metadata_total: int = 64 * MiB
    """All small JSON members kept in memory while streaming."""
    index_depth: int = 8
    """Indexes nested deeper than this are refused."""
    members: int = 1_000_000
    """Tar members in one archive."""
    expansion_ratio: int = ExpansionBudget.DEFAULT_RATIO
    """Decompressed bytes per input byte (see :class:`ExpansionBudget`)."""
    expansion_floor: int = ExpansionBudget.DEFAULT_FLOOR
    """Decompressed bytes always allowed, whatever the ratio."""
    nesting: int = 2
    """How deep an image archive inside a wrapper archive is looked for."""

    def budget(self) -> ExpansionBudget:
        return ExpansionBudget(self.expansion_ratio, self.expansion_floor)
