from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..workflows.inspect import describe, verify_archive
from ._app import app, globals_of, limits_option


@app.command("verify")
def verify_cmd(
    ctx: typer.Context,
    archive: str = typer.Argument(..., help="Archive file or directory, or - for standard input."),
    platform: str | None = typer.Option(
        None, "--platform", help="Only this platform of multi-platform images (os/arch[/variant])."
    ),
    max_expansion: int | None = limits_option(),
) -> None:
    """Check every digest, size and diff ID of an archive, offline; exit 0 only if all hold."""
    g = globals_of(ctx)
    source = sys.stdin.buffer if archive == "-" else Path(archive)
    result = verify_archive(
        source, platform=platform, limits=g.limits(max_expansion), reporter=g.reporter
    )
    summary = describe(result.reading)
    g.emit(
        {
            "source": summary["source"],
            "format": summary["format"],
            "ok": result.ok,
            "delta": summary["delta"],
            "left_out": summary["left_out"],
            "images": [
                {
                    "id": i["id"],
                    "tags": i["tags"],
                    "layers": len(i["layers"]),
                    "left_out": sum(1 for layer in i["layers"] if layer["left_out"]),
                }
                for i in summary["images"]
            ],
            "problems": result.problems,
            "warnings": summary["warnings"],
        }
    )
    result.raise_for_problems()
