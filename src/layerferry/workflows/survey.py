"""Reaching the targets of a ``send`` while the local engine prepares its save.

An engine's ``save`` takes most of a second before its first byte (Docker 20.10 exports the
image to a directory first), and connecting to a host takes about as long. Doing both at once
hides one behind the other. Knowing each host's layer chains before the layers stream by also
lets the reader compress only the layers some host lacks: a base image every target holds is
measured and dropped instead of being compressed into the cache for nobody.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from ..copy.blobcache import BlobCache, LayerWatcher
from ..copy.early import EarlyLoad
from ..copy.growing import GrowingLayer
from ..copy.plan import longest_present_prefix
from ..copy.units import remembered, stream_key
from ..daemon.engine import ImageRecord
from ..errors import LayerferryError
from ..oci.digest import Digest, chain_ids
from ..remote.host import RemoteHost
from ..remote.staging import RemoteStaging, StagingState, state_from_listing
from ..remote.target import SshTarget
from ..reporting import NullReporter, Reporter
from ..settings import Settings
from ..tario.compression import Compression

# How long the reader waits for every host's answer before keeping every layer instead.
DECIDE_WITHIN = 3.0


class NoTargetReached(LayerferryError):
    """Every target failed to connect: there is nothing to read the images for."""


@dataclass(frozen=True)
class Reached:
    """A connected target and the layer chains its engine held when it was asked."""

    host: RemoteHost
    chains: frozenset[Digest]
    early: EarlyLoad | None = None
    """Its load, started before the image was read (see :meth:`TargetSurvey.watch`)."""


def lacking(records: Sequence[ImageRecord], chains: frozenset[Digest]) -> set[Digest]:
    """The layers of *records* above the longest chain prefix a host holds."""
    out: set[Digest] = set()
    for record in records:
        have = longest_present_prefix(chain_ids(record.diff_ids), set(chains))
        out.update(record.diff_ids[have:])
    return out


def _staged_there(cache: BlobCache, diff_id: Digest, state: StagingState) -> bool:
    """Whether an earlier run left the layer's unit staged on the host (then it is not streamed)."""
    known = remembered(cache, diff_id, Compression.ZSTD)
    return known is not None and f"{known[0].hex}.zst" in state.done


