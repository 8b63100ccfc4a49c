"""Taking a container's whole state on its own engine: configuration, writable layer, data.

The container is held still while its layer and data are read: a running container is paused
(or stopped, with ``stop_source``) and put back exactly as it was afterwards; a paused one stays
paused, a stopped one stopped. Only the commit and the local reads of the data happen in that
window; sending anything anywhere happens after.
"""

from __future__ import annotations

import contextlib
import datetime
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..copy.blobcache import BlobCache
from ..daemon.engine import Engine
from ..errors import LayerferryError
from ..reference import ImageName
from ..reporting import Reporter
from ..units import human_bytes
from .normalize import normalize
from .spec import BUILTIN_NETWORKS, ContainerSpec, MountSpec, NetworkDef, VolumeDef
from .volumes import CapturedData, capture_mount

_CONTAINER_MODES = ("NetworkMode", "IpcMode", "PidMode")


@dataclass(frozen=True)
class Capture:
    spec: ContainerSpec
    inspect: dict[str, Any]
    image: ImageName
    image_id: str
    data: list[CapturedData]
    state: str
    """``running``, ``paused`` or ``stopped``: how the container was found (and left, unless
    stopped on request)."""
    layer_size: int
    defaults: dict[str, Any] | None = None
    """The ``HostConfig`` the source engine gives the image with no options
    (:func:`engine_defaults`)."""

    @property
    def attributes(self) -> dict[str, Any]:
        """The container's normalized settings, its engine's defaults left out."""
        return normalize(self.inspect, self.defaults)


def state_of(inspect: dict[str, Any]) -> str:
    state = inspect.get("State") or {}
    if state.get("Paused"):
        return "paused"
    return "running" if state.get("Running") else "stopped"


def stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")


def image_name_for(container: str, tag: str) -> ImageName:
    repository = re.sub(r"[^a-z0-9]+", "-", container.lower()).strip("-") or "container"
    return ImageName(f"layerferry/{repository}", tag)


def engine_defaults(engine: Engine, image: str) -> dict[str, Any] | None:
    """The ``HostConfig`` *engine* gives a container of *image* created with no options (masked
    and read-only paths, IPC and cgroup namespace modes, runtime, shm size, network mode, …).

    Learned, not assumed: a reference container is created (never started), inspected and
    removed with its anonymous volumes. None when the engine cannot make one (then nothing is
    known to be a default)."""
    name = f"layerferry-defaults-{secrets.token_hex(6)}"
    made = None
    try:
        # A HostConfig, even empty, as every client sends: the engine fills its defaults then.
        plain: dict[str, Any] = {"Image": image, "HostConfig": {}}
        for body in (plain, {**plain, "Cmd": ["true"]}):
            try:  # an image with neither entrypoint nor cmd needs a command to be created
                made = engine.create_container(body, name)
                break
            except LayerferryError:
                continue
        if made is None:
            return None
        return dict(engine.container(made).get("HostConfig") or {})
    except LayerferryError:
        return None
    finally:
        if made is not None:
            with contextlib.suppress(LayerferryError):
                engine.remove_container(made, force=True, volumes=True)


