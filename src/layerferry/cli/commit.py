from __future__ import annotations

import typer

from ..workflows.commit import commit
from ._app import app, globals_of


@app.command("commit")
def commit_cmd(
    ctx: typer.Context,
    container: str = typer.Argument(..., show_default=False, help="The container to commit."),
    image: str | None = typer.Argument(
        None, show_default=False, help="The new image's name, e.g. app:hotfix."
    ),
    change: list[str] = typer.Option(
        [], "--change", "-c", help="Dockerfile instruction to apply (repeatable)."
    ),
    message: str | None = typer.Option(
        None, "--message", "-m", show_default=False, help="Commit message."
    ),
    author: str | None = typer.Option(
        None, "--author", "-a", show_default=False, help="Author of the image."
    ),
) -> None:
    """Commit a container's changes into an image on the local engine."""
    g = globals_of(ctx)
    result = commit(
        container,
        image,
        changes=change,
        message=message,
        author=author,
        settings=g.settings,
        reporter=g.reporter,
    )
    g.emit(
        {
            "container": result.container,
            "image_id": result.image_id,
            "image": str(result.name) if result.name else None,
        }
    )
