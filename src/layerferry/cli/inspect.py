from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from ..units import human_bytes
from ..workflows.inspect import describe, inspect_archive, left_out_line
from ._app import app, globals_of, limits_option

BAR_WIDTH = 24


@app.command("inspect")
def inspect_cmd(
    ctx: typer.Context,
    archive: str = typer.Argument(..., help="Archive file or directory, or - for standard input."),
    platform: str | None = typer.Option(
        None, "--platform", help="Only this platform of multi-platform images (os/arch[/variant])."
    ),
    max_expansion: int | None = limits_option(),
) -> None:
    """Show an archive's images, tags, layers (with sizes), history and config; no engine needed."""
    g = globals_of(ctx)
    source = sys.stdin.buffer if archive == "-" else Path(archive)
    reading = inspect_archive(
        source, platform=platform, limits=g.limits(max_expansion), reporter=g.reporter
    )
    summary = describe(reading)
    if g.json:
        g.emit(summary)
    else:
        sys.stdout.write(render(summary))
    for problem in reading.findings.problems:
        g.reporter.warn(f"problem: {problem}")


def render(summary: dict[str, Any]) -> str:
    """The human form: one block per image; a bar per layer so the big ones stand out."""
    images = summary["images"]
    kind = summary["format"]
    if summary["compression"] != "none":
        kind += f", {summary['compression']}-compressed"
    if summary["nested"]:
        kind += f", found at {summary['nested']}"
    lines = [f"{summary['source']}: {kind}, {len(images)} image(s)"]
    if summary["delta"]:
        lines.append(f"delta: {left_out_line(len(summary['left_out']))}")
        lines += [f"  {diff_id}" for diff_id in summary["left_out"]]
    lines.append("")
    for image in images:
        lines += _image_lines(image) + [""]
    if summary["problems"]:
        lines.append(f"{len(summary['problems'])} problem(s): run `layerferry verify` for details")
    return "\n".join(lines) + "\n"


def _image_lines(image: dict[str, Any]) -> list[str]:
    names = ", ".join(image["tags"] + image["refs"]) or "<untagged>"
    config = image["config"]
    out = [
        names,
        f"  id         {image['id']}",
        f"  platform   {image['platform']}"
        + (f"   created {image['created']}" if image["created"] else ""),
    ]
    if image["manifest"]:
        out.append(f"  manifest   {image['manifest']}")
    listed = [p for p in image["platforms"] if not p["attestation"]]
    if len(listed) > 1:
        shown = ", ".join(
            p["platform"] + ("" if p["complete"] else " (blobs absent)") for p in listed
        )
        out.append(f"  index      {shown}")
    for label, key in (("entrypoint", "entrypoint"), ("cmd", "cmd")):
        if config[key] is not None:
            out.append(f"  {label:<10} {json.dumps(config[key])}")
    if config["env_names"]:
        out.append(f"  env        {', '.join(config['env_names'])} (values not shown)")
    for label, key in (("ports", "exposed_ports"), ("volumes", "volumes"), ("labels", "labels")):
        if config[key]:
            out.append(f"  {label:<10} {', '.join(config[key])}")
    for label, key in (("user", "user"), ("workdir", "working_dir")):
        if config[key]:
            out.append(f"  {label:<10} {config[key]}")
    return out + _layer_lines(image["layers"])


def _layer_lines(layers: list[dict[str, Any]]) -> list[str]:
    total = sum(layer["size"] or 0 for layer in layers)
    stored = sum(layer["stored_size"] or 0 for layer in layers)
    out = [
        f"  layers     {len(layers)}, {human_bytes(total)} uncompressed, "
        f"{human_bytes(stored)} in the archive"
    ]
    biggest = max((layer["size"] or 0 for layer in layers), default=0) or 1
    for layer in layers:
        size = layer["size"]
        filled = round(BAR_WIDTH * (size or 0) / biggest)
        bar = "█" * filled + "·" * (BAR_WIDTH - filled)
        shown = human_bytes(size) if size is not None else "absent"
        if layer["left_out"]:
            shown = "left out"
        packed = human_bytes(layer["stored_size"]) if layer["stored_size"] is not None else "-"
        created = (layer["created_by"] or "").replace("\n", " ")
        if len(created) > 60:
            created = created[:59] + "…"
        out.append(
            f"    {layer['index']:>3} {shown:>9} {packed:>9} {bar} "
            f"{layer['diff_id'][7:19]}  {created}".rstrip()
        )
    return out
