"""``commit``: a container's changes into an image, its own settings kept, junk and secrets out.

Without excludes the engine's own commit is used, unless the changes ask for what it cannot
give (STOPSIGNAL; an empty CMD or ENTRYPOINT, which it would fill from the container's: see
:func:`.changes.engine_cannot`), when layerferry builds the layer as below. With ``--exclude``/``--exclude-junk``
layerferry builds the layer itself from the change list and the archive endpoint (see
:mod:`.changeset`), writes the image config (the base image's, plus the new diff ID, a history
entry and the run settings decided below), and loads the result as a thin archive: only the new
layer travels. ``--squash`` makes one layer of the container's whole filesystem
(``GET /containers/{id}/export``).

Run settings (case C24): when the image has a command of its own and the container's
Entrypoint/Cmd differ (a shell override to make a fix), the image's are kept unless
``keep_container_config``. Changes (``-c``) are checked before anything runs and CMD/ENTRYPOINT
built in exec form (case C25). A paused container stays paused; a running one is paused while
its files are read.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..archive.writer import ArchiveImage
from ..copy.blobcache import BlobCache, LayerEntry
from ..copy.destinations import DaemonDestination
from ..copy.engine import copy_images
from ..copy.sources import DaemonSource
from ..daemon.engine import Engine, connect_local
from ..errors import UsageError
from ..layers.entry import Entry, Kind, iter_member, whiteout_entry
from ..layers.paths import whiteout_name
from ..layers.rules import Excludes, secret_env_names, secret_reason
from ..oci.config import ImageConfig
from ..oci.manifest import canonical_json
from ..reference import ImageName, validate_container_name
from ..reporting import NullReporter, Reporter
from ..settings import Settings
from ..tario.reader import TarReader
from ..tario.stream import IterStream
from ..tario.tarstream import END_OF_ARCHIVE
from ..units import human_bytes, plural
from .changes import Change, apply_changes, engine_cannot, parse_changes
from .changeset import DELETED, ChangePlan, ChangeReader, Event
from .drift import Drift, command_changes, config_drift

#: overlay2 stacks at most this many layers under a container (and the engine refuses more).
MAX_LAYERS = 127
_SKIP_IN_EXPORT = {".dockerenv"}


@dataclass(frozen=True)
class Excluded:
    path: str
    size: int
    reason: str


@dataclass(frozen=True)
class CommitResult:
    container: str
    image_id: str
    name: ImageName | None
    drift: list[Drift] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    layers: int = 0
    method: str = "engine"
    """``engine`` (the engine's commit), ``layer`` (layerferry's own layer) or ``squash``."""


@dataclass(frozen=True)
class CommitOptions:
    changes: list[Change]
    excludes: Excludes = Excludes()
    message: str | None = None
    author: str | None = None
    keep_container_config: bool = False
    squash: bool = False
    max_layers: int = MAX_LAYERS


@contextlib.contextmanager
def _held_still(engine: Engine, container: str, state: dict[str, Any]) -> Iterator[None]:
    """Pause a running container while its files are read; a paused one is left paused."""
    pause = bool(state.get("Running")) and not state.get("Paused")
    if pause:
        engine.pause(container)
    try:
        yield
    finally:
        if pause:
            engine.unpause(container)


def _warn_volumes(info: dict[str, Any], reporter: Reporter) -> None:
    for mount in info.get("Mounts") or []:
        kind = mount.get("Type", "")
        label = (
            f"volume {mount.get('Name')}" if kind == "volume" else f"{kind} {mount.get('Source')}"
        )
        reporter.warn(
            f"{mount.get('Destination')} is a mount ({label}): a commit does not capture its "
            "contents; they stay behind"
        )


def warn_secret_paths(
    engine: Engine,
    container: str,
    reporter: Reporter,
    *,
    fate: str = "will be in the image",
    advice: str = "leave it out with --exclude",
    skip: Callable[[str], bool] = lambda path: False,
) -> None:
    """Changed paths whose names say they may hold secrets, one warning each. Cheap: by name
    only, from the engine's change list (``diff`` reads the files and finds more)."""
    for path, kind in engine.changes(container):
        if kind == 2 or skip(path):
            continue
        reason = secret_reason(path, False, None)
        if reason:
            reporter.warn(f"{path} {fate}: {reason}; {advice}")


_CHANGED_FIELD = {"CMD": "Cmd", "ENTRYPOINT": "Entrypoint", "USER": "User", "WORKDIR": "WorkingDir"}


def _warn_secrets(
    engine: Engine,
    container: str,
    info: dict[str, Any],
    opts: CommitOptions,
    reporter: Reporter,
    *,
    paths: bool,
) -> None:
    """Cheap checks by name only (the engine's commit path reads no content)."""
    if paths:
        warn_secret_paths(
            engine, container, reporter, skip=lambda p: opts.excludes.reason(p, False) is not None
        )
    names = secret_env_names((info.get("Config") or {}).get("Env") or [])
    if names:
        reporter.warn(
            f"environment {', '.join(names)} look like secrets and are stored in the image "
            "config (values not shown)"
        )


