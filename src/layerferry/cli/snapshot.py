from __future__ import annotations

import typer

from ..workflows.snapshot import snapshot
from ._app import app, globals_of


@app.command("snapshot")
def snapshot_cmd(
    ctx: typer.Context,
    container: str = typer.Argument(
        ..., show_default=False, help="A container on the local engine."
    ),
    volumes: bool = typer.Option(
        False, "--volumes/--no-volumes", help="Keep the data of its volumes too."
    ),
    label: str = typer.Option(
        "",
        "--label",
        "-l",
        show_default=False,
        help="A name for the snapshot (e.g. before-upgrade).",
    ),
) -> None:
    """Keep a container's state: its changes (a commit), its configuration, optionally its data."""
    g = globals_of(ctx)
    record = snapshot(
        container, volumes=volumes, label=label, settings=g.settings, reporter=g.reporter
    )
    g.emit(
        {
            "container": record.container,
            "snapshot": record.id,
            "label": record.label,
            "created": record.created,
            "image": record.image,
            "layer_bytes": record.layer_size,
            "data_bytes": record.data_size,
            "volumes": [d.mount.label for d in record.data],
        }
    )