def read_spec(
    engine: Engine, container: str, defaults_memo: dict[str, dict[str, Any] | None] | None = None
) -> tuple[ContainerSpec, dict[str, Any], dict[str, Any] | None]:
    """The spec of *container* (compared with its image, its engine's defaults for it, volumes
    and networks), its inspect, and those engine defaults (:func:`engine_defaults`).

    *defaults_memo* (image ID → defaults) spares a caller that reads the spec again (migrate:
    once to plan, once when capturing) a second throwaway container."""
    data = engine.container(container)
    image = engine.find_image(str(data.get("Image", "")))
    image_config: dict[str, Any] = {}
    if image is not None:
        image_config = engine.image_inspect(image.id).get("Config") or {}
    _name_container_refs(engine, data)
    volumes = {}
    for mount in data.get("Mounts") or []:
        if mount.get("Type") == "volume" and mount.get("Name"):
            info = engine.volume(str(mount["Name"]))
            volumes[str(mount["Name"])] = VolumeDef(
                name=str(mount["Name"]),
                driver=str(info.get("Driver") or "local"),
                options={str(k): str(v) for k, v in (info.get("Options") or {}).items()},
                labels={str(k): str(v) for k, v in (info.get("Labels") or {}).items()},
            )
    networks = {}
    for name in (data.get("NetworkSettings") or {}).get("Networks") or {}:
        if name not in BUILTIN_NETWORKS:
            networks[str(name)] = NetworkDef.from_inspect(engine.network(str(name)))
    image_id = str(data.get("Image", ""))
    if defaults_memo is not None and image_id in defaults_memo:
        defaults = defaults_memo[image_id]
    else:
        defaults = engine_defaults(engine, image_id)
        if defaults_memo is not None:
            defaults_memo[image_id] = defaults
    spec = ContainerSpec.from_inspect(
        data, image_config, volumes=volumes, networks=networks, engine_defaults=defaults
    )
    return spec, data, defaults


def _name_container_refs(engine: Engine, data: dict[str, Any]) -> None:
    """``container:<id>`` modes and ``VolumesFrom`` by name: an ID means nothing elsewhere."""
    host = data.get("HostConfig") or {}
    for key in _CONTAINER_MODES:
        mode = str(host.get(key) or "")
        if mode.startswith("container:"):
            host[key] = f"container:{_name_of(engine, mode.partition(':')[2])}"
    refs = []
    for ref in host.get("VolumesFrom") or []:
        other, sep, mode = str(ref).partition(":")
        refs.append(f"{_name_of(engine, other)}{sep}{mode}")
    if refs:
        host["VolumesFrom"] = refs


def _name_of(engine: Engine, ref: str) -> str:
    found = engine.find_container(ref)
    return str(found.get("Name", ref)).lstrip("/") if found else ref


@contextlib.contextmanager
def held_still(
    engine: Engine, container: str, state: str, stop_source: bool, reporter: Reporter
) -> Iterator[None]:
    """Pause (or stop) *container* for the block; put it back as it was unless stopping."""
    if stop_source and state in ("running", "paused"):
        if state == "paused":
            engine.unpause(container)
        engine.stop(container)
        reporter.step(f"stopped the source container {container} (--stop-source)")
        yield
        return
    if state != "running":
        yield
        return
    engine.pause(container)
    try:
        yield
    finally:
        with contextlib.suppress(LayerferryError):
            engine.unpause(container)


def capture(
    engine: Engine,
    container: str,
    image: ImageName,
    mounts: Sequence[MountSpec],
    cache: BlobCache,
    reporter: Reporter,
    *,
    stop_source: bool = False,
    message: str | None = None,
    defaults_memo: dict[str, dict[str, Any] | None] | None = None,
) -> Capture:
    """Commit *container* as *image* and read the data of *mounts* into *cache*, held still."""
    spec, inspect, defaults = read_spec(engine, container, defaults_memo)
    state = state_of(inspect)
    layer_size = int(engine.container_size(container).get("SizeRw") or 0)
    data: list[CapturedData] = []
    with held_still(engine, container, state, stop_source, reporter):
        image_id = engine.commit(
            container,
            repository=image.repository,
            tag=image.tag,
            message=message,
            author=None,
            changes=[],
            pause=False,
        )
        reporter.step(
            f"committed container {container} as {image} ({human_bytes(layer_size)} of changes)"
        )
        for mount in mounts:
            entry = capture_mount(engine, str(inspect.get("Image", "")), mount, cache)
            data.append(CapturedData(mount, entry, cache))
            reporter.step(f"read {mount.label}: {human_bytes(entry.size)}")
    return Capture(spec, inspect, image, image_id, data, state, layer_size, defaults)
