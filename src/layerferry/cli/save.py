from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import typer

from ..errors import UsageError
from ..tario.compression import Compression
from ..workflows.transfer import save
from ._app import app, globals_of

_SUFFIXES = {Compression.GZIP: (".gz", ".tgz"), Compression.ZSTD: (".zst", ".zstd")}


@app.command("save")
def save_cmd(
    ctx: typer.Context,
    images: list[str] = typer.Argument(..., help="Images to save (name:tag or ID)."),
    output: str = typer.Option(
        ..., "--output", "-o", help="Archive file, or - for standard output."
    ),
    compress: str = typer.Option(
        "none", "--compress", help="Whole-archive compression: none, gzip or zstd."
    ),
    layer_compression: str = typer.Option(
        "none",
        "--layer-compression",
        help="Layers inside the archive: none or gzip (every engine loads both; never zstd).",
    ),
) -> None:
    """Save images into one archive that any Docker (20.10+), Podman or skopeo loads."""
    g = globals_of(ctx)
    try:
        kind = Compression(compress)
    except ValueError:
        raise UsageError(f"unknown compression {compress!r}: use none, gzip or zstd") from None
    if kind in (Compression.XZ, Compression.BZIP2):
        raise UsageError(f"layerferry does not write {compress}; use gzip or zstd")
    if layer_compression not in ("none", "gzip"):
        raise UsageError(
            f"unknown layer compression {layer_compression!r}: use none or gzip "
            "(zstd layers do not load on Docker 20.10; use --compress zstd for the whole file)"
        )
    layers = Compression(layer_compression)
    if output == "-":
        if sys.stdout.isatty():
            raise UsageError(
                "refusing to write an archive to a terminal; redirect it or use -o FILE"
            )
        result = save(
            images,
            sys.stdout.buffer,
            compression=kind,
            layer_compression=layers,
            settings=g.settings,
            reporter=g.reporter,
        )
    else:
        path = Path(output)
        _warn_suffix(path, kind, g.reporter.warn)
        result = save(
            images,
            path,
            compression=kind,
            layer_compression=layers,
            settings=g.settings,
            reporter=g.reporter,
        )
    if output != "-":
        g.emit(
            {
                "output": result.output,
                "bytes": result.bytes_written,
                "images": [
                    {"id": str(i.config.digest), "tags": [str(t) for t in i.tags]}
                    for i in result.images
                ],
            }
        )


def _warn_suffix(path: Path, kind: Compression, warn: Callable[[str], None]) -> None:
    name = path.name
    if kind is not Compression.NONE and name.endswith(".tar"):
        suffix = _SUFFIXES[kind][0]
        warn(f"{path} will hold a {kind.value} stream; name it {name}{suffix} to say so")
        return
    for other, suffixes in _SUFFIXES.items():
        if name.endswith(suffixes) and other is not kind:
            warn(
                f"{path} ends in {name[name.rfind('.') :]} but the archive is {kind.value}; "
                f"pass --compress {other.value} if you meant it"
            )
