"""A container's data outside its layer (volumes, bind-mounted paths), read and written through
the engine's archive endpoints on a created-but-never-started helper container (DESIGN §3).

A helper is made from an image the engine already has (the container's own), with the volume or
path mounted at :data:`DATA_PATH` and no network; it is never started, so the image needs no
particular program. ``GET /containers/{helper}/archive`` streams the data as a tar whose entries
start with ``layerferry-data/`` (the mount's root, its owner and mode included); ``PUT`` of that
same tar at ``/`` unpacks it into a fresh volume elsewhere. The tar goes into a blob cache
(zstd-compressed, digest = sha256 of the tar), so it is handled like a layer from then on.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

from ..copy.blobcache import BlobCache, LayerEntry
from ..daemon.engine import Engine
from ..errors import EngineError, LayerferryError
from ..tario.stream import IterStream
from .spec import MountSpec

DATA_PATH = "/layerferry-data"
HELPER_LABEL = "layerferry.helper"
KEPT_LABEL = "layerferry.replaced-data-of"
"""On a volume holding the data a ``--replace`` refill replaced: the refilled volume's name."""
EMPTY_TIMEOUT = 120
COPY_TIMEOUT = 3600
_EMPTY_SCRIPT = 'cd "$1" && rm -rf -- * .[!.]* ..?*'
KEEP_PATH = "/layerferry-keep"
_COPY_SCRIPT = 'cp -a "$1"/. "$2"/'


@dataclass(frozen=True)
class CapturedData:
    """One mount's data, as a tar in a blob cache."""

    mount: MountSpec
    entry: LayerEntry
    cache: BlobCache

    @property
    def size(self) -> int:
        return self.entry.size


def _helper_body(image: str, mount: MountSpec, *, read_only: bool) -> dict[str, object]:
    host: dict[str, object] = {"NetworkMode": "none"}
    if mount.type == "volume":
        host["Mounts"] = [
            {"Type": "volume", "Source": mount.source, "Target": DATA_PATH, "ReadOnly": read_only}
        ]
    else:
        # A bind as -v does it: the engine creates the host path when it is missing.
        host["Binds"] = [f"{mount.source}:{DATA_PATH}{':ro' if read_only else ''}"]
    return {
        "Image": image,
        "Entrypoint": ["/layerferry-helper-is-never-started"],
        "Cmd": [],
        "NetworkDisabled": True,
        "Labels": {HELPER_LABEL: "1"},
        "HostConfig": host,
    }


@contextlib.contextmanager
def helper(engine: Engine, image: str, mount: MountSpec, *, read_only: bool) -> Iterator[str]:
    """A created, never started container with *mount*'s data at :data:`DATA_PATH`."""
    name = f"layerferry-helper-{secrets.token_hex(4)}"
    helper_id = engine.create_container(_helper_body(image, mount, read_only=read_only), name)
    try:
        yield helper_id
    finally:
        _remove_helper(engine, helper_id)


def _remove_helper(engine: Engine, helper_id: str) -> None:
    """Remove a helper with its own anonymous volumes: those the image's ``VOLUME`` lines gave it
    (a committed image declares the anonymous volumes of the container it was made from). The
    engine removes only volumes it made for this container (mounted without a source): the
    volume mounted by name at :data:`DATA_PATH`, named or another container's anonymous one,
    always stays."""
    with contextlib.suppress(LayerferryError):
        engine.remove_container(helper_id, force=True, volumes=True)


def capture_mount(engine: Engine, image: str, mount: MountSpec, cache: BlobCache) -> LayerEntry:
    """Stream *mount*'s data into *cache*; the tar's sha256 is the entry's ``diff_id``."""
    with helper(engine, image, mount, read_only=True) as helper_id:
        return cache.put_layer(IterStream(engine.get_archive(helper_id, DATA_PATH)))


def restore_local(engine: Engine, helper_id: str, data: CapturedData) -> None:
    """Unpack a captured tar into the helper's mount (verified against its digest as it goes)."""
    engine.put_archive(helper_id, "/", data.cache.iter_uncompressed(data.entry))


def empty_volume(engine: Engine, image: str, volume: str) -> None:
    """Remove everything in *volume*, so a restore leaves exactly the captured files.

    The archive endpoints cannot delete, so this runs ``rm`` in a short-lived helper started
    from *image* (which must hold ``/bin/sh``); :class:`EngineError` says when it cannot.
    """
    try:
        _run_script(
            engine, image, _EMPTY_SCRIPT, {volume: DATA_PATH}, f"emptying volume {volume!r}"
        )
    except EngineError as exc:
        raise EngineError(
            f"{engine.where}: cannot empty volume {volume!r} before restoring it: {exc}",
            hint="the image needs /bin/sh for this; remove the volume's files yourself",
        ) from exc


def copy_volume(engine: Engine, image: str, source: str, target: str) -> None:
    """Copy everything in volume *source* into volume *target*, on the engine's own host (the
    data never leaves it): ``cp -a`` in a short-lived helper started from *image* (which must
    hold ``/bin/sh`` and ``cp``), both volumes mounted; :class:`EngineError` when it cannot."""
    try:
        _run_script(
            engine, image, _COPY_SCRIPT, {source: DATA_PATH, target: KEEP_PATH},
            f"copying volume {source!r} into {target!r}", COPY_TIMEOUT,
        )  # fmt: skip
    except EngineError as exc:
        raise EngineError(
            f"{engine.where}: cannot keep the data of volume {source!r} in {target!r}: {exc}",
            hint="the image needs /bin/sh and cp for this",
        ) from exc


def _run_script(
    engine: Engine,
    image: str,
    script: str,
    mounts: dict[str, str],
    what: str,
    timeout: float = EMPTY_TIMEOUT,
) -> None:
    """Run ``sh -c script`` as root in a short-lived helper with *mounts* (volume -> path)."""
    name = f"layerferry-helper-{secrets.token_hex(4)}"
    body = {
        "Image": image,
        "Entrypoint": ["/bin/sh", "-c", script, "sh", *mounts.values()],
        "Cmd": [],
        "User": "0:0",
        "WorkingDir": "/",
        "NetworkDisabled": True,
        "Labels": {HELPER_LABEL: "1"},
        "HostConfig": {
            "NetworkMode": "none",
            "Mounts": [
                {"Type": "volume", "Source": volume, "Target": path}
                for volume, path in mounts.items()
            ],
        },
    }
    helper_id = engine.create_container(body, name)
    try:
        engine.start(helper_id)
        status = engine.wait(helper_id, timeout)
        if status != 0:
            raise EngineError(f"{engine.where}: {what} failed (exited {status})")
    finally:
        _remove_helper(engine, helper_id)
