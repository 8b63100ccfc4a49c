from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..copy.destinations import check_writable, write_atomically
from ..units import plural
from ..workflows.inventory import Inventory, inventory
from ._app import app, globals_of


@app.command("inventory")
def inventory_cmd(
    ctx: typer.Context,
    host: str | None = typer.Option(
        None,
        "--host",
        show_default=False,
        help="Record ssh://[user@]host[:port] instead of the local engine.",
    ),
    output: str = typer.Option(
        "-", "--output", "-o", help="Where to write the record (- for stdout)."
    ),
) -> None:
    """Record which images and layers an engine has, for `save --thin-for` on another machine."""
    g = globals_of(ctx)
    if output != "-":
        check_writable(Path(output))
    record = inventory(host, settings=g.settings)
    text = record.to_json() + "\n"
    if output == "-":
        sys.stdout.write(text)
    else:
        write_atomically(Path(output), iter([text.encode()]))
        g.reporter.step(
            f"{record.host}: {plural(len(record.images), 'image')}, "
            f"{plural(len(record.chains), 'layer chain')} recorded in {output}"
        )
        g.emit(summary(record, output))


def summary(record: Inventory, output: str) -> dict[str, object]:
    """``--json`` with ``-o FILE``: what was recorded where (the record itself is in the file)."""
    return {
        "file": output,
        "host": record.host,
        "images": len(record.images),
        "layers": len({d for image in record.images for d in image.diff_ids}),
        "layer_chains": len(record.chains),
    }
