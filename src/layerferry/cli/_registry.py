"""Options every verb that talks to a registry shares, and its JSON summary."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..errors import UsageError
from ..registry.transport import RegistryOptions
from ..settings import Settings
from ._app import Globals

if TYPE_CHECKING:  # annotations only: a send need not load the registry client
    from ..registry.push import ManifestFormat
    from ..workflows.copy import CopyResult


def ca_file_option() -> Any:
    return typer.Option(
        None,
        "--ca-file",
        show_default=False,
        help="Also trust the CA certificates in this PEM file for registries (env LAYERFERRY_CA_FILE).",
    )


def insecure_option() -> Any:
    return typer.Option(
        [],
        "--insecure-registry",
        metavar="HOST:PORT",
        help="Talk plain HTTP to this registry (repeatable; env LAYERFERRY_INSECURE_REGISTRIES).",
    )


def format_option() -> Any:
    return typer.Option(
        "oci",
        "--format",
        help="Manifest written to a registry: oci, or docker (v2 schema 2, for old registries).",
    )


def with_registry(g: Globals, ca_file: Path | None, insecure: list[str]) -> Settings:
    options = RegistryOptions.from_env(ca_file=ca_file, insecure=insecure)
    return dataclasses.replace(g.settings, registry=options)


def manifest_format(text: str) -> ManifestFormat:
    if text == "oci":
        return "oci"
    if text == "docker":
        return "docker"
    raise UsageError(f"unknown manifest format {text!r}: use oci or docker")


def summary(result: CopyResult) -> dict[str, Any]:
    traffic = result.traffic
    return {
        "source": result.source,
        "destination": result.destination,
        "image": str(result.image.config.digest),
        "tags": [str(t) for t in result.image.tags],
        "manifest": str(result.manifest_digest) if result.manifest_digest else None,
        "layers_sent": result.report.layers_sent,
        "bytes_sent": result.report.bytes_sent,
        "layers_pulled": result.layers_pulled,
        "bytes_pulled": result.bytes_pulled,
        "blobs_uploaded": traffic.blobs_uploaded if traffic else 0,
        "blobs_mounted": traffic.blobs_mounted if traffic else 0,
        "bytes_uploaded": traffic.bytes_uploaded if traffic else 0,
    }


def tell(g: Globals, result: CopyResult) -> None:
    digest = f" as {result.manifest_digest}" if result.manifest_digest else ""
    g.reporter.step(f"{result.destination} has image {result.image.config.digest.short}{digest}")
    g.emit(summary(result))
