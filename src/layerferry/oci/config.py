"""Image configuration: kept as the raw bytes read, since the image ID is their digest."""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ArchiveError
from .descriptor import Platform
from .digest import Digest, chain_ids

MAX_CONFIG_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ImageConfig:
    raw: bytes
    data: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, raw: bytes, where: str = "image config") -> ImageConfig:
        if len(raw) > MAX_CONFIG_BYTES:
            raise ArchiveError(f"{where}: {len(raw)} bytes, over the {MAX_CONFIG_BYTES} limit")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise ArchiveError(f"{where}: not valid JSON ({str(exc)[:200]})") from exc
        if not isinstance(data, dict):
            raise ArchiveError(f"{where}: not a JSON object")
        rootfs = data.get("rootfs")
        if rootfs is not None and not (
            isinstance(rootfs, dict) and isinstance(rootfs.get("diff_ids") or [], list)
        ):
            raise ArchiveError(f"{where}: rootfs must be an object with a diff_ids list")
        if not isinstance(data.get("config") or {}, dict):
            raise ArchiveError(f"{where}: config must be an object")
        return cls(raw, data)

    @property
    def digest(self) -> Digest:
        return Digest.of(self.raw)

    @property
    def diff_ids(self) -> list[Digest]:
        rootfs = self.data.get("rootfs") or {}
        raw_ids = rootfs.get("diff_ids") or []
        try:
            return [Digest.parse(d) for d in raw_ids]
        except Exception as exc:
            raise ArchiveError(f"image config {self.digest.short}: bad diff_id ({exc})") from exc

    @property
    def chain_ids(self) -> list[Digest]:
        return chain_ids(self.diff_ids)

    @property
    def platform(self) -> Platform:
        return Platform(
            os=str(self.data.get("os", "")),
            architecture=str(self.data.get("architecture", "")),
            variant=self.data.get("variant"),
        )

    @property
    def container_config(self) -> dict[str, Any]:
        cfg = self.data.get("config")
        return cfg if isinstance(cfg, dict) else {}


# -- field types, as Docker's engine decodes them --------------------------------------------------
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:Z|[+-](\d{2}):(\d{2}))$"
)
_STRINGS = ("architecture", "os", "variant", "os.version", "author", "docker_version")
_RUN_STRINGS = ("User", "WorkingDir", "StopSignal", "Hostname", "Domainname")
_RUN_OBJECTS = ("ExposedPorts", "Volumes")


def is_rfc3339(text: str) -> bool:
    """A timestamp as Go's ``time.Time`` reads it from JSON (RFC 3339, any fraction digits)."""
    match = _RFC3339.match(text)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        datetime.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return False
    zone_h, zone_m = match.group(7), match.group(8)
    return zone_h is None or (int(zone_h) < 24 and int(zone_m) < 60)


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def config_problems(data: dict[str, Any]) -> list[str]:
    """Fields of an image config whose type an engine would refuse (or a reader misread).

    ``null`` stands for an absent field, as in Go. ``Cmd``, ``Entrypoint`` and ``Shell`` may be
    one string (Docker's ``StrSlice`` reads it as a list of one).
    """
    out = [f"{k} must be a string" for k in _STRINGS if not isinstance(data.get(k, ""), str | None)]
    created = data.get("created")
    if created is not None and not (isinstance(created, str) and is_rfc3339(created)):
        out.append(f"created must be an RFC 3339 timestamp{_shown(created)}")
    out += _run_config_problems(data.get("config"))
    out += _rootfs_problems(data.get("rootfs"))
    out += _history_problems(data.get("history"))
    return out


def _run_config_problems(cfg: Any) -> list[str]:
    if cfg is None:
        return []
    if not isinstance(cfg, dict):
        return ["config must be an object"]
    out = []
    if cfg.get("Env") is not None and not _string_list(cfg["Env"]):
        out.append("Env must be a list of strings")
    for key in ("Cmd", "Entrypoint", "Shell", "OnBuild"):
        value = cfg.get(key)
        one_string = isinstance(value, str) and key != "OnBuild"
        if value is not None and not one_string and not _string_list(value):
            out.append(f"{key} must be a list of strings or null")
    out += [
        f"{k} must be a string" for k in _RUN_STRINGS if not isinstance(cfg.get(k, ""), str | None)
    ]
    for key in _RUN_OBJECTS:
        if not isinstance(cfg.get(key) or {}, dict):
            out.append(f"{key} must be an object")
    labels = cfg.get("Labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        out.append("Labels must be an object of strings")
    return out


def _rootfs_problems(rootfs: Any) -> list[str]:
    if rootfs is None:
        return []
    if not isinstance(rootfs, dict):
        return ["rootfs must be an object with a diff_ids list"]
    out = [] if isinstance(rootfs.get("type", ""), str | None) else ["rootfs.type must be a string"]
    ids = rootfs.get("diff_ids")
    if ids is not None and not (_string_list(ids) and all(_is_digest(d) for d in ids)):
        out.append("rootfs.diff_ids must be a list of digests")
    return out


def _history_problems(history: Any) -> list[str]:
    if history is None:
        return []
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        return ["history must be a list of objects"]
    for number, entry in enumerate(history, start=1):
        created = entry.get("created")
        if created is not None and not (isinstance(created, str) and is_rfc3339(created)):
            return [f"history entry {number}: created must be an RFC 3339 timestamp"]
        for key in ("created_by", "author", "comment"):
            if not isinstance(entry.get(key, ""), str | None):
                return [f"history entry {number}: {key} must be a string"]
        if not isinstance(entry.get("empty_layer", False), bool | None):
            return [f"history entry {number}: empty_layer must be true or false"]
    return []


def _is_digest(text: str) -> bool:
    try:
        Digest.parse(text)
    except Exception:
        return False
    return True


def _shown(value: Any) -> str:
    """What a value is instead (never the value: a config may hold secrets)."""
    if isinstance(value, str):
        return " (such as 2024-05-01T12:00:00Z)"
    names = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
    }
    return f" string, not {names.get(type(value), 'another type')}"
