from __future__ import annotations

from pathlib import Path

import typer

from ..workflows.recreate import DEFAULT_HEALTH_TIMEOUT
from ..workflows.restore import restore
from ._app import app, globals_of, limits_option
from ._container import data_json, differences_json


@app.command("restore")
def restore_cmd(
    ctx: typer.Context,
    bundle: Path = typer.Argument(
        ..., show_default=False, help="A bundle written by `layerferry migrate CONTAINER -o FILE`."
    ),
    host: str | None = typer.Option(
        None, "--host", show_default=False, help="Recreate on ssh://[user@]host[:port] instead."
    ),
    name: str | None = typer.Option(
        None,
        "--name",
        show_default=False,
        help="Name of the container (default: as in the bundle).",
    ),
    start: bool = typer.Option(False, "--start", help="Start the container."),
    replace: bool = typer.Option(False, "--replace", help="Replace a container of that name."),
    skip_missing: bool = typer.Option(
        False,
        "--skip-missing",
        help="Leave out what the host lacks or has taken instead of refusing.",
    ),
    health_timeout: float = typer.Option(
        DEFAULT_HEALTH_TIMEOUT,
        "--health-timeout",
        metavar="SECONDS",
        help="With --start: how long to wait for a healthcheck to pass.",
    ),
    max_expansion: int | None = limits_option(),
) -> None:
    """Recreate a container from a bundle (air-gapped migration): local engine by default."""
    g = globals_of(ctx)
    result = restore(
        bundle,
        host=host,
        name=name,
        start=start,
        replace=replace,
        skip_missing=skip_missing,
        health_timeout=health_timeout,
        limits=g.limits(max_expansion),
        settings=g.settings,
        reporter=g.reporter,
    )
    g.emit(
        {
            "container": result.container,
            "destination": result.destination,
            "image": result.image,
            "container_id": result.container_id,
            "started": result.started,
            "healthy": result.healthy,
            "bytes_sent": result.transfer.bytes_sent,
            "layers_sent": result.transfer.layers_sent,
            "data": data_json(result.data),
            "skipped": result.skipped,
            "attributes": result.attributes,
            "differences": differences_json(result.differences),
            "kept_volumes": result.kept_volumes,
        }
    )
