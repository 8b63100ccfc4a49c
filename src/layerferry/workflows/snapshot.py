"""``snapshot``, ``snapshots`` and ``rollback``: a container's state kept and brought back, on
its own engine (where they are kept: :mod:`.snapstore`).

``rollback`` recreates the container from a snapshot with the snapshot's configuration. The
container it replaces is stopped and kept under ``<name>-replaced-<time>`` (its writable layer
and anonymous volumes with it) until ``prune``. Named volumes are shared by both, so restoring
the snapshot's volume data empties and refills them in place: before that, their current data
is saved as a ``pre-rollback`` snapshot, so a rollback can itself be rolled back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..daemon.engine import Engine, connect_local
from ..errors import IntegrityError, LayerferryError, NotFoundError
from ..oci.digest import Digest
from ..reference import validate_container_name
from ..reporting import NullReporter, Reporter
from ..settings import Settings
from ..units import human_bytes
from .capture import capture, image_name_for, read_spec, stamp
from .normalize import Difference
from .preflight import Options, preflight
from .record import ContainerRecord
from .recreate import DEFAULT_HEALTH_TIMEOUT, recreate
from .site import LocalSite
from .snapstore import SnapshotStore
from .spec import MountSpec
from .volumes import CapturedData


@dataclass(frozen=True)
class SnapshotInfo:
    record: ContainerRecord
    image_size: int | None
    """The committed image's size in the engine (None: the image is gone)."""

    @property
    def container(self) -> str:
        return self.record.container

    @property
    def id(self) -> str:
        return self.record.id


@dataclass(frozen=True)
class RollbackResult:
    container: str
    snapshot: str
    container_id: str
    started: bool
    healthy: bool | None
    replaced: str | None
    """The name the replaced container is kept under (None: pruned, or there was none)."""
    backup: str | None
    """The ``pre-rollback`` snapshot taken of the volumes' data before they were refilled."""
    pruned: list[str] = field(default_factory=list)
    attributes: int = 0
    differences: list[Difference] = field(default_factory=list)


def _store(engine: Engine, settings: Settings) -> SnapshotStore:
    return SnapshotStore(settings.state_dir, engine.info().engine_id or engine.where)


def _take(
    engine: Engine,
    store: SnapshotStore,
    container: str,
    mounts: Sequence[MountSpec],
    label: str,
    reporter: Reporter,
) -> ContainerRecord:
    snap_id = store.new_id(container)
    image = image_name_for(container, f"snap-{snap_id}")
    message = f"layerferry snapshot {snap_id}" + (f" ({label})" if label else "")
    cap = capture(engine, container, image, mounts, store.blobs(), reporter, message=message)
    record = ContainerRecord.from_capture(cap, engine.where, id=snap_id, label=label)
    store.save(record)
    return record


def snapshot(
    container: str,
    *,
    volumes: bool = False,
    label: str = "",
    settings: Settings | None = None,
    reporter: Reporter | None = None,
) -> ContainerRecord:
    """Keep *container*'s state: a commit, its configuration and (*volumes*) its volumes' data."""
    settings = settings or Settings.from_env()
    reporter = reporter or NullReporter()
    validate_container_name(container)
    engine = connect_local(settings.docker_host)
    try:
        spec, _ = read_spec(engine, container)
        mounts = spec.data_mounts if volumes else []
        if not volumes:
            for mount in spec.data_mounts:
                reporter.warn(
                    f"{mount.label}: its data is not in this snapshot (--volumes keeps it)"
                )
        record = _take(engine, _store(engine, settings), spec.name, mounts, label, reporter)
    finally:
        engine.close()
    reporter.step(
        f"snapshot {record.id} of {record.container}: image {record.image}, "
        f"{len(record.data)} volume(s), {human_bytes(record.data_size)} of data"
    )
    return record


def snapshots(
    container: str | None = None, *, settings: Settings | None = None
) -> list[SnapshotInfo]:
    """The snapshots on the local engine (of *container*, or all), oldest first."""
    settings = settings or Settings.from_env()
    if container:
        validate_container_name(container)
    engine = connect_local(settings.docker_host)
    try:
        out = []
        for record in _store(engine, settings).records(container):
            image = engine.find_image(record.image)
            size = int(engine.image_inspect(image.id).get("Size") or 0) if image else None
            out.append(SnapshotInfo(record, size))
        return out
    finally:
        engine.close()


