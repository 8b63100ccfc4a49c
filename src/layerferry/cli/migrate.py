from __future__ import annotations

from pathlib import Path

import typer

from ..errors import UsageError
from ..workflows.migrate import migrate
from ..workflows.preflight import BindMode
from ..workflows.recreate import DEFAULT_HEALTH_TIMEOUT
from ._app import app, globals_of
from ._container import data_json, differences_json, plan_json, print_plan


@app.command("migrate")
def migrate_cmd(
    ctx: typer.Context,
    container: str = typer.Argument(
        ..., show_default=False, help="The container on the local engine."
    ),
    host: str | None = typer.Argument(
        None, show_default=False, metavar="[HOST]", help="The target, as ssh://[user@]host[:port]."
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        show_default=False,
        help="Write one bundle file instead (image, configuration, data); see `restore`.",
    ),
    start: bool = typer.Option(False, "--start", help="Start the container on the target."),
    name: str | None = typer.Option(
        None, "--name", show_default=False, help="Name on the target (default: the same)."
    ),
    replace: bool = typer.Option(
        False, "--replace", help="Replace a container of that name on the target."
    ),
    volumes: bool = typer.Option(
        False,
        "--volumes/--no-volumes",
        help="Copy the data of its volumes (off by default: it can be large, and the container "
        "stays paused while it is read).",
    ),
    bind_mounts: BindMode = typer.Option(
        BindMode.REQUIRE,
        "--bind-mounts",
        case_sensitive=False,
        help="Bind-mounted paths: require them on the target, copy their contents, or skip them.",
    ),
    stop_source: bool = typer.Option(
        False,
        "--stop-source",
        help="Stop the source container (and leave it stopped) instead of pausing it while read.",
    ),
    skip_missing: bool = typer.Option(
        False,
        "--skip-missing",
        help="Leave out what the target lacks or has taken (ports, bind paths, devices, "
        "networks, drivers) instead of refusing.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Check the target and print the plan; change nothing."
    ),
    health_timeout: float = typer.Option(
        DEFAULT_HEALTH_TIMEOUT,
        "--health-timeout",
        metavar="SECONDS",
        help="With --start: how long to wait for a healthcheck to pass.",
    ),
) -> None:
    """Move a whole container (changes, configuration, optionally its data) to another host.

    Examples: layerferry migrate web ssh://root@web2 --volumes --start;
    layerferry migrate web -o web.bundle --volumes (then: layerferry restore web.bundle)
    """
    g = globals_of(ctx)
    if host is not None and not host.startswith("ssh://") and output is None:
        raise UsageError(f"invalid host {host!r}: expected ssh://[user@]host[:port]")
    result = migrate(
        container,
        host,
        output=output,
        name=name,
        start=start,
        replace=replace,
        stop_source=stop_source,
        volumes=volumes,
        bind_mounts=bind_mounts,
        skip_missing=skip_missing,
        dry_run=dry_run,
        health_timeout=health_timeout,
        settings=g.settings,
        reporter=g.reporter,
    )
    if result.plan is not None:
        print_plan(g, result.plan)
        g.emit({"dry_run": True, "plan": plan_json(result.plan)})
        return
    g.emit(
        {
            "container": result.container,
            "target": result.target,
            "image": result.image,
            "container_id": result.container_id,
            "started": result.started,
            "healthy": result.healthy,
            "bytes_sent": result.transfer.bytes_sent if result.transfer else None,
            "layers_sent": result.transfer.layers_sent if result.transfer else None,
            "bundle_bytes": result.bundle_bytes,
            "data": data_json(result.data),
            "source_state": result.source_state,
            "skipped": result.skipped,
            "attributes": result.attributes,
            "differences": differences_json(result.differences),
            "kept_volumes": result.kept_volumes,
        }
    )
