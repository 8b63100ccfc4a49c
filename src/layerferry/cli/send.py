from __future__ import annotations

import typer

from ..errors import UsageError
from ..units import human_bytes
from ..workflows.transfer import send
from ._app import app, globals_of


@app.command("send")
def send_cmd(
    ctx: typer.Context,
    args: list[str] = typer.Argument(..., help="IMAGE… then one or more ssh://[user@]host[:port]."),
) -> None:
    """Send images to other hosts, moving only the layers each one lacks."""
    g = globals_of(ctx)
    images = [a for a in args if not a.startswith("ssh://")]
    hosts = [a for a in args if a.startswith("ssh://")]
    if not images or not hosts:
        raise UsageError("usage: layerferry send IMAGE… ssh://[user@]host[:port]…")
    result = send(images, hosts, settings=g.settings, reporter=g.reporter)
    for host, report in result.reports.items():
        g.reporter.step(
            f"{host}: done, {report.layers_sent} layer(s), {human_bytes(report.bytes_sent)} on the wire"
        )
    g.emit(
        {
            "hosts": {
                h: {"layers_sent": r.layers_sent, "bytes_sent": r.bytes_sent}
                for h, r in result.reports.items()
            }
        }
    )