def commit_container(
    engine: Engine,
    container: str,
    name: ImageName | None,
    opts: CommitOptions,
    cache: BlobCache,
    reporter: Reporter,
) -> CommitResult:
    info = engine.container(container)
    image = engine.inspect_image(str(info.get("Image", "")))
    base_config = image.get("Config") or {}
    drift = config_drift(
        base_config, info.get("Config") or {}, keep_container=opts.keep_container_config
    )
    # A field a -c change sets is not "kept" from either side: its drift would mislead.
    asked = {_CHANGED_FIELD.get(c.keyword) for c in opts.changes}
    for item in drift:
        if item.field not in asked:
            reporter.warn(item.describe())
    changes = command_changes(base_config, drift) + opts.changes
    layers = len((image.get("RootFS") or {}).get("Layers") or [])
    if layers + 1 > opts.max_layers and not opts.squash:
        raise UsageError(
            f"the image would have {layers + 1} layers; the engine stacks at most "
            f"{opts.max_layers}",
            hint="commit with --squash: one layer of the container's whole filesystem",
        )
    wanted = _run_config(info, changes)  # what both paths must give (checked: no work yet)
    own = opts.squash or opts.excludes.active
    if not own:
        why = engine_cannot(info.get("Config") or {}, changes)
        if why:
            reporter.step(f"{why}: layerferry builds the layer itself")
            own = True
    _warn_volumes(info, reporter)
    # Our own layer looks inside the files it writes and warns there (finding more than names).
    _warn_secrets(engine, container, info, opts, reporter, paths=not own)
    if own:
        result = _own_commit(engine, container, name, info, image, changes, opts, cache, reporter)
    else:
        result = _engine_commit(engine, container, name, info, changes, opts, reporter)
    record = engine.inspect_image(result.image_id)
    config = record.get("Config") or {}
    for key in ("Entrypoint", "Cmd", "StopSignal"):
        if (config.get(key) or None) != (wanted.get(key) or None):
            reporter.warn(
                f"the committed image's {key} is {json.dumps(config.get(key))}, not "
                f"{json.dumps(wanted.get(key))} as asked"
            )
    reporter.step(
        f"committed container {container} as {name or result.image_id[:19]}: entrypoint "
        f"{json.dumps(config.get('Entrypoint'))}, cmd {json.dumps(config.get('Cmd'))}"
    )
    return CommitResult(
        container=container,
        image_id=str(record.get("Id", result.image_id)),
        name=name,
        drift=drift,
        excluded=result.excluded,
        entrypoint=config.get("Entrypoint"),
        cmd=config.get("Cmd"),
        layers=len((record.get("RootFS") or {}).get("Layers") or []),
        method=result.method,
    )


def _engine_commit(
    engine: Engine,
    container: str,
    name: ImageName | None,
    info: dict[str, Any],
    changes: list[Change],
    opts: CommitOptions,
    reporter: Reporter,
) -> CommitResult:
    was_paused = bool((info.get("State") or {}).get("Paused"))
    image_id = engine.commit(
        container,
        repository=name.repository if name else None,
        tag=name.tag if name else None,
        message=opts.message,
        author=opts.author,
        changes=[c.engine_text() for c in changes],
        pause=not was_paused,  # already frozen: the engine must not pause (or unpause) it
    )
    state = engine.container(container).get("State") or {}
    if was_paused and not state.get("Paused"):
        engine.pause(container)
        reporter.warn(f"the engine unpaused {container} while committing; paused it again")
    return CommitResult(container, image_id, name)


# -- layerferry's own layer ---------------------------------------------------------------------------
class _LayerStream:
    """The layer tar of a change set, excluded paths left out and recorded."""

    def __init__(self, events: Iterator[Event], reporter: Reporter) -> None:
        self.events = events
        self.reporter = reporter
        self.excluded: list[Excluded] = []

    def chunks(self) -> Iterator[bytes]:
        for event in self.events:
            if event.entry is None:
                if event.change == DELETED:
                    yield from iter_member(whiteout_entry(whiteout_name(event.path)))
                continue
            if event.excluded is not None:  # its bytes are skipped by the tar reader, not kept
                self.excluded.append(Excluded(event.absolute, event.entry.size, event.excluded))
                continue
            reason = secret_reason(event.absolute, False, event.head or None)
            if reason and event.entry.kind is Kind.FILE:
                self.reporter.warn(f"{event.absolute} is committed: {reason}")
            yield from iter_member(event.entry, event.payload)
        yield END_OF_ARCHIVE


