"""Choosing among the platforms a multi-platform index lists (case C10)."""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass
from typing import Any

from ..errors import ArchiveError, UsageError
from ..oci.descriptor import Descriptor, Platform
from .model import Findings

_MACHINES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def host_platform() -> Platform:
    machine = _platform.machine().lower()
    return Platform(os="linux", architecture=_MACHINES.get(machine, machine))


def parse_platform(text: str) -> Platform:
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/arm64")
    return Platform(
        os=parts[0], architecture=parts[1], variant=parts[2] if len(parts) == 3 else None
    )


def matches(have: Platform | None, wanted: Platform) -> bool:
    if have is None:
        return False
    if (have.os, have.architecture) != (wanted.os, wanted.architecture):
        return False
    return wanted.variant is None or have.variant == wanted.variant


@dataclass
class Candidate:
    """One manifest an index (or nested indexes) lists."""

    descriptor: Descriptor
    data: dict[str, Any] | None
    platform: Platform | None
    attestation: bool
    complete: bool

    @property
    def shown(self) -> str:
        return str(self.platform) if self.platform else "no platform"


def is_attestation(descriptor: Descriptor) -> bool:
    p = descriptor.platform
    if p is not None and p.os == "unknown" and p.architecture == "unknown":
        return True
    return descriptor.annotations.get("vnd.docker.reference.type") == "attestation-manifest"


def choose(
    candidates: list[Candidate],
    wanted: Platform | None,
    *,
    all_platforms: bool,
    where: str,
    findings: Findings,
) -> list[Candidate]:
    """The manifests to read. An explicit *wanted* must be complete; else the host's, or the one."""
    real = [c for c in candidates if not c.attestation]
    listed = ", ".join(c.shown for c in real) or "none"
    if wanted is not None:
        found = [c for c in real if matches(c.platform, wanted)]
        if not found:
            raise ArchiveError(f"{where}: {wanted} is not in this archive (it lists {listed})")
        if not any(c.complete for c in found):
            raise ArchiveError(
                f"{where}: {wanted} is listed in the index but its blobs are not in this archive"
            )
        return [next(c for c in found if c.complete)]
    complete = [c for c in real if c.complete]
    if all_platforms:
        for c in real:
            if not c.complete:
                findings.warn(f"{where}: {c.shown} is listed but its blobs are not in this archive")
        return complete or real[:1]
    if len(real) <= 1:
        return real
    host = host_platform()
    for c in complete:
        if matches(c.platform, host):
            return [c]
    if len(complete) == 1:
        findings.warn(f"{where}: this host is {host}; the archive holds {complete[0].shown} only")
        return complete
    if not complete:
        raise ArchiveError(
            f"{where}: none of the platforms listed ({listed}) has all its blobs in this archive"
        )
    shown = ", ".join(c.shown for c in complete)
    raise ArchiveError(
        f"{where}: holds {shown} and none is this host's {host}; choose one with --platform"
    )
