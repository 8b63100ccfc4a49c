"""The ``layerferry`` command: parsing and rendering only; every verb calls the library.

Each verb lives in its own module and registers itself on import. The command imports only
the module of the verb it runs (all of them for help, or for a word it does not know), so a
``send`` starts without loading the registry client, the commit machinery and the rest.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import import_module
from typing import Any

import typer

VERBS = (
    "commit", "copy", "diff", "inspect", "inventory", "load", "migrate", "pull", "push",
    "restore", "rollback", "save", "send", "snapshot", "snapshots", "verify",
)  # fmt: skip
# Global options that take a value: the word after them is not the verb.
_VALUED = ("--ssh-config", "--cache-dir")


def verb_of(argv: Sequence[str]) -> str | None:
    """The verb *argv* runs, if it can be told without parsing (None: load every verb)."""
    words = iter(argv)
    for word in words:
        if word in _VALUED:
            next(words, None)
        elif word.startswith("-"):
            if word in ("--help", "-h"):
                return None
        else:
            return word if word in VERBS else None
    return None


def load_verbs(argv: Sequence[str] | None = None) -> typer.Typer:
    """The application with the verb of *argv* registered (every verb when *argv* is None)."""
    verb = verb_of(argv) if argv is not None else None
    for name in [verb] if verb else VERBS:
        import_module(f".{name}", __name__)
    from ._app import app

    return app


def main() -> None:
    from ._app import run

    sys.exit(run(load_verbs(sys.argv[1:])))


def __getattr__(name: str) -> Any:
    if name == "app":
        return load_verbs()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "load_verbs", "main"]
