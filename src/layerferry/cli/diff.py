from __future__ import annotations

import sys

import typer

from ..units import human_bytes, plural
from ..workflows.diff import DiffReport, diff
from ._app import app, globals_of

SHOWN_PER_DIR = 8


@app.command("diff")
def diff_cmd(
    ctx: typer.Context,
    container: str = typer.Argument(..., show_default=False, help="The container to look at."),
    exclude: list[str] = typer.Option(
        [], "--exclude", help="Preview: leave out this path (glob; repeatable), as commit would."
    ),
    exclude_junk: bool = typer.Option(
        False, "--exclude-junk", help="Preview: leave out caches, logs and temp files."
    ),
) -> None:
    """Show what a commit would capture: changed paths with sizes, junk, secrets, volumes and
    settings that differ from the image."""
    g = globals_of(ctx)
    report = diff(
        container,
        exclude=exclude,
        exclude_junk=exclude_junk,
        settings=g.settings,
        reporter=g.reporter,
    )
    if g.json:
        g.emit(report.to_json())
    else:
        sys.stdout.write(render(report))


def render(report: DiffReport) -> str:
    counts = f"{report.count('A')} added, {report.count('C')} changed, {report.count('D')} deleted"
    lines = [
        f"{report.container} (image {report.image}): {counts}; a commit would store "
        f"{human_bytes(report.total_size)}",
        "",
    ]
    by_dir: dict[str, list[str]] = {}
    for p in sorted(report.paths, key=lambda p: -p.size):
        if p.type == "dir":
            continue
        # A flag that is the reason the path is left out is said once, in the "left out" note.
        note = ", ".join(str(f) for f in p.flags if str(f) != p.excluded)
        if p.excluded:
            note = f"left out ({p.excluded})" + (f"; {note}" if note else "")
        if p.link_to:
            note = f"hard link to {p.link_to}" + (f"; {note}" if note else "")
        size = "" if p.change == "D" else human_bytes(p.size)
        name = p.path.rsplit("/", 1)[-1]
        by_dir.setdefault(p.path.rsplit("/", 1)[0] or "/", []).append(
            f"      {p.change} {size:>9}  {name}" + (f"   [{note}]" if note else "")
        )
    for row in report.directories():
        entries = by_dir.get(row.path, [])
        label = row.path.rstrip("/") + "/"  # the root is "/", not "//"
        lines.append(f"  {human_bytes(row.size):>9}  {label}  ({plural(row.count, 'path')})")
        lines += entries[:SHOWN_PER_DIR]
        if len(entries) > SHOWN_PER_DIR:
            lines.append(f"      … {len(entries) - SHOWN_PER_DIR} more")
    lines.append("")
    # What the given excludes already leave out needs no advice to leave it out.
    junk = [p for p in report.flagged("junk") if not p.excluded]
    if junk:
        size = human_bytes(sum(p.size for p in junk))
        lines.append(
            f"junk: {plural(len(junk), 'file')}, {size} (commit --exclude-junk leaves them out)"
        )
    for p in (p for p in report.flagged("secret") if not p.excluded):
        reason = next(f.reason for f in p.flags if f.category == "secret")
        lines.append(f"secret: {p.path} ({reason}); leave it out with --exclude {p.path}")
    for p in report.flagged("sparse"):
        lines.append(f"sparse: {p.path} is {human_bytes(p.size)}, mostly zeros")
    if report.env_secrets:
        lines.append(
            f"secret: environment {', '.join(report.env_secrets)} (values not shown) would be "
            "stored in the image config"
        )
    for m in report.mounts:
        lines.append(
            f"volume: {m.destination} ({m.type} {m.name[:24]}) is not captured by a commit"
        )
    for d in report.drift:
        lines.append(f"drift: {d.describe()}")
    return "\n".join(lines) + "\n"
