from __future__ import annotations

import typer

from ..workflows.commit import MAX_LAYERS, commit
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
    entrypoint_json: str | None = typer.Option(
        None,
        "--entrypoint-json",
        show_default=False,
        help='ENTRYPOINT as a JSON list: ["tini","--"]',
    ),
    cmd_json: str | None = typer.Option(
        None, "--cmd-json", show_default=False, help='CMD as a JSON list: ["httpd","-f"]'
    ),
    shell_form: bool = typer.Option(
        False, "--shell-form", help="Keep shell-form CMD/ENTRYPOINT changes (run under sh -c)."
    ),
    exclude: list[str] = typer.Option(
        [], "--exclude", help="Leave this path out of the new layer (glob; repeatable)."
    ),
    exclude_junk: bool = typer.Option(
        False, "--exclude-junk", help="Leave out package caches, logs, temp files, __pycache__."
    ),
    keep_container_config: bool = typer.Option(
        False,
        "--keep-container-config",
        help="Take the container's Entrypoint/Cmd even when they override the image's.",
    ),
    squash: bool = typer.Option(
        False, "--squash", help="One layer of the container's whole filesystem."
    ),
    max_layers: int = typer.Option(
        MAX_LAYERS, "--max-layers", help="Refuse (unless --squash) images with more layers."
    ),
    message: str | None = typer.Option(
        None, "--message", "-m", show_default=False, help="Commit message."
    ),
    author: str | None = typer.Option(
        None, "--author", "-a", show_default=False, help="Author of the image."
    ),
) -> None:
    """Commit a container's changes into an image on the local engine, keeping the image's
    own command, leaving out what you exclude."""
    g = globals_of(ctx)
    result = commit(
        container,
        image,
        changes=change,
        message=message,
        author=author,
        exclude=exclude,
        exclude_junk=exclude_junk,
        entrypoint_json=entrypoint_json,
        cmd_json=cmd_json,
        shell_form=shell_form,
        keep_container_config=keep_container_config,
        squash=squash,
        max_layers=max_layers,
        settings=g.settings,
        reporter=g.reporter,
    )
    g.emit(
        {
            "container": result.container,
            "image_id": result.image_id,
            "image": str(result.name) if result.name else None,
            "method": result.method,
            "layers": result.layers,
            "entrypoint": result.entrypoint,
            "cmd": result.cmd,
            "drift": [d.to_json() for d in result.drift],
            "excluded": [
                {"path": e.path, "size": e.size, "reason": e.reason} for e in result.excluded
            ],
        }
    )
