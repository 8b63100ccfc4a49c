from __future__ import annotations

from pathlib import Path

import typer

from ..workflows.copy import pull
from ._app import app, globals_of
from ._registry import ca_file_option, insecure_option, tell, with_registry


@app.command("pull")
def pull_cmd(
    ctx: typer.Context,
    source: str = typer.Argument(..., show_default=False, metavar="docker://REGISTRY/REPO[:TAG]"),
    image: str | None = typer.Argument(
        None,
        show_default=False,
        help="Name in the local engine (default: as docker pull names it).",
    ),
    platform: str | None = typer.Option(
        None, "--platform", help="From a multi-platform image, pull os/arch[/variant]."
    ),
    ca_file: Path | None = ca_file_option(),
    insecure: list[str] = insecure_option(),
) -> None:
    """Pull an image from a registry into the local engine, verifying every blob."""
    g = globals_of(ctx)
    result = pull(
        source,
        image,
        platform=platform,
        settings=with_registry(g, ca_file, insecure),
        reporter=g.reporter,
    )
    tell(g, result)
