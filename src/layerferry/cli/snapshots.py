from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from ..units import human_bytes
from ..workflows.snapshot import snapshots
from ._app import app, globals_of


@app.command("snapshots")
def snapshots_cmd(
    ctx: typer.Context,
    container: str | None = typer.Argument(
        None, show_default=False, help="Only this container's snapshots."
    ),
) -> None:
    """List the snapshots on the local engine, oldest first, with their sizes."""
    g = globals_of(ctx)
    found = snapshots(container, settings=g.settings)
    if not g.quiet and not g.json:
        table = Table(box=None)
        # What the user types next is never cut short: the ID stays whole on one line, names
        # and labels fold onto more lines; the other columns give way.
        width = max((len(i.record.id) for i in found), default=8)
        table.add_column("container", overflow="fold")
        table.add_column("snapshot", no_wrap=True, min_width=width)
        table.add_column("label", overflow="fold")
        for column in ("created", "changes", "image", "volume data"):
            table.add_column(column)
        for info in found:
            record = info.record
            image = human_bytes(info.image_size) if info.image_size is not None else "gone"
            volumes = (
                f"{human_bytes(record.data_size)} ({len(record.data)})" if record.data else "-"
            )
            cells = (
                record.container,
                record.id,
                record.label or "-",
                record.created,
                human_bytes(record.layer_size),
                image,
                volumes,
            )
            table.add_row(*(escape(c) for c in cells))  # labels are user text, not markup
        if found:
            g.reporter.console.print(table)
        else:
            g.reporter.console.print(
                "no snapshots" + (f" of {container}" if container else ""), markup=False
            )
    g.emit(
        {
            "snapshots": [
                {
                    "container": i.record.container,
                    "snapshot": i.record.id,
                    "label": i.record.label,
                    "created": i.record.created,
                    "image": i.record.image,
                    "image_bytes": i.image_size,
                    "layer_bytes": i.record.layer_size,
                    "data_bytes": i.record.data_size,
                    "volumes": [
                        {
                            "name": d.mount.source,
                            "kind": d.mount.type,
                            "anonymous": d.mount.anonymous,
                            "destination": d.mount.destination,
                            "bytes": d.size,
                        }
                        for d in i.record.data
                    ],
                }
                for i in found
            ]
        }
    )
