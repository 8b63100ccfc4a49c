from __future__ import annotations

from pathlib import Path

import typer

from ..workflows.copy import push
from ._app import app, globals_of
from ._registry import (
    ca_file_option,
    format_option,
    insecure_option,
    manifest_format,
    tell,
    with_registry,
)


@app.command("push")
def push_cmd(
    ctx: typer.Context,
    image: str = typer.Argument(
        ..., show_default=False, help="An image of the local engine (or any copy location)."
    ),
    destination: str = typer.Argument(
        ..., show_default=False, metavar="docker://REGISTRY/REPO[:TAG]"
    ),
    fmt: str = format_option(),
    ca_file: Path | None = ca_file_option(),
    insecure: list[str] = insecure_option(),
) -> None:
    """Push an image to a registry; blobs it has (or can mount) are not uploaded again."""
    g = globals_of(ctx)
    result = push(
        image,
        destination,
        manifest_format=manifest_format(fmt),
        settings=with_registry(g, ca_file, insecure),
        reporter=g.reporter,
    )
    tell(g, result)