class TargetSurvey:
    """Connects to every target in the background; answers which layers any of them lacks.

    It is the reader's :class:`~layerferry.archive.scan.LayerFilter`: the first layer of the
    save waits until every host has answered (or failed), for at most :attr:`patience`
    seconds: a host still connecting then (an engine that hangs) might lack anything, so every
    layer is kept, and the hosts that answered are not held up by it. A host that failed wants
    nothing: its own send reports the failure. Owns the connections: :meth:`close` ends them.
    """

    patience: float = DECIDE_WITHIN

    def __init__(
        self,
        targets: Sequence[SshTarget],
        settings: Settings,
        reporter: Reporter | None = None,
        *,
        stream: bool = True,
    ) -> None:
        self._targets = list(targets)
        self._settings = settings
        self._reporter = reporter or NullReporter()
        self._stream = stream
        self._growing: list[GrowingLayer] = []
        self._early: list[EarlyLoad] = []
        self._feed_lock = threading.Lock()  # not _lock: that one is held while hosts are awaited
        self._records: list[ImageRecord] = []
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self._targets)))
        self._futures: dict[SshTarget, Future[Reached]] = {}
        self._started = time.monotonic()
        self._ended: dict[SshTarget, float] = {}
        self._lock = threading.Lock()
        self._decided = False
        self._wanted: set[Digest] | None = None

    def begin(self, records: Sequence[ImageRecord]) -> None:
        """Start connecting; *records* are the images to send, as the local engine names them."""
        self._records = list(records)
        self._started = time.monotonic()
        for target in self._targets:
            self._futures[target] = self._pool.submit(self._reach, target)

    def _reach(self, target: SshTarget) -> Reached:
        try:
            host = RemoteHost.connect(target, ssh_config=self._settings.ssh_config)
            try:
                chains = frozenset(host.engine.layer_chains())
                early = self._start_early(host, chains) if self._stream else None
            except BaseException:
                host.close()
                raise
            return Reached(host, chains, early)
        finally:
            self._ended[target] = time.monotonic()

    def _start_early(self, host: RemoteHost, chains: frozenset[Digest]) -> EarlyLoad | None:
        """The host's load, started now so layers it lacks go out as they are compressed.

        Only for hosts that stage zstd units and decide presence by chain (a classic store);
        the others are sent to once the image is read. A layer an earlier run left staged is
        not streamed again; one it left half-streamed is continued where it matches.
        """
        tools = host.probe.tools
        if host.info.containerd_store or not {"sha256sum", "zstd"} <= tools:
            return None
        wanted = lacking(self._records, chains)
        if not wanted:
            return None
        staging = RemoteStaging(host.session, host.probe.staging_dir)
        state = state_from_listing(host.probe.staged, host.probe.free_staging_kib)
        cache = self._settings.blob_cache()
        wanted = {d for d in wanted if not _staged_there(cache, d, state)}
        if not wanted:
            return None
        early = EarlyLoad(
            staging,
            cache,
            self._reporter,
            lacking=wanted,
            engine_root=host.info.root_dir,
            parts={d: state.parts.get(stream_key(d), []) for d in wanted},
            room=None if state.free_staging_kib is None else state.free_staging_kib * 1024,
        )
        with self._feed_lock:
            self._early.append(early)
            for layer in self._growing:
                early.offer(layer)
        return early

    def take(self, target: SshTarget) -> Reached:
        """The target's connection; raises the error that kept it from connecting."""
        return self._futures[target].result()

    def seconds(self, target: SshTarget) -> float:
        """How long reaching *target* took (or has taken so far)."""
        started, ended = self._started, self._ended.get(target)
        return (ended or time.monotonic()) - started

    def _decide(self) -> set[Digest] | None:
        with self._lock:
            if not self._decided:
                _, pending = wait(self._futures.values(), timeout=self.patience)
                if pending:
                    self._wanted, self._decided = None, True  # keep every layer
                    return None
                reached = [f.result() for f in self._futures.values() if f.exception() is None]
                if not reached:
                    raise NoTargetReached("no target could be reached")
                everything = {d for record in self._records for d in record.diff_ids}
                wanted: set[Digest] = set()
                for one in reached:
                    if one.host.info.containerd_store:
                        # Its image list may name layers its content store lacks: a thin load
                        # it refuses is sent again whole, from the cache (see receive).
                        wanted |= everything
                    else:
                        wanted |= lacking(self._records, one.chains)
                self._wanted = None if wanted >= everything else wanted
                self._decided = True
            return self._wanted

    # -- LayerFilter --------------------------------------------------------------------------
    def selective(self) -> bool:
        return self._decide() is not None

    def wanted(self, diff_id: Digest) -> bool:
        wanted = self._decide()
        return wanted is None or diff_id in wanted

    def guess(self, hint: Mapping[str, Any]) -> Digest | None:
        return None  # a survey spans images; the source guesses per image

    def watch(self, diff_id: Digest, size: int) -> LayerWatcher | None:
        if not self._stream:
            return None
        layer = GrowingLayer(diff_id, size)
        with self._feed_lock:
            self._growing.append(layer)
            for early in self._early:
                early.offer(layer)
        return layer

    def close(self) -> None:
        """Wait for connections still being made, stop loads never finished, end every one."""
        self._pool.shutdown(wait=True)
        for layer in self._growing:
            layer.fail()  # a no-op once complete; else its followers stop instead of waiting
        for early in self._early:
            early.abandon()
        for layer in self._growing:
            layer.close()
        for future in self._futures.values():
            if future.exception() is None:
                future.result().host.close()
