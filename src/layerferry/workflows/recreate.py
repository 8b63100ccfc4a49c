"""Making a container real on a site from a spec, an image there and its captured data; checking
that it runs (healthy, when it has a healthcheck) and that its settings equal the source's.

Order: networks and named volumes it needs are created; a container being replaced is stopped
and parked under another name; the named volumes only it used (``Preflight.keep``) have their
data copied into ``VOLUME-replaced-TIMESTAMP`` volumes there; named volumes and bind paths get
their data (through helpers);
the container is created, attached to its other networks, its anonymous volumes filled; then it
is started and checked. Every step is recorded, and any failure puts the site back as it was:
what was made is removed, the parked container gets its name back and is started again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..daemon.engine import Engine
from ..errors import EngineError, LayerferryError
from ..reporting import Reporter
from .capture import engine_defaults
from .normalize import Difference, compare, normalize
from .preflight import Preflight
from .site import Site
from .volumes import KEPT_LABEL, CapturedData, copy_volume, empty_volume, helper

START_GRACE_SECONDS = 2.0
DEFAULT_HEALTH_TIMEOUT = 60.0


@dataclass(frozen=True)
class Recreated:
    container_id: str
    started: bool
    healthy: bool | None
    """None: the container has no healthcheck (or was not started)."""
    replaced: str | None
    """The name a replaced container was kept under (``keep_replaced``), or None."""
    attributes: int
    differences: list[Difference]
    kept_volumes: dict[str, str] = dataclasses.field(default_factory=dict)
    """Volume refilled -> the volume its previous data was kept in (``--replace``)."""


class _Undo:
    def __init__(self) -> None:
        self._steps: list[Callable[[], None]] = []

    def add(self, step: Callable[[], None]) -> None:
        self._steps.append(step)

    def run(self) -> None:
        """Every step, newest first; a failing step must not hide the original error."""
        for step in reversed(self._steps):
            with contextlib.suppress(LayerferryError):
                step()


def recreate(
    site: Site,
    plan: Preflight,
    image: str,
    data: Sequence[CapturedData],
    reporter: Reporter,
    *,
    source: dict[str, Any],
    start: bool,
    keep_replaced: str | None = None,
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
    on_failure: Callable[[], None] | None = None,
) -> Recreated:
    """Create *plan*'s container from *image* on *site*; *source* is the normalized source.

    *on_failure* runs when the recreation fails, after what was made is removed and before the
    replaced container is started again (a rollback puts its volumes' data back there)."""
    engine = site.engine
    undo = _Undo()
    try:
        _make_networks_and_volumes(engine, plan, undo, reporter)
        parked = _park(engine, plan.existing, keep_replaced, undo)
        kept = {
            volume: keep_volume(engine, image, volume, undo, reporter)
            for volume in sorted(plan.keep)
        }
        if on_failure is not None:
            undo.add(on_failure)
        by_destination = {d.mount.destination: d for d in data}
        for item in data:
            if not item.mount.anonymous:
                fill(
                    site, image, item, item.mount.source, item.mount.source in plan.refill, reporter
                )
        new_id = engine.create_container(plan.spec.create_body(image), plan.spec.name)
        undo.add(lambda: engine.remove_container(new_id, force=True, volumes=True))
        for endpoint in plan.spec.extra_endpoints:
            engine.connect(new_id, endpoint.network, endpoint.endpoint_config())
        _fill_anonymous(site, image, new_id, by_destination, reporter)
        healthy = None
        if start:
            engine.start(new_id)
            _wait_running(engine, new_id)
            healthy = _wait_healthy(engine, new_id, health_timeout, reporter)
        # Each side without its own engine's defaults: what the target engine chose for itself
        # (a newer one masks more paths, …) is not a difference from the source.
        defaults = engine_defaults(engine, image)
        compared, differences = compare(
            source,
            normalize(engine.container(new_id), defaults),
            ignore=plan.expected,
            target_defaults=defaults,
        )
    except BaseException:
        undo.run()
        raise
    if parked is not None and keep_replaced is None:
        with contextlib.suppress(LayerferryError):
            engine.remove_container(parked, force=True, volumes=True)
        reporter.step(f"{site.where}: removed the replaced container")
    replaced = keep_replaced if parked is not None else None
    return Recreated(new_id, start, healthy, replaced, compared, differences, kept)


def _make_networks_and_volumes(
    engine: Engine, plan: Preflight, undo: _Undo, reporter: Reporter
) -> None:
    for network, with_subnets in plan.networks:
        engine.create_network(network.name, network.create_body(with_subnets=with_subnets))
        undo.add(functools.partial(engine.remove_network, network.name))
        pools = ", ".join(p.get("Subnet", "") for p in network.subnets) if with_subnets else ""
        reporter.step(
            f"{engine.where}: created network {network.name} ({network.driver}"
            f"{', ' + pools if pools else ''})"
        )
        if network.subnets and not with_subnets:
            reporter.warn(
                f"{engine.where}: network {network.name} was created without its subnet "
                "(it overlaps a network there); the engine chose one"
            )
    for volume in plan.volumes:
        engine.create_volume(volume.name, volume.driver, volume.options, volume.labels)
        undo.add(functools.partial(engine.remove_volume, volume.name))


def _park(
    engine: Engine, existing: dict[str, Any] | None, keep_as: str | None, undo: _Undo
) -> str | None:
    """Stop the container being replaced and move it out of the way (undone on failure)."""
    if existing is None:
        return None
    old_id = str(existing["Id"])
    old_name = str(existing.get("Name", "")).lstrip("/")
    state = existing.get("State") or {}
    if state.get("Running"):  # a paused container is running too
        paused = bool(state.get("Paused"))
        if paused:
            engine.unpause(old_id)
        engine.stop(old_id)

        def back() -> None:
            engine.start(old_id)
            if paused:
                engine.pause(old_id)

        undo.add(back)
    engine.rename(old_id, keep_as or f"{old_name}-replaced-{secrets.token_hex(4)}")
    undo.add(lambda: engine.rename(old_id, old_name))
    return old_id


def keep_volume(engine: Engine, image: str, volume: str, undo: _Undo, reporter: Reporter) -> str:
    """Copy *volume*'s data into a new volume ``VOLUME-replaced-TIMESTAMP`` on the site's own host,
    before it is refilled; on failure the undo puts that data back into *volume* (and removes the
    copy), or, if that fails, leaves the copy and says so. Returns the copy's name."""
    copy = f"{volume}-replaced-{_stamp()}"
    if copy in {str(v.get("Name")) for v in engine.volumes()}:  # creating it again reuses it
        copy = f"{copy}-{secrets.token_hex(2)}"
    # A plain local volume: the original's driver options could point at the same storage.
    engine.create_volume(copy, "local", {}, {KEPT_LABEL: volume})
    try:
        copy_volume(engine, image, volume, copy)
    except BaseException:
        with contextlib.suppress(LayerferryError):
            engine.remove_volume(copy)
        raise

    def back() -> None:
        try:
            empty_volume(engine, image, volume)
            copy_volume(engine, image, copy, volume)
        except LayerferryError as exc:
            reporter.warn(
                f"{engine.where}: could not put the previous data back into volume {volume} "
                f"({exc}); it is kept in volume {copy}"
            )
            raise
        with contextlib.suppress(LayerferryError):
            engine.remove_volume(copy)
        reporter.step(f"{engine.where}: volume {volume} has its previous data back")

    undo.add(back)
    reporter.step(f"{engine.where}: volume {volume}: its previous data is kept in volume {copy}")
    return copy


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime())


