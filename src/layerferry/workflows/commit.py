"""``commit``: a container's writable layer into an image, with Dockerfile-style changes checked first."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..daemon.engine import Engine, connect_local
from ..errors import UsageError
from ..reference import ImageName, validate_container_name
from ..reporting import NullReporter, Reporter
from ..settings import Settings

# What the engine's commit accepts as --change (Docker's own list).
_COMMIT_INSTRUCTIONS = {
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "USER",
    "VOLUME",
    "WORKDIR",
    "STOPSIGNAL",
    "HEALTHCHECK",
}
_EXEC_FORM = {"CMD", "ENTRYPOINT"}


@dataclass(frozen=True)
class CommitResult:
    container: str
    image_id: str
    name: ImageName | None


def check_changes(changes: list[str], reporter: Reporter) -> list[str]:
    """Refuse unknown instructions before anything runs; warn about shell-form CMD/ENTRYPOINT."""
    checked = []
    for change in changes:
        keyword, _, rest = change.strip().partition(" ")
        keyword = keyword.upper()
        if keyword not in _COMMIT_INSTRUCTIONS:
            raise UsageError(
                f"unsupported change {change!r}",
                hint="one of " + ", ".join(sorted(_COMMIT_INSTRUCTIONS)),
            )
        if not rest.strip():
            raise UsageError(f"change {change!r} has no value")
        if keyword in _EXEC_FORM and not _is_json_list(rest):
            reporter.warn(
                f"{keyword} {rest.strip()} is shell form: the engine wraps it in /bin/sh -c, so the "
                f"process is no longer PID 1 (signals break); use exec form, e.g. "
                f"{keyword} {json.dumps(rest.split())}"
            )
        checked.append(f"{keyword} {rest.strip()}")
    return checked


def _is_json_list(text: str) -> bool:
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def commit_with(
    engine: Engine,
    container: str,
    name: ImageName | None,
    *,
    changes: list[str],
    message: str | None,
    author: str | None,
    reporter: Reporter,
) -> CommitResult:
    """Commit with *changes* already checked by :func:`check_changes`."""
    engine.container(container)  # a clear "no container named …" before the engine's commit
    image_id = engine.commit(
        container,
        repository=name.repository if name else None,
        tag=name.tag if name else None,
        message=message,
        author=author,
        changes=changes,
    )
    reporter.step(f"committed container {container} as {name or image_id[:19]}")
    return CommitResult(container=container, image_id=image_id, name=name)


def commit(
    container: str,
    image: str | None = None,
    *,
    changes: list[str] | None = None,
    message: str | None = None,
    author: str | None = None,
    settings: Settings | None = None,
    reporter: Reporter | None = None,
) -> CommitResult:
    """Commit *container* on the local engine into *image* (``repo:tag``; untagged when None)."""
    settings = settings or Settings.from_env()
    reporter = reporter or NullReporter()
    name = ImageName.parse(image) if image else None
    validate_container_name(container)
    checked = check_changes(changes or [], reporter)
    engine = connect_local(settings.docker_host)
    try:
        return commit_with(
            engine,
            container,
            name,
            changes=checked,
            message=message,
            author=author,
            reporter=reporter,
        )
    finally:
        engine.close()
