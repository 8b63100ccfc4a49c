"""The JSON message stream an engine answers ``POST /images/load`` with.

Engines report failures inside a 200 response (disk full, missing layer, unpack errors), so
every message is read: any ``error``/``errorDetail`` fails the load, and success is only what
the engine itself says it loaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import EngineError

_LOADED_IMAGE = "Loaded image: "
_LOADED_ID = "Loaded image ID: "


@dataclass
class LoadResult:
    tags: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)


def parse_load_messages(messages: Iterable[Any], where: str) -> LoadResult:
    result = LoadResult()
    for message in messages:
        if not isinstance(message, dict):
            continue
        error = message.get("error") or (message.get("errorDetail") or {}).get("message")
        if error:
            raise EngineError(f"{where}: load failed: {str(error).strip()}")
        stream = str(message.get("stream", ""))
        for line in stream.splitlines():
            if line.startswith(_LOADED_IMAGE):
                result.tags.append(line[len(_LOADED_IMAGE) :].strip())
            elif line.startswith(_LOADED_ID):
                result.ids.append(line[len(_LOADED_ID) :].strip())
    return result


def parse_load_text(text: str) -> LoadResult:
    """The same, from the ``docker load`` CLI's output (used when loading over SSH)."""
    return parse_load_messages(({"stream": line} for line in text.splitlines()), "remote")
