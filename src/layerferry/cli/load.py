from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..workflows.transfer import load
from ._app import app, globals_of


@app.command("load")
def load_cmd(
    ctx: typer.Context,
    archive: str = typer.Argument(
        ..., help="Archive file (any compression), or - for standard input."
    ),
    host: str | None = typer.Option(
        None, "--host", help="Load on ssh://[user@]host[:port] instead."
    ),
) -> None:
    """Verify an archive, then load it into the local engine or a remote one."""
    g = globals_of(ctx)
    source = sys.stdin.buffer if archive == "-" else Path(archive)
    result = load(source, host=host, settings=g.settings, reporter=g.reporter)
    for image in result.images:
        names = ", ".join(str(t) for t in image.tags) or "untagged"
        g.reporter.step(f"loaded {image.config.digest.short} ({names}) on {result.destination}")
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
