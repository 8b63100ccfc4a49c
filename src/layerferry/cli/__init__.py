"""The ``layerferry`` command: parsing and rendering only; every verb calls the library."""

from __future__ import annotations

import sys

from . import commit as _commit  # noqa: F401  (registers the verb)
from . import copy as _copy  # noqa: F401
from . import diff as _diff  # noqa: F401
from . import inspect as _inspect  # noqa: F401
from . import inventory as _inventory  # noqa: F401
from . import load as _load  # noqa: F401
from . import migrate as _migrate  # noqa: F401
from . import pull as _pull  # noqa: F401
from . import push as _push  # noqa: F401
from . import restore as _restore  # noqa: F401
from . import rollback as _rollback  # noqa: F401
from . import save as _save  # noqa: F401
from . import send as _send  # noqa: F401
from . import snapshot as _snapshot  # noqa: F401
from . import snapshots as _snapshots  # noqa: F401
from . import verify as _verify  # noqa: F401
from ._app import app, run


def main() -> None:
    sys.exit(run(app))


__all__ = ["app", "main"]
