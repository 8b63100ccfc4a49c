"""``snapshot``, ``snapshots`` and ``rollback``: a container's state kept and brought back, on
its own engine (where they are kept: :mod:`.snapstore`).

``rollback`` recreates the container from a snapshot with the snapshot's configuration. The
container it replaces is stopped and kept under ``<name>-replaced-<time>`` (its writable layer
and anonymous volumes with it) until ``prune``. Named volumes are shared by both, so restoring
the snapshot's volume data empties and refills them in place: before that, their current data
is saved as a ``pre-rollback`` snapshot, so a rollback can itself be rolled back (also when
the container was removed and only its volumes are left). That snapshot holds the replaced
container's anonymous volumes too; one the rolled-back-to snapshot has no data for keeps its
current data (carried into the new container). A failed rollback refills the named volumes from
the ``pre-rollback`` snapshot before the old container is started again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..daemon.engine import Engine, connect_local
from ..errors import IntegrityError, LayerferryError, NotFoundError, UsageError
from ..oci.digest import Digest
from ..reference import validate_container_name
from ..reporting import NullReporter, Reporter
from ..settings import Settings
from ..units import human_bytes
from .capture import capture, image_name_for, read_spec, stamp
from .normalize import Difference
from .preflight import Options, preflight
from .record import ContainerRecord, DataRecord
from .recreate import DEFAULT_HEALTH_TIMEOUT, fill, recreate
from .site import LocalSite
from .snapstore import SnapshotStore
from .spec import MountSpec
from .volumes import CapturedData, capture_mount


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
        spec, _, _ = read_spec(engine, container)
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
    if snapshot is not None and not snapshot.strip():
        raise UsageError(
            "empty snapshot name: give a snapshot's ID or label, or none for the latest"
        )
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
    backup = _backup(engine, store, record, data, existing is not None, reporter)
    data = data + _carried(record, data, backup, reporter)
    site = LocalSite(engine, settings.blob_cache())
    options = Options(name=container, replace=True, volumes=bool(data), refill=True)
    plan = preflight(site, record.spec, options, reporter)
    state = existing.get("State") or {} if existing else {}
    start = bool(state.get("Running")) if existing else record.state != "stopped"
    # Left as the container was found (a paused one stays paused), as snapshot leaves it.
    paused = bool(state.get("Paused")) if existing else record.state == "paused"
    keep = None if prune else f"{container}-replaced-{stamp()}"
    refilled = {d.mount.source for d in data if not d.mount.anonymous} & plan.refill
    put_back: list[bool] = []

    def undo_refill() -> None:
        """A failed rollback puts the refilled volumes' data back from the backup."""
        if backup is None:
            return
        for item in backup.data:
            if not item.mount.anonymous and item.mount.source in refilled:
                fill(site, record.image, item, item.mount.source, True, reporter)
        put_back.append(True)

    try:
        made = recreate(
            site, plan, record.image, data, reporter,
            source=record.attributes, start=start, keep_replaced=keep,
            health_timeout=health_timeout, on_failure=undo_refill,
        )  # fmt: skip
    except LayerferryError as exc:
        if backup is not None and refilled:
            if put_back:
                _amend(exc, f"; the volumes' data from before the rollback was put back "
                            f"(it is also kept as snapshot {backup.id})")  # fmt: skip
            else:
                _amend(exc, f"; the volumes may hold snapshot {record.id}'s data: their data "
                            f"from before is in snapshot {backup.id} "
                            f"(`layerferry rollback {container} {backup.id}` brings it back)")  # fmt: skip
        raise
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
    now = " and paused" if paused else " and running" if start else ""
    reporter.step(
        f"{container} is back at snapshot {record.id}{now}; "
        f"{made.attributes - len(made.differences)}/"
        f"{made.attributes} settings equal the snapshot's"
    )
    return RollbackResult(
        container=container,
        snapshot=record.id,
        container_id=made.container_id,
        started=start,
        healthy=made.healthy,
        replaced=made.replaced,
        backup=backup.id if backup else None,
        pruned=pruned,
        attributes=made.attributes,
        differences=made.differences,
    )


def _amend(exc: LayerferryError, more: str) -> None:
    exc.message += more
    exc.args = (exc.message, *exc.args[1:])


@dataclass(frozen=True)
class _Backup:
    id: str
    data: list[CapturedData]


def _backup(
    engine: Engine,
    store: SnapshotStore,
    record: ContainerRecord,
    data: Sequence[CapturedData],
    exists: bool,
    reporter: Reporter,
) -> _Backup | None:
    """Save what the rollback replaces as a ``pre-rollback`` snapshot: the data of the named
    volumes it refills (whether or not the container is still there) and of the container's
    anonymous volumes (a new container gets new ones; the old ones go with ``--prune``)."""
    present = {str(v.get("Name")) for v in engine.volumes()}
    refilled = {d.mount.source for d in data if not d.mount.anonymous} & present
    container = record.container
    if exists:
        spec, _, _ = read_spec(engine, container)
        mounts = [m for m in spec.data_mounts if m.anonymous or m.source in refilled]
        mounted = {m.source for m in mounts}
        mounts += [
            d.mount for d in data if d.mount.source in refilled and d.mount.source not in mounted
        ]
        if not mounts:
            return None
        taken = _take(engine, store, container, mounts, "pre-rollback", reporter)
    else:
        mounts = [d.mount for d in data if d.mount.source in refilled]
        if not mounts:
            return None
        # The container is gone: its volumes' data is kept with the snapshot's configuration
        # and image (all there is to recreate it from).
        blobs = store.blobs()
        entries = [(m, capture_mount(engine, record.image, m, blobs)) for m in mounts]
        taken = dataclasses.replace(
            record,
            id=store.new_id(container),
            label="pre-rollback",
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            data=tuple(DataRecord(m, str(e.diff_id), e.size) for m, e in entries),
            source=engine.where,
        )
        store.save(taken)
    labels = ", ".join(d.mount.label for d in taken.data)
    reporter.step(
        f"saved the current data of {labels} as snapshot {taken.id} (pre-rollback)"
        f"{'' if exists else f'; {container} itself was already removed'}"
    )
    return _Backup(taken.id, _data_of(store, taken))


def _carried(
    record: ContainerRecord,
    data: Sequence[CapturedData],
    backup: _Backup | None,
    reporter: Reporter,
) -> list[CapturedData]:
    """The live data of anonymous volumes the snapshot holds none for, for the new container.

    A snapshot taken without ``--volumes`` says nothing about them: the operator expects their
    data to stay, not a new, empty volume (and ``--prune`` removing the old one with it)."""
    held = {d.mount.destination for d in data}
    live = {d.mount.destination: d for d in (backup.data if backup else []) if d.mount.anonymous}
    out = []
    for mount in record.spec.data_mounts:
        if not mount.anonymous or mount.destination in held:
            continue
        item = live.pop(mount.destination, None)
        if item is None:
            reporter.warn(f"{mount.label}: the snapshot holds no data for it; it starts empty")
            continue
        assert backup is not None
        out.append(CapturedData(mount, item.entry, item.cache))
        reporter.warn(
            f"{mount.label}: the snapshot holds no data for it; its current data is carried "
            f"into the new container (also kept in snapshot {backup.id})"
        )
    for item in live.values():
        if item.mount.destination not in held:
            reporter.warn(
                f"{item.mount.label}: the snapshot's container has no such mount; its data is "
                f"kept in snapshot {backup.id if backup else '?'}"
            )
    return out


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
