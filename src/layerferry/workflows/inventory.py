"""``inventory``: what an engine already holds, recorded so a delta can be built for it offline.

The record lists every image (ID, tags, diff IDs) and the chain IDs they add up to. ``save
--thin-for`` leaves out every layer whose chain the record lists; ``load`` of such a delta checks
the receiving engine really has those chains before anything is loaded.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..daemon.engine import Engine, EngineInfo, connect_local
from ..errors import ArchiveError, NotFoundError
from ..oci.digest import Digest, chain_ids
from ..remote.host import RemoteHost
from ..remote.target import SshTarget
from ..settings import Settings

FORMAT = "layerferry-inventory/1"
MAX_INVENTORY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class InventoryImage:
    id: str
    tags: list[str]
    diff_ids: list[Digest]


@dataclass(frozen=True)
class Inventory:
    host: str
    engine: dict[str, Any]
    images: list[InventoryImage] = field(default_factory=list)
    created: str = ""

    @property
    def chains(self) -> set[Digest]:
        return {c for image in self.images for c in chain_ids(image.diff_ids)}

    def supplier_of(self, chain: Digest) -> str | None:
        """A name for an image on that host which holds *chain* (to tell the user what to load)."""
        for image in self.images:
            if chain in chain_ids(image.diff_ids):
                return image.tags[0] if image.tags else image.id
        return None

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "host": self.host,
                "created": self.created,
                "engine": self.engine,
                "images": [
                    {"id": i.id, "tags": i.tags, "diff_ids": [str(d) for d in i.diff_ids]}
                    for i in self.images
                ],
                "chains": sorted(str(c) for c in self.chains),
            },
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str, where: str) -> Inventory:
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ArchiveError(
                    f"{where}: not a layerferry inventory (format {data.get('format')!r})"
                )
            images = [
                InventoryImage(
                    id=str(i["id"]),
                    tags=[str(t) for t in i.get("tags") or []],
                    diff_ids=[Digest.parse(d) for d in i["diff_ids"]],
                )
                for i in data["images"]
            ]
            return cls(
                str(data["host"]),
                dict(data.get("engine") or {}),
                images,
                str(data.get("created", "")),
            )
        except ArchiveError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ArchiveError(f"{where}: not a valid inventory ({exc})") from exc

    @classmethod
    def read(cls, path: Path) -> Inventory:
        try:
            with path.open("rb") as fh:
                raw = fh.read(MAX_INVENTORY_BYTES + 1)
        except FileNotFoundError as exc:
            raise NotFoundError(f"{path}: no such inventory file") from exc
        if len(raw) > MAX_INVENTORY_BYTES:
            raise ArchiveError(f"{path}: inventory over {MAX_INVENTORY_BYTES} bytes")
        return cls.from_json(raw.decode(errors="replace"), str(path))


def _engine_record(info: EngineInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "id": info.engine_id,
        "version": info.version,
        "api_version": info.api_version,
        "os": info.os,
        "architecture": info.architecture,
        "containerd_store": info.containerd_store,
    }


def inventory_of(engine: Engine, where: str) -> Inventory:
    info = engine.info()
    images = [InventoryImage(r.id, r.tags, r.diff_ids) for r in engine.images()]
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return Inventory(host=where, engine=_engine_record(info), images=images, created=created)


def inventory(
    host: str | SshTarget | None = None, *, settings: Settings | None = None
) -> Inventory:
    """What the local engine (or *host*'s) holds now."""
    settings = settings or Settings.from_env()
    if host is None:
        engine = connect_local(settings.docker_host)
        try:
            return inventory_of(engine, engine.where)
        finally:
            engine.close()
    target = host if isinstance(host, SshTarget) else SshTarget.parse(host)
    with RemoteHost.connect(target, ssh_config=settings.ssh_config) as remote:
        return inventory_of(remote.engine, str(target))