def fill(
    site: Site, image: str, item: CapturedData, target: str, refill: bool, reporter: Reporter
) -> None:
    """Put *item*'s data into volume (or bind path) *target* on the site."""
    mount = dataclasses.replace(item.mount, source=target)
    if refill:
        try:
            empty_volume(site.engine, image, target)
        except EngineError as exc:
            reporter.warn(f"{exc}; restoring over its current files (files added since stay)")
    with helper(site.engine, image, mount, read_only=False) as helper_id:
        site.restore(helper_id, item)
    reporter.step(f"{site.where}: restored {item.mount.label}")


def _fill_anonymous(
    site: Site,
    image: str,
    container_id: str,
    data: dict[str, CapturedData],
    reporter: Reporter,
) -> None:
    """Anonymous volumes exist only once the container does: find each by its destination."""
    wanted = {k: v for k, v in data.items() if v.mount.anonymous}
    if not wanted:
        return
    for mount in site.engine.container(container_id).get("Mounts") or []:
        item = wanted.get(str(mount.get("Destination")))
        if item is not None and mount.get("Type") == "volume" and mount.get("Name"):
            fill(site, image, item, str(mount["Name"]), False, reporter)


def _wait_running(engine: Engine, container_id: str) -> None:
    """A container that dies right after start is a failed recreation, not a success."""
    deadline = time.monotonic() + START_GRACE_SECONDS
    while True:
        state = engine.container(container_id).get("State") or {}
        if not state.get("Running") and not state.get("Restarting"):
            logs = engine.logs(container_id).strip().splitlines()
            tail = f"; last log line: {logs[-1]}" if logs else ""
            raise EngineError(
                f"{engine.where}: the container exited right after start "
                f"(exit code {state.get('ExitCode')}){tail}"
            )
        if time.monotonic() >= deadline:
            return
        time.sleep(0.25)


def _wait_healthy(
    engine: Engine, container_id: str, timeout: float, reporter: Reporter
) -> bool | None:
    """With a healthcheck: wait (bounded) until it reports healthy; unhealthy is a failure."""
    deadline = time.monotonic() + timeout
    while True:
        health = (engine.container(container_id).get("State") or {}).get("Health")
        if not health:
            return None
        status = str(health.get("Status") or "")
        if status == "healthy":
            reporter.step(f"{engine.where}: the container is healthy")
            return True
        if status == "unhealthy":
            log = health.get("Log") or []
            last = str(log[-1].get("Output") or "").strip() if log else ""
            raise EngineError(
                f"{engine.where}: the container is unhealthy"
                f"{': ' + last.splitlines()[-1] if last else ''}"
            )
        if time.monotonic() >= deadline:
            raise EngineError(
                f"{engine.where}: the container was not healthy within {timeout:.0f} s "
                f"(health: {status or 'unknown'})",
                hint="raise --health-timeout if its service takes longer to come up",
            )
        time.sleep(0.5)
