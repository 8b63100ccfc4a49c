"""``diff``: what a commit of a container would capture, with sizes, junk and secrets flagged.

Reads the container's change list and streams the changed content once (nothing is
committed, nothing written): sizes are what a layer would store. Small files are read for
content checks (private keys, core dumps), large ones are counted for zeros (sparse files,
which a layer stores at their full apparent size).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..daemon.engine import Engine, connect_local
from ..layers.entry import Kind
from ..layers.paths import parent_of
from ..layers.rules import (
    Excludes,
    Flag,
    junk_reason,
    looks_sparse,
    secret_env_names,
    secret_reason,
)
from ..reference import validate_container_name
from ..reporting import NullReporter, Reporter
from ..settings import Settings
from ..tario.stream import Readable
from .changeset import DELETED, ChangePlan, ChangeReader, Event
from .drift import Drift, config_drift

CHANGE_NAMES = {"A": "added", "C": "changed", "D": "deleted"}


@dataclass(frozen=True)
class ChangedPath:
    path: str
    change: str
    type: str
    size: int
    flags: tuple[Flag, ...] = ()
    excluded: str | None = None
    link_to: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "change": CHANGE_NAMES[self.change],
            "type": self.type,
            "size": self.size,
            "flags": [{"category": f.category, "reason": f.reason} for f in self.flags],
            "excluded": self.excluded,
            "link_to": self.link_to,
        }


@dataclass(frozen=True)
class DirTotal:
    path: str
    count: int
    size: int


@dataclass(frozen=True)
class Mount:
    destination: str
    type: str
    name: str


@dataclass
class DiffReport:
    container: str
    image: str
    paths: list[ChangedPath] = field(default_factory=list)
    env_secrets: list[str] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    unverified_links: list[str] = field(default_factory=list)

    def count(self, change: str) -> int:
        return sum(1 for p in self.paths if p.change == change)

    @property
    def total_size(self) -> int:
        """Content bytes a commit would store (excluded paths left out)."""
        return sum(p.size for p in self.paths if p.excluded is None)

    def flagged(self, category: str) -> list[ChangedPath]:
        return [p for p in self.paths if any(f.category == category for f in p.flags)]

    def directories(self) -> list[DirTotal]:
        """Changed paths grouped by their directory, largest first."""
        totals: dict[str, list[int]] = {}
        for p in self.paths:
            if p.type == "dir":
                continue
            slot = totals.setdefault(parent_of(p.path.lstrip("/")), [0, 0])
            slot[0] += 1
            slot[1] += p.size
        rows = [DirTotal("/" + d, c, s) for d, (c, s) in totals.items()]
        return sorted(rows, key=lambda r: (-r.size, r.path))

    def to_json(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "image": self.image,
            "counts": {name: self.count(c) for c, name in CHANGE_NAMES.items()},
            "total_size": self.total_size,
            "directories": [
                {"path": d.path, "count": d.count, "size": d.size} for d in self.directories()
            ],
            "paths": [p.to_json() for p in self.paths],
            "junk_size": sum(p.size for p in self.flagged("junk")),
            "secrets": [p.path for p in self.flagged("secret")],
            "env_secrets": self.env_secrets,
            "mounts": [
                {"destination": m.destination, "type": m.type, "name": m.name} for m in self.mounts
            ],
            "drift": [d.to_json() for d in self.drift],
            "unverified_links": self.unverified_links,
        }


class _Measure:
    """Reads a payload to its end, counting zero bytes (sparse files)."""

    def __init__(self, payload: Readable) -> None:
        self.zeros = 0
        self.size = 0
        while chunk := payload.read(1024 * 1024):
            self.size += len(chunk)
            self.zeros += chunk.count(0)


def _flags(event: Event, is_dir: bool, size: int, zeros: int) -> tuple[Flag, ...]:
    path = event.absolute
    small = event.entry is not None and event.entry.kind is Kind.FILE and size <= len(event.head)
    flags = []
    junk = junk_reason(path, is_dir, event.head)
    if junk:
        flags.append(Flag("junk", junk))
    secret = secret_reason(path, is_dir, event.head if small else None)
    if secret:
        flags.append(Flag("secret", secret))
    if looks_sparse(size, zeros):
        flags.append(Flag("sparse", "mostly zeros: a layer stores its full apparent size"))
    return tuple(flags)


def changed_paths(events: Iterator[Event]) -> Iterator[ChangedPath]:
    for event in events:
        entry = event.entry
        if entry is None:
            yield ChangedPath(event.absolute, DELETED, "", 0)
            continue
        size = zeros = 0
        if event.payload is not None:
            measured = _Measure(event.payload)
            size, zeros = measured.size, measured.zeros
        elif entry.kind is Kind.FILE:
            size = entry.size
        is_dir = entry.kind is Kind.DIR
        link = "/" + entry.linkname if entry.kind is Kind.HARDLINK else None
        yield ChangedPath(
            event.absolute,
            event.change,
            entry.kind.value,
            size,
            _flags(event, is_dir, size, zeros),
            event.excluded,
            link,
        )


def _mounts(info: dict[str, Any]) -> list[Mount]:
    return [
        Mount(
            str(m.get("Destination", "")),
            str(m.get("Type", "")),
            str(m.get("Name") or m.get("Source") or ""),
        )
        for m in info.get("Mounts") or []
    ]


def diff_with(engine: Engine, container: str, excludes: Excludes, reporter: Reporter) -> DiffReport:
    info = engine.container(container)
    image_id = str(info.get("Image", ""))
    image = engine.inspect_image(image_id)
    report = DiffReport(container, str(info.get("Config", {}).get("Image") or image_id))
    plan = ChangePlan.make(engine, container, info, excludes)
    report.paths = list(changed_paths(ChangeReader(plan).events()))
    report.unverified_links = plan.unverified_links
    config = info.get("Config") or {}
    report.env_secrets = secret_env_names(config.get("Env") or [])
    report.mounts = _mounts(info)
    report.drift = config_drift(image.get("Config") or {}, config)
    reporter.step(f"read the changes of container {container}")
    return report


def diff(
    container: str,
    *,
    exclude: list[str] | None = None,
    exclude_junk: bool = False,
    settings: Settings | None = None,
    reporter: Reporter | None = None,
) -> DiffReport:
    """What committing *container* would capture; with excludes, what they would leave out."""
    settings = settings or Settings.from_env()
    reporter = reporter or NullReporter()
    validate_container_name(container)
    excludes = Excludes(tuple(exclude or ()), exclude_junk)
    engine = connect_local(settings.docker_host)
    try:
        return diff_with(engine, container, excludes, reporter)
    finally:
        engine.close()
