from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..errors import UsageError
from ..workflows.transfer import load
from ._app import app, globals_of, limits_option


@app.command("load")
def load_cmd(
    ctx: typer.Context,
    archive: str = typer.Argument(
        ..., show_default=False, help="Archive file (any compression), or - for standard input."
    ),
    host: str | None = typer.Option(
        None, "--host", show_default=False, help="Load on ssh://[user@]host[:port] instead."
    ),
    tag: str | None = typer.Option(
        None, "--tag", "-t", help="Tag the loaded image NAME:TAG (for untagged archives)."
    ),
    image: list[str] = typer.Option(
        [], "--image", help="Load only this image: a tag, a 1-based position or an ID prefix."
    ),
    platform: str | None = typer.Option(
        None, "--platform", help="From multi-platform images, load this os/arch[/variant]."
    ),
    max_expansion: int | None = limits_option(),
) -> None:
    """Verify an archive (any form, any compression), then load it into an engine."""
    g = globals_of(ctx)
    if archive == "-" and sys.stdin.isatty():
        raise UsageError("refusing to read an archive from a terminal; pipe one in or name a file")
    source = sys.stdin.buffer if archive == "-" else Path(archive)
    result = load(
        source,
        host=host,
        tag=tag,
        select=image,
        platform=platform,
        limits=g.limits(max_expansion),
        settings=g.settings,
        reporter=g.reporter,
    )
    for loaded in result.images:
        names = ", ".join(str(t) for t in loaded.tags) or "untagged"
        g.reporter.step(f"{result.destination} has image {loaded.config.digest} ({names})")
    g.emit(
        {
            "destination": result.destination,
            "bytes_sent": result.report.bytes_sent,
            "images": [
                {"id": str(i.config.digest), "tags": [str(t) for t in i.tags]}
                for i in result.images
            ],
        }
    )
