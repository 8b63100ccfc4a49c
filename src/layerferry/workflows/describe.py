"""What a move would do, for ``--dry-run``: layers and bytes, data and sizes, the configuration.

Nothing changes anywhere: the container's base image is read into the local cache (so layer
sizes are exact), the target is asked which layer chains it has, and the engine tells the
volumes' sizes. The container's own changes are known only by their size before a commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..copy.blobcache import BlobCache
from ..copy.plan import longest_present_prefix
from ..copy.sources import DaemonSource
from ..daemon.engine import Engine
from ..errors import LayerferryError
from ..oci.digest import Digest
from .preflight import Preflight
from .spec import ContainerSpec


@dataclass(frozen=True)
class LayerPlan:
    diff_id: str
    size: int
    compressed: int
    sent: bool


@dataclass(frozen=True)
class DataPlan:
    label: str
    destination: str
    size: int | None
    travels: bool


@dataclass(frozen=True)
class MovePlan:
    container: str
    destination: str
    base_image: str
    layers: list[LayerPlan]
    changes_bytes: int
    """The container's writable layer (uncompressed): one more layer, always sent."""
    data: list[DataPlan]
    config: dict[str, Any]
    networks_created: list[str] = field(default_factory=list)
    volumes_created: list[str] = field(default_factory=list)
    volumes_refilled: list[str] = field(default_factory=list)
    """Existing volumes (of the replaced container) refilled, their data kept in a copy first."""
    skipped: list[str] = field(default_factory=list)
    not_carried: list[str] = field(default_factory=list)

    @property
    def bytes_to_send(self) -> int:
        """Compressed bytes of the base layers that travel (the changes come on top)."""
        return sum(layer.compressed for layer in self.layers if layer.sent)


def shown_config(spec: ContainerSpec, image: str) -> dict[str, Any]:
    """The create body, env values hidden (they may hold secrets)."""
    body = spec.create_body(image)
    if body.get("Env"):
        body["Env"] = [f"{e.partition('=')[0]}=…" for e in body["Env"]]
    return body


def plan_move(
    engine: Engine,
    inspect: dict[str, Any],
    preflight: Preflight,
    destination: str,
    chains: set[Digest] | None,
    cache: BlobCache,
) -> MovePlan:
    """*chains*: what the target holds (None: a bundle, which carries every layer)."""
    spec = preflight.spec
    base = DaemonSource(engine, cache).image(str(inspect.get("Image", "")))
    have = longest_present_prefix(base.config.chain_ids, chains) if chains is not None else 0
    layers = [
        LayerPlan(str(e.diff_id), e.size, e.zst_size, sent=n >= have)
        for n, e in enumerate(base.layers)
    ]
    size_rw = int(engine.container_size(str(inspect.get("Id"))).get("SizeRw") or 0)
    return MovePlan(
        container=str(inspect.get("Name", "")).lstrip("/"),
        destination=destination,
        base_image=spec.image or str(inspect.get("Image", "")),
        layers=layers,
        changes_bytes=size_rw,
        data=_data(engine, spec, preflight),
        config=shown_config(spec, f"layerferry/{spec.name}:…"),
        networks_created=[n.name for n, _ in preflight.networks],
        volumes_created=[v.name for v in preflight.volumes],
        volumes_refilled=sorted(preflight.keep),
        skipped=list(preflight.skipped),
        not_carried=list(spec.not_carried),
    )


def _data(engine: Engine, spec: ContainerSpec, preflight: Preflight) -> list[DataPlan]:
    try:
        sizes = engine.volume_sizes()
    except LayerferryError:
        sizes = {}
    travelling = {m.destination for m in preflight.data_mounts}
    out = []
    mounts: Sequence[Any] = list(spec.data_mounts) + list(spec.bind_mounts)
    for mount in mounts:
        size = sizes.get(mount.source) if mount.type == "volume" else None
        out.append(DataPlan(mount.label, mount.destination, size, mount.destination in travelling))
    return out
