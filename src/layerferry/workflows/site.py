"""Where a container is recreated: the local engine, or a remote host over SSH.

A site answers what its host has (paths, listening ports), takes images through the copy engine,
and takes a container's data: on a remote host the data is staged first (resumable, checked with
``sha256sum`` there, like layers) and unpacked by the host's own ``docker cp``; locally it is
streamed into the engine's archive endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..copy.blobcache import BlobCache
from ..copy.destinations import DaemonDestination, Destination, SshDaemonDestination
from ..copy.staged import CachedBlob, stage_all
from ..daemon.engine import Engine
from ..errors import RemoteError
from ..remote.checks import HostFacts, local_facts, remote_facts
from ..remote.host import RemoteHost
from ..remote.staging import UNPACK_STREAM, RemoteStaging
from ..reporting import Reporter
from ..tario.compression import Compression
from .volumes import CapturedData, restore_local


class Site(Protocol):
    where: str
    engine: Engine
    remote: bool

    def facts(self, paths: Sequence[str]) -> HostFacts: ...

    def destination(self) -> Destination: ...

    def stage(self, data: Sequence[CapturedData], meter: list[int]) -> None:
        """Send *data* ahead, before anything on the host changes."""

    def restore(self, helper_id: str, data: CapturedData) -> None:
        """Unpack *data* into the helper container's data mount."""

    def discard_staged(self) -> None: ...


class LocalSite:
    remote = False

    def __init__(self, engine: Engine, cache: BlobCache) -> None:
        self.engine = engine
        self.where = engine.where
        self._cache = cache

    def facts(self, paths: Sequence[str]) -> HostFacts:
        return local_facts(paths)

    def destination(self) -> Destination:
        return DaemonDestination(self.engine, self._cache)

    def stage(self, data: Sequence[CapturedData], meter: list[int]) -> None:
        pass

    def restore(self, helper_id: str, data: CapturedData) -> None:
        restore_local(self.engine, helper_id, data)

    def discard_staged(self) -> None:
        pass


class RemoteSite:
    remote = True

    def __init__(self, host: RemoteHost, cache: BlobCache, reporter: Reporter) -> None:
        self.host = host
        self.engine = host.engine
        self.where = str(host.target)
        self._cache = cache
        self._reporter = reporter
        self._staging: RemoteStaging | None = None
        self._staged: dict[str, CachedBlob] = {}
        self._codec = Compression.ZSTD if "zstd" in host.probe.tools else Compression.NONE

    def facts(self, paths: Sequence[str]) -> HostFacts:
        return remote_facts(self.host.session, paths)

    def destination(self) -> Destination:
        return SshDaemonDestination(self.host, self._cache, self._reporter)

    def _blob(self, data: CapturedData) -> CachedBlob:
        return CachedBlob(data.cache, data.entry, self._codec, f"data of {data.mount.label}")

    def stage(self, data: Sequence[CapturedData], meter: list[int]) -> None:
        if not data or "sha256sum" not in self.host.probe.tools:
            return  # streamed at restore time instead
        staging = RemoteStaging(self.host.session, self.host.probe.staging_dir)
        blobs = [self._blob(d) for d in data]
        state = staging.query([b.name for b in blobs])
        stage_all(staging, blobs, state, self._reporter, meter)
        self._staging = staging
        self._staged = {b.name: b for b in blobs}

    def restore(self, helper_id: str, data: CapturedData) -> None:
        blob = self._blob(data)
        if self._staging is not None and blob.name in self._staged:
            self._staging.unpack(blob.name, self._codec.value, helper_id)
            return
        argv = ["sh", "-c", UNPACK_STREAM, "sh", self._codec.value, helper_id]
        result = self.host.session.pipe_in(argv, blob.chunks_from(0))
        if result.returncode != 0:
            lines = result.stderr.decode(errors="replace").strip().splitlines()
            raise RemoteError(
                f"{self.where}: unpacking {data.mount.label} failed: "
                f"{lines[-1] if lines else 'no message'}"
            )

    def discard_staged(self) -> None:
        if self._staging is not None:
            self._staging.cleanup(None, list(self._staged))
            self._staging = None