def rollback(
    container: str,
    snapshot: str | None = None,
    *,
    prune: bool = False,
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
    settings: Settings | None = None,
    reporter: Reporter | None = None,
) -> RollbackResult:
    """Recreate *container* from *snapshot* (its ID or label; the latest when None)."""
    settings = settings or Settings.from_env()
    reporter = reporter or NullReporter()
    validate_container_name(container)
    engine = connect_local(settings.docker_host)
    try:
        return _rollback(engine, container, snapshot, prune, health_timeout, settings, reporter)
    finally:
        engine.close()


def _rollback(
    engine: Engine,
    container: str,
    ref: str | None,
    prune: bool,
    health_timeout: float,
    settings: Settings,
    reporter: Reporter,
) -> RollbackResult:
    store = _store(engine, settings)
    record = store.find(container, ref)
    if engine.find_image(record.image) is None:
        raise NotFoundError(
            f"{engine.where}: snapshot {record.id}: its image {record.image} is gone"
        )
    data = _data_of(store, record)
    existing = engine.find_container(container)
    backup = None
    shared = [d.mount for d in data if not d.mount.anonymous]
    if existing is not None and shared:
        backup = _take(engine, store, container, shared, "pre-rollback", reporter).id
        reporter.step(f"saved the volumes' current data as snapshot {backup} (pre-rollback)")
    site = LocalSite(engine, settings.blob_cache())
    options = Options(name=container, replace=True, volumes=bool(data), refill=True)
    plan = preflight(site, record.spec, options, reporter)
    state = existing.get("State") or {} if existing else {}
    start = bool(state.get("Running")) if existing else record.state != "stopped"
    # Left as the container was found (a paused one stays paused), as snapshot leaves it.
    paused = bool(state.get("Paused")) if existing else record.state == "paused"
    keep = None if prune else f"{container}-replaced-{stamp()}"
    made = recreate(
        site, plan, record.image, data, reporter,
        source=record.attributes, start=start, keep_replaced=keep, health_timeout=health_timeout,
    )  # fmt: skip
    if paused:
        engine.pause(made.container_id)
        reporter.step(f"{container} is paused again, as it was")
    pruned = _prune(engine, store, container) if prune else []
    if made.replaced:
        store.set_replaced(container, [*store.replaced(container), made.replaced])
        reporter.step(
            f"the replaced container is kept, stopped, as {made.replaced} (--prune removes it)"
        )
    for difference in made.differences:
        reporter.warn(f"differs from the snapshot: {difference}")
    reporter.step(
        f"{container} is back at snapshot {record.id}"
        f"{' and running' if start else ''}; {made.attributes - len(made.differences)}/"
        f"{made.attributes} settings equal the snapshot's"
    )
    return RollbackResult(
        container=container,
        snapshot=record.id,
        container_id=made.container_id,
        started=start,
        healthy=made.healthy,
        replaced=made.replaced,
        backup=backup,
        pruned=pruned,
        attributes=made.attributes,
        differences=made.differences,
    )


def _data_of(store: SnapshotStore, record: ContainerRecord) -> list[CapturedData]:
    blobs = store.blobs()
    out = []
    for item in record.data:
        entry = blobs.layer(Digest.parse(item.digest))
        if entry is None or entry.size != item.size:
            raise IntegrityError(
                f"snapshot {record.id}: the data of {item.mount.label} is missing from {store.root}"
            )
        out.append(CapturedData(item.mount, entry, blobs))
    return out


def _prune(engine: Engine, store: SnapshotStore, container: str) -> list[str]:
    """Remove the containers earlier rollbacks set aside (they are stopped)."""
    removed = []
    for name in store.replaced(container):
        with contextlib.suppress(NotFoundError):
            found = engine.find_container(name)
            if found is not None:
                with contextlib.suppress(LayerferryError):
                    engine.remove_container(str(found["Id"]), force=True, volumes=True)
                    removed.append(name)
    store.set_replaced(container, [])
    return removed
