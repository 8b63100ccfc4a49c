"""What a bundle or a snapshot says about the container it holds: spec, settings, data.

One JSON document (``layerferry/spec.json`` in a bundle, ``snapshot.json`` in the snapshot
store): the spec to recreate from, the source's normalized settings to verify against, the
committed image by name and ID, and one entry per captured mount (its tar's sha256 and size, so
the data is checked again before it is restored). It holds env values: written 0600.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

from ..errors import ArchiveError
from .capture import Capture
from .spec import ContainerSpec, MountSpec

FORMAT = "layerferry-container"
VERSION = 1


@dataclass(frozen=True)
class DataRecord:
    mount: MountSpec
    digest: str
    """sha256 of the data's tar."""
    size: int
    member: str = ""
    """Where a bundle keeps it (``layerferry/volumes/named/<name>.tar``, …)."""


@dataclass(frozen=True)
class ContainerRecord:
    container: str
    created: str
    image: str
    image_id: str
    state: str
    layer_size: int
    spec: ContainerSpec
    attributes: dict[str, Any]
    data: tuple[DataRecord, ...] = ()
    id: str = ""
    label: str = ""
    source: str = ""

    @classmethod
    def from_capture(
        cls,
        capture: Capture,
        source: str,
        *,
        members: dict[str, str] | None = None,
        spec: ContainerSpec | None = None,
        **extra: Any,
    ) -> ContainerRecord:
        """The record of *capture*; *spec* replaces the captured one (what was left out)."""
        names = members or {}
        return cls(
            container=capture.spec.name,
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            image=str(capture.image),
            image_id=capture.image_id,
            state=capture.state,
            layer_size=capture.layer_size,
            spec=spec or capture.spec,
            attributes=capture.attributes,
            data=tuple(
                DataRecord(
                    d.mount, str(d.entry.diff_id), d.entry.size, names.get(d.mount.destination, "")
                )
                for d in capture.data
            ),
            source=source,
            **extra,
        )

    @property
    def data_size(self) -> int:
        return sum(d.size for d in self.data)

    def to_bytes(self) -> bytes:
        document = {
            "format": FORMAT,
            "version": VERSION,
            "container": self.container,
            "created": self.created,
            "image": self.image,
            "image_id": self.image_id,
            "state": self.state,
            "layer_size": self.layer_size,
            "id": self.id,
            "label": self.label,
            "source": self.source,
            "spec": self.spec.to_json(),
            "attributes": self.attributes,
            "data": [
                {"mount": vars(d.mount), "digest": d.digest, "size": d.size, "member": d.member}
                for d in self.data
            ],
        }
        return json.dumps(document, indent=2, sort_keys=True).encode()

    @classmethod
    def parse(cls, raw: bytes, where: str) -> ContainerRecord:
        try:
            doc = json.loads(raw)
            if doc.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} record")
            if int(doc.get("version", 0)) > VERSION:
                raise ValueError(
                    f"version {doc.get('version')} is newer than this layerferry reads"
                )
            record = cls(
                container=str(doc["container"]),
                created=str(doc["created"]),
                image=str(doc["image"]),
                image_id=str(doc["image_id"]),
                state=str(doc.get("state") or "stopped"),
                layer_size=int(doc.get("layer_size") or 0),
                spec=ContainerSpec.from_json(doc["spec"]),
                attributes=dict(doc.get("attributes") or {}),
                data=tuple(
                    DataRecord(
                        MountSpec(**d["mount"]),
                        str(d["digest"]),
                        int(d["size"]),
                        str(d.get("member") or ""),
                    )
                    for d in doc.get("data") or []
                ),
                id=str(doc.get("id") or ""),
                label=str(doc.get("label") or ""),
                source=str(doc.get("source") or ""),
            )
            _check(record)
            return record
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ArchiveError(f"{where}: unreadable container record ({exc})") from exc


def _check(record: ContainerRecord) -> None:
    """What the rest relies on: each volume mounted, each data entry a mount of the spec, once."""
    spec = record.spec
    mounted = {m.source for m in spec.mounts if m.type == "volume"}
    for volume in spec.volumes:
        if volume.name not in mounted:
            raise ValueError(f"volume {volume.name!r} is listed but not mounted")
    destinations = [d.mount.destination for d in record.data]
    if len(set(destinations)) != len(destinations):
        raise ValueError("a mount's data is listed twice")
    members = [d.member for d in record.data if d.member]
    if len(set(members)) != len(members):
        raise ValueError("two data entries share one bundle member")
