from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import PartialFailure, UsageError
from ..units import human_bytes
from ..workflows.transfer import DEFAULT_PARALLEL, SendResult, send
from ._app import Globals, app, globals_of
from ._registry import ca_file_option, insecure_option, with_registry


@app.command("send")
def send_cmd(
    ctx: typer.Context,
    args: list[str] = typer.Argument(
        ...,
        show_default=False,
        metavar="IMAGE... HOST...",
        help="Images, then one or more hosts as ssh://[user@]host[:port].",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show, per host, what would move; send nothing."
    ),
    parallel: int = typer.Option(
        DEFAULT_PARALLEL, "--parallel", help="Hosts served at the same time."
    ),
    via: str | None = typer.Option(
        None,
        "--via",
        metavar="docker://REGISTRY/PREFIX",
        help="Push once to this registry; each host's engine pulls what it lacks from there.",
    ),
    ca_file: Path | None = ca_file_option(),
    insecure: list[str] = insecure_option(),
) -> None:
    """Send images to other hosts, moving only the layers each one lacks.

    Example: layerferry send app:hotfix ssh://root@web2 ssh://web3:2222
    """
    g = globals_of(ctx)
    images = [a for a in args if not a.startswith("ssh://")]
    hosts = [a for a in args if a.startswith("ssh://")]
    if not images or not hosts:
        last = args[-1] if args else ""
        guess = (
            f"hosts are written ssh://HOST: did you mean ssh://{last}?"
            if not hosts and len(images) > 1 and "://" not in last
            else None
        )
        raise UsageError("usage: layerferry send IMAGE… ssh://[user@]host[:port]…", hint=guess)
    try:
        result = send(
            images,
            hosts,
            dry_run=dry_run,
            parallel=parallel,
            via=via,
            settings=with_registry(g, ca_file, insecure),
            reporter=g.reporter,
        )
    except PartialFailure as exc:
        if isinstance(exc.result, SendResult):
            _summary(g, exc.result, dry_run)
        raise
    _summary(g, result, dry_run)


def _summary(g: Globals, result: SendResult, dry_run: bool) -> None:
    if dry_run and not g.quiet:
        for host, report in result.reports.items():
            # soft_wrap: one layer a line at any width, so the plan can be read and grepped.
            g.reporter.console.print(
                f"[bold]{escape(host)}[/bold]: would send {report.layers_sent} layer(s), "
                f"{human_bytes(report.plan.bytes_compressed)} compressed",
                soft_wrap=True,
            )
            for layer in report.plan.layers:
                g.reporter.console.print(
                    f"   {layer.diff_id}  {human_bytes(layer.zst_size):>10}", soft_wrap=True
                )
    elif not g.quiet:
        table = Table("host", "result", "layers sent", "on the wire", "seconds", box=None)
        for host, outcome in result.outcomes.items():
            if outcome.report is not None:
                table.add_row(
                    escape(host),
                    "[green]ok[/green]",
                    str(outcome.report.layers_sent),
                    human_bytes(outcome.report.bytes_sent),
                    f"{outcome.seconds:.1f}",
                )
            else:
                table.add_row(escape(host), "[red]failed[/red]", "-", "-", f"{outcome.seconds:.1f}")
        g.reporter.console.print(table)
    g.emit(
        {
            "dry_run": dry_run,
            "hosts": {
                h: {
                    "ok": o.report is not None,
                    "error": o.error,
                    "layers_sent": (0 if dry_run else o.report.layers_sent) if o.report else None,
                    "bytes_sent": o.report.bytes_sent if o.report else None,
                    "bytes_planned": o.report.plan.bytes_compressed if o.report else None,
                    "layers_planned": [
                        {"diff_id": str(layer.diff_id), "bytes": layer.zst_size}
                        for layer in o.report.plan.layers
                    ]
                    if o.report
                    else None,
                    "seconds": round(o.seconds, 3),
                }
                for h, o in result.outcomes.items()
            },
        }
    )
