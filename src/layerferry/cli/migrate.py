from __future__ import annotations

import typer

from ..workflows.migrate import migrate
from ._app import app, globals_of


@app.command("migrate")
def migrate_cmd(
    ctx: typer.Context,
    container: str = typer.Argument(
        ..., show_default=False, help="The container on the local engine."
    ),
    host: str = typer.Argument(
        ..., show_default=False, metavar="HOST", help="The target, as ssh://[user@]host[:port]."
    ),
    start: bool = typer.Option(False, "--start", help="Start the container on the target."),
    name: str | None = typer.Option(
        None, "--name", show_default=False, help="Name on the target (default: the same)."
    ),
    replace: bool = typer.Option(
        False, "--replace", help="Replace a container of that name on the target."
    ),
) -> None:
    """Move a container, with its changes and run configuration, to another host."""
    g = globals_of(ctx)
    result = migrate(
        container,
        host,
        name=name,
        start=start,
        replace=replace,
        settings=g.settings,
        reporter=g.reporter,
    )
    g.emit(
        {
            "container": result.container,
            "target": result.target,
            "image": result.image,
            "container_id": result.container_id,
            "started": result.started,
            "bytes_sent": result.transfer.bytes_sent,
            "layers_sent": result.transfer.layers_sent,
        }
    )
