"""``inspect`` and ``verify``: what an archive holds, and whether every byte of it checks out.

Both read the archive in one pass without keeping layers (nothing is written to the blob cache)
and need no engine. ``verify`` reads every platform an index lists and collects every problem
instead of stopping at the first; ``inspect`` shows the images, layers, history and the parts of
each config that matter (env *names* only: values may be secrets).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..archive.classify import STANDARD_INPUT
from ..archive.limits import Limits
from ..archive.model import ArchiveReading, ReadImage
from ..archive.platforms import parse_platform
from ..archive.read import ReadOptions, read_path, read_stream
from ..archive.scan import MeasuringSink
from ..errors import IntegrityError
from ..oci.config import ImageConfig
from ..reporting import NullReporter, Reporter
from ..units import plural
from ._args import as_path_or_stream


def _read(source: Path | BinaryIO, platform: str | None, limits: Limits | None) -> ArchiveReading:
    options = ReadOptions(
        platform=parse_platform(platform) if platform else None,
        all_platforms=platform is None,
        strict=False,
        limits=limits or Limits(),
    )
    if isinstance(source, Path):
        return read_path(source, MeasuringSink(), options)
    return read_stream(source, MeasuringSink(), STANDARD_INPUT, options)


def inspect_archive(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    platform: str | None = None,
    limits: Limits | None = None,
    reporter: Reporter | None = None,
) -> ArchiveReading:
    """Read *source* (file, directory or stream) and describe it; problems are kept, not raised."""
    reading = _read(as_path_or_stream(source, "source"), platform, limits)
    for warning in reading.findings.warnings:
        (reporter or NullReporter()).warn(warning)
    return reading


@dataclass(frozen=True)
class VerifyResult:
    reading: ArchiveReading

    @property
    def ok(self) -> bool:
        return self.reading.ok

    @property
    def problems(self) -> list[str]:
        return [str(p) for p in self.reading.findings.problems]

    def raise_for_problems(self) -> None:
        problems = self.reading.findings.problems
        if not problems:
            return
        first = problems[0]
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise IntegrityError(
            f"verification failed: {first}{more}",
            hint=first.hint or "the archive is damaged; copy it again",
        )


def verify_archive(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    platform: str | None = None,
    limits: Limits | None = None,
    reporter: Reporter | None = None,
) -> VerifyResult:
    """Check every blob's digest and size, every layer's diff ID, both views, index reachability.

    Returns the result; :meth:`VerifyResult.raise_for_problems` turns problems into an error.
    """
    reporter = reporter or NullReporter()
    reading = _read(as_path_or_stream(source, "source"), platform, limits)
    for warning in reading.findings.warnings:
        reporter.warn(warning)
    for problem in reading.findings.problems:
        reporter.step(f"problem: {problem}")
    if reading.ok:
        left_out = reading.left_out_layers()
        layers = len(
            {
                layer.diff_id
                for image in reading.images
                for layer in image.layers
                if not layer.left_out
            }
        )
        reporter.step(
            f"{reading.source}: verified {len(reading.images)} image(s), {layers} layer(s): "
            "every digest, size and diff ID matches"
        )
        if left_out:
            reporter.step(f"{reading.source}: {left_out_line(len(left_out))}")
    return VerifyResult(reading)


def left_out_line(count: int) -> str:
    """What ``verify`` and ``inspect`` say of the layers a delta leaves out."""
    return f"left out: a delta for a receiver that holds them ({plural(count, 'layer')})"


# -- describing ---------------------------------------------------------------------------------
def config_summary(config: ImageConfig) -> dict[str, Any]:
    """The run configuration worth seeing. Env values are never shown: they may be secrets."""
    cfg = config.container_config
    env = cfg.get("Env")
    names = [e.split("=", 1)[0] for e in env if isinstance(e, str)] if isinstance(env, list) else []
    return {
        "entrypoint": _words(cfg.get("Entrypoint")),
        "cmd": _words(cfg.get("Cmd")),
        "env_names": names,
        "exposed_ports": _keys(cfg.get("ExposedPorts")),
        "volumes": _keys(cfg.get("Volumes")),
        "user": _text(cfg.get("User")),
        "working_dir": _text(cfg.get("WorkingDir")),
        "labels": _keys(cfg.get("Labels")),
    }


# The reader refuses configs with other types; these only keep a caller's config from printing
# something unexpected (never an env value).
def _words(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return None


def _keys(value: Any) -> list[str]:
    return sorted(str(k) for k in value) if isinstance(value, dict) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def layer_history(config: ImageConfig) -> list[str]:
    """``created_by`` of the history entries that made a layer, in layer order."""
    out = []
    for entry in config.data.get("history") or []:
        if isinstance(entry, dict) and not entry.get("empty_layer"):
            out.append(str(entry.get("created_by") or entry.get("comment") or ""))
    return out


def describe_image(image: ReadImage) -> dict[str, Any]:
    history = layer_history(image.config)
    config = image.config
    return {
        "id": str(config.digest),
        "tags": [str(t) for t in image.tags],
        "refs": image.refs,
        "manifest": str(image.manifest_digest) if image.manifest_digest else None,
        "platform": str(config.platform),
        "created": config.data.get("created"),
        "views": image.views,
        "platforms": [
            {
                "platform": p.platform,
                "manifest": str(p.manifest),
                "complete": p.complete,
                "attestation": p.attestation,
                "chosen": p.chosen,
            }
            for p in image.platforms
        ],
        "config": config_summary(config),
        "layers": [
            {
                "index": layer.index,
                "diff_id": str(layer.diff_id),
                "size": layer.size,
                "stored_size": layer.stored_size,
                "stored_digest": str(layer.stored_digest) if layer.stored_digest else None,
                "compression": layer.compression.value,
                "member": layer.member or None,
                "left_out": layer.left_out,
                "created_by": history[layer.index - 1] if layer.index <= len(history) else None,
            }
            for layer in image.layers
        ],
        "history": [
            {
                "created": h.get("created"),
                "created_by": h.get("created_by"),
                "empty_layer": bool(h.get("empty_layer")),
                "comment": h.get("comment"),
            }
            for h in config.data.get("history") or []
            if isinstance(h, dict)
        ],
    }


def describe(reading: ArchiveReading) -> dict[str, Any]:
    """The machine-readable form (``layerferry --json inspect``)."""
    return {
        "source": reading.source,
        "format": reading.format.value,
        "compression": reading.compression.value,
        "nested": reading.nested,
        "ok": reading.ok,
        "delta": reading.is_delta,
        "left_out": [str(d) for d in reading.left_out_layers()],
        "images": [describe_image(i) for i in reading.images],
        "problems": [str(p) for p in reading.findings.problems],
        "warnings": list(reading.findings.warnings),
    }
