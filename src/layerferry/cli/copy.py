from __future__ import annotations

from pathlib import Path

import typer

from ..workflows.copy import copy
from ._app import app, globals_of
from ._registry import (
    ca_file_option,
    format_option,
    insecure_option,
    manifest_format,
    tell,
    with_registry,
)


@app.command("copy")
def copy_cmd(
    ctx: typer.Context,
    source: str = typer.Argument(..., show_default=False, metavar="SRC"),
    destination: str = typer.Argument(..., show_default=False, metavar="DST"),
    platform: str | None = typer.Option(
        None, "--platform", help="From a multi-platform image, copy os/arch[/variant]."
    ),
    fmt: str = format_option(),
    ca_file: Path | None = ca_file_option(),
    insecure: list[str] = insecure_option(),
) -> None:
    """Copy an image between any two locations, moving only what the destination lacks.

    Locations: docker-daemon:IMAGE, ssh://[user@]host[:port]/IMAGE, docker-archive:PATH[:IMAGE],
    oci-archive:PATH[:REF], oci:DIR[:REF], docker://REGISTRY/REPO[:TAG|@DIGEST].
    """
    g = globals_of(ctx)
    result = copy(
        source,
        destination,
        platform=platform,
        manifest_format=manifest_format(fmt),
        settings=with_registry(g, ca_file, insecure),
        reporter=g.reporter,
    )
    tell(g, result)
