from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..errors import UsageError
from ..workflows.transfer import load
from ._app import app, globals_of


@app.command("load")
def load_cmd(
    ctx: typer.Context,
    archive: str = typer.Argument(
        ..., show_default=False, help="Archive file (any compression), or - for standard input."
    ),
    host: str | None = typer.Option(
        None, "--host", show_default=False, help="Load on ssh://[user@]host[:port] instead."
    ),
) -> None:
    """Verify an archive, then load it into the local engine or a remote one."""
    g = globals_of(ctx)
    if archive == "-" and sys.stdin.isatty():
        raise UsageError("refusing to read an archive from a terminal; pipe one in or name a file")
    source = sys.stdin.buffer if archive == "-" else Path(archive)
    result = load(source, host=host, settings=g.settings, reporter=g.reporter)
    for image in result.images:
        names = ", ".join(str(t) for t in image.tags) or "untagged"
        g.reporter.step(f"{result.destination} has image {image.config.digest.short} ({names})")
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