def _export_chunks(
    engine: Engine, container: str, excludes: Excludes, excluded: list[Excluded]
) -> Iterator[bytes]:
    """The container's whole filesystem as one layer, excluded paths left out."""
    with engine.export(container) as chunks:
        for member in TarReader(IterStream(chunks), f"export of container {container}"):
            entry = Entry.from_member(member, f"export of container {container}")
            if not entry.path or entry.path in _SKIP_IN_EXPORT:
                continue
            reason = excludes.reason("/" + entry.path, entry.kind is Kind.DIR)
            if reason is not None:
                excluded.append(Excluded("/" + entry.path, entry.size, reason))
                continue
            yield from iter_member(entry, member)
    yield END_OF_ARCHIVE


def _own_commit(
    engine: Engine,
    container: str,
    name: ImageName | None,
    info: dict[str, Any],
    image: dict[str, Any],
    changes: list[Change],
    opts: CommitOptions,
    cache: BlobCache,
    reporter: Reporter,
) -> CommitResult:
    base = DaemonSource(engine, cache).image(str(image["Id"]))
    excluded: list[Excluded] = []
    with _held_still(engine, container, info.get("State") or {}):
        if opts.squash:
            reporter.step(f"reading the whole filesystem of {container} (--squash)")
            entry = cache.put_layer(
                IterStream(_export_chunks(engine, container, opts.excludes, excluded))
            )
        else:
            plan = ChangePlan.make(engine, container, info, opts.excludes)
            stream = _LayerStream(ChangeReader(plan).events(), reporter)
            entry = cache.put_layer(IterStream(stream.chunks()))
            excluded = stream.excluded
            for path in plan.unverified_links:
                reporter.warn(f"{path}: could not confirm whether it is a hard link; stored whole")
    if excluded:
        total = sum(e.size for e in excluded)
        reporter.step(f"left out {plural(len(excluded), 'path')} ({human_bytes(total)})")
    config = _new_config(base.config, info, changes, entry, opts)
    layers: list[LayerEntry] = [] if opts.squash else list(base.layers)
    new = ArchiveImage(config=config, layers=[*layers, entry], tags=[name] if name else [])
    copy_images([new], DaemonDestination(engine, cache), reporter=reporter, thin=True)
    method = "squash" if opts.squash else "layer"
    return CommitResult(container, str(config.digest), name, excluded=excluded, method=method)


def _run_config(info: dict[str, Any], changes: list[Change]) -> dict[str, Any]:
    config = dict(info.get("Config") or {})
    if config.get("Hostname") == str(info.get("Id", ""))[:12]:
        config["Hostname"] = ""
    config["Image"] = str(info.get("Image", ""))
    return apply_changes(config, changes)


def _new_config(
    base: ImageConfig,
    info: dict[str, Any],
    changes: list[Change],
    layer: LayerEntry,
    opts: CommitOptions,
) -> ImageConfig:
    data = json.loads(base.raw)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    data["config"] = _run_config(info, changes)
    data.pop("container_config", None)
    data["container"] = str(info.get("Id", ""))
    data["created"] = now
    if opts.author:
        data["author"] = opts.author
    argv = [str(info.get("Path", "")), *(str(a) for a in info.get("Args") or [])]
    entry: dict[str, Any] = {"created": now, "created_by": " ".join(argv).strip()}
    if opts.message:
        entry["comment"] = opts.message
    if opts.author:
        entry["author"] = opts.author
    history = [] if opts.squash else list(data.get("history") or [])
    data["history"] = [*history, entry]
    diff_ids = [] if opts.squash else list((data.get("rootfs") or {}).get("diff_ids") or [])
    data["rootfs"] = {"type": "layers", "diff_ids": [*diff_ids, str(layer.diff_id)]}
    return ImageConfig.parse(canonical_json(data))


def commit(
    container: str,
    image: str | None = None,
    *,
    changes: list[str] | None = None,
    message: str | None = None,
    author: str | None = None,
    exclude: list[str] | None = None,
    exclude_junk: bool = False,
    entrypoint_json: str | None = None,
    cmd_json: str | None = None,
    shell_form: bool = False,
    keep_container_config: bool = False,
    squash: bool = False,
    max_layers: int = MAX_LAYERS,
    settings: Settings | None = None,
    reporter: Reporter | None = None,
) -> CommitResult:
    """Commit *container* on the local engine into *image* (``repo:tag``; untagged when None).

    Everything given is checked before anything runs: the name, the changes, the patterns.
    """
    settings = settings or Settings.from_env()
    reporter = reporter or NullReporter()
    name = ImageName.parse(image) if image else None
    validate_container_name(container)
    parsed = parse_changes(
        changes or [],
        reporter,
        entrypoint_json=entrypoint_json,
        cmd_json=cmd_json,
        shell_form=shell_form,
    )
    opts = CommitOptions(
        changes=parsed,
        excludes=Excludes(tuple(exclude or ()), exclude_junk),
        message=message,
        author=author,
        keep_container_config=keep_container_config,
        squash=squash,
        max_layers=max_layers,
    )
    engine = connect_local(settings.docker_host)
    try:
        return commit_container(engine, container, name, opts, settings.blob_cache(), reporter)
    finally:
        engine.close()
