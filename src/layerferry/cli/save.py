from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import typer

from ..errors import UsageError
from ..tario.compression import Compression
from ..workflows.inventory import Inventory
from ..workflows.transfer import save
from ._app import app, globals_of

_SUFFIXES = {Compression.GZIP: (".gz", ".tgz"), Compression.ZSTD: (".zst", ".zstd")}


@app.command("save")
def save_cmd(
    ctx: typer.Context,
    images: list[str] = typer.Argument(
        ..., show_default=False, help="Images to save (name:tag or ID)."
    ),
    output: str = typer.Option(
        ..., "--output", "-o", show_default=False, help="Archive file, or - for standard output."
    ),
    compress: str = typer.Option(
        "none",
        "--compress",
        help="Whole-archive compression: none, gzip or zstd (zstd: layerferry load, or docker load of Docker 25+).",
    ),
    thin_for: Path | None = typer.Option(
        None,
        "--thin-for",
        show_default=False,
        help="An inventory of the receiving engine (from `layerferry inventory`): leave out what it has.",
    ),
    layer_compression: str = typer.Option(
        "none",
        "--layer-compression",
        help="Layers inside the archive: none or gzip (every engine loads both; never zstd).",
    ),
) -> None:
    """Save images into one archive that any Docker (20.10+), Podman or skopeo loads.

    Uncompressed and gzip archives load everywhere, plain `docker load` of 20.10 included;
    zstd archives load with `layerferry load` anywhere, and with plain `docker load` of Docker 25
    and later. With --thin-for the archive is a delta for one engine: load it with `layerferry load`.
    """
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
    inventory = Inventory.read(thin_for) if thin_for is not None else None
    if output == "-":
        if sys.stdout.isatty():
            raise UsageError(
                "refusing to write an archive to a terminal; redirect it or use -o FILE"
            )
        target: Path | None = None
    else:
        target = Path(output)
        _warn_suffix(target, kind, g.reporter.warn)
    result = save(
        images,
        target if target is not None else sys.stdout.buffer,
        compression=kind,
        layer_compression=layers,
        thin_for=inventory,
        settings=g.settings,
        reporter=g.reporter,
    )
    if target is not None:
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
