from __future__ import annotations

import typer

from ..workflows.recreate import DEFAULT_HEALTH_TIMEOUT
from ..workflows.snapshot import rollback
from ._app import app, globals_of
from ._container import differences_json


@app.command("rollback")
def rollback_cmd(
    ctx: typer.Context,
    container: str = typer.Argument(
        ..., show_default=False, help="A container on the local engine."
    ),
    snapshot: str | None = typer.Argument(
        None, show_default=False, help="Snapshot ID or label (default: the latest)."
    ),
    prune: bool = typer.Option(
        False,
        "--prune",
        help="Remove the replaced container (and those of earlier rollbacks) instead of keeping it.",
    ),
    health_timeout: float = typer.Option(
        DEFAULT_HEALTH_TIMEOUT,
        "--health-timeout",
        metavar="SECONDS",
        help="How long to wait for a healthcheck to pass.",
    ),
) -> None:
    """Recreate a container from a snapshot, with the snapshot's configuration and data."""
    g = globals_of(ctx)
    result = rollback(
        container,
        snapshot,
        prune=prune,
        health_timeout=health_timeout,
        settings=g.settings,
        reporter=g.reporter,
    )
    g.emit(
        {
            "container": result.container,
            "snapshot": result.snapshot,
            "container_id": result.container_id,
            "started": result.started,
            "healthy": result.healthy,
            "replaced": result.replaced,
            "backup": result.backup,
            "pruned": result.pruned,
            "attributes": result.attributes,
            "differences": differences_json(result.differences),
        }
    )
