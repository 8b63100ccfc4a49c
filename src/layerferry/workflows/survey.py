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

from ..copy.plan import longest_present_prefix
from ..daemon.engine import ImageRecord
from ..errors import LayerferryError
from ..oci.digest import Digest, chain_ids
from ..remote.host import RemoteHost
from ..remote.target import SshTarget
from ..settings import Settings

# How long the reader waits for every host's answer before keeping every layer instead.
DECIDE_WITHIN = 3.0


class NoTargetReached(LayerferryError):
    """Every target failed to connect: there is nothing to read the images for."""


@dataclass(frozen=True)
class Reached:
    """A connected target and the layer chains its engine held when it was asked."""

    host: RemoteHost
    chains: frozenset[Digest]


def lacking(records: Sequence[ImageRecord], chains: frozenset[Digest]) -> set[Digest]:
    """The layers of *records* above the longest chain prefix a host holds."""
    out: set[Digest] = set()
    for record in records:
        have = longest_present_prefix(chain_ids(record.diff_ids), set(chains))
        out.update(record.diff_ids[have:])
    return out


class TargetSurvey:
    """Connects to every target in the background; answers which layers any of them lacks.

    It is the reader's :class:`~layerferry.archive.scan.LayerFilter`: the first layer of the
    save waits until every host has answered (or failed), for at most :attr:`patience`
    seconds: a host still connecting then (an engine that hangs) might lack anything, so every
    layer is kept, and the hosts that answered are not held up by it. A host that failed wants
    nothing: its own send reports the failure. Owns the connections: :meth:`close` ends them.
    """

    patience: float = DECIDE_WITHIN

    def __init__(self, targets: Sequence[SshTarget], settings: Settings) -> None:
        self._targets = list(targets)
        self._settings = settings
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
            except BaseException:
                host.close()
                raise
            return Reached(host, chains)
        finally:
            self._ended[target] = time.monotonic()

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

    def close(self) -> None:
        """Wait for connections still being made, then end every one."""
        self._pool.shutdown(wait=True)
        for future in self._futures.values():
            if future.exception() is None:
                future.result().host.close()
