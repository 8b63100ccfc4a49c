"""How a container's run settings differ from its image's, and which a commit keeps (C24).

A command given at ``docker run`` (or ``--entrypoint``) is usually an ad-hoc override, e.g.
a shell to make a fix; ``docker commit`` would make it the image's command. By default the
image's own Entrypoint and Cmd are kept when the image has a command of its own; Env, User
and WorkingDir follow the container (as the engine's commit does) and are shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .changes import Change

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FIELDS = ("Entrypoint", "Cmd", "Env", "User", "WorkingDir")


@dataclass(frozen=True)
class Drift:
    field: str
    image: Any
    container: Any
    kept: str
    """``image`` or ``container``: what the committed image gets."""

    def describe(self) -> str:
        if self.field == "Env":
            return (
                f"Env: the container {_env_change(self.image, self.container)} (values not shown)"
            )
        return (
            f"{self.field}: container {_show(self.container)}, image {_show(self.image)}; "
            f"the commit keeps the {self.kept}'s"
        )

    def to_json(self) -> dict[str, Any]:
        if self.field == "Env":
            return {
                "field": "Env",
                "names": _env_names(self.image, self.container),
                "kept": self.kept,
            }
        return {
            "field": self.field,
            "image": self.image,
            "container": self.container,
            "kept": self.kept,
        }


def _show(value: Any, width: int = 60) -> str:
    text = json.dumps(value) if value not in (None, "", []) else "(none)"
    return text if len(text) <= width else text[: width - 1] + "…"


def _env_map(env: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in env or []:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _env_names(image: list[str] | None, container: list[str] | None) -> dict[str, list[str]]:
    a, b = _env_map(image), _env_map(container)
    return {
        "added": sorted(set(b) - set(a)),
        "changed": sorted(k for k in set(a) & set(b) if a[k] != b[k]),
        "removed": sorted(set(a) - set(b)),
    }


def _env_change(image: list[str] | None, container: list[str] | None) -> str:
    names = _env_names(image, container)
    parts = [f"{what} {', '.join(keys)}" for what, keys in names.items() if keys]
    return "; ".join(parts)


def has_command(config: dict[str, Any]) -> bool:
    return bool(config.get("Entrypoint") or config.get("Cmd"))


def config_drift(
    image: dict[str, Any], container: dict[str, Any], *, keep_container: bool = False
) -> list[Drift]:
    out = []
    keep_image_command = has_command(image) and not keep_container
    for field in FIELDS:
        a, b = image.get(field), container.get(field)
        if field == "Env":
            b = [e for e in b or [] if not (e == DEFAULT_PATH and not _env_map(a).get("PATH"))]
            if _env_map(a) == _env_map(b):
                continue
        elif (a or None) == (b or None):
            continue
        kept = "image" if field in ("Entrypoint", "Cmd") and keep_image_command else "container"
        out.append(Drift(field, a, b, kept))
    return out


def command_changes(image: dict[str, Any], drift: list[Drift]) -> list[Change]:
    """Changes that put the image's own Entrypoint and Cmd back (both, so neither resets the
    other), when the drift says the image's are kept."""
    if not any(d.kept == "image" for d in drift):
        return []
    out = []
    for keyword, field in (("ENTRYPOINT", "Entrypoint"), ("CMD", "Cmd")):
        argv = tuple(image.get(field) or ())
        out.append(Change(keyword, json.dumps(list(argv)), argv))
    return out
