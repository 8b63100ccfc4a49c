"""The one exception hierarchy of layerferry.

Every failure a user can meet is a :class:`LayerferryError`; the CLI prints its ``str()`` as one
line (plus the hint) and exits with its ``exit_code``. Foreign exceptions (Docker SDK, requests,
httpx, OpenSSH exit statuses, OS errors) are translated at the boundary that meets them, with
``raise … from``; ours never subclass theirs.

::

    LayerferryError                  exit 1   anything else that went wrong
    ├── UsageError                   exit 2   bad arguments or references
    ├── NotFoundError                exit 3   unknown image, container, file
    ├── IntegrityError               exit 4   digest/size mismatch, truncated or malformed archive
    │   └── ArchiveError                      not an image archive, unsupported layout
    │       └── LimitExceeded                 a guard against hostile input tripped
    ├── RemoteError                  exit 5   the SSH side or a registry failed
    │   ├── HostKeyError                      unknown or changed host key: refused
    │   ├── UnreachableError                  cannot connect, auth refused, no docker there
    │   └── RegistryError                     a registry refused or failed a request
    │       └── AuthError                     credentials missing or refused by a registry
    ├── EngineError                  exit 6   a Docker engine refused or failed an operation
    ├── ConflictError                exit 7   a name already taken on the target
    ├── PartialFailure               exit 8   some targets of a fan-out failed
    └── Interrupted                  exit 130 Ctrl-C: work in flight stopped and cleaned up
"""

from __future__ import annotations


class LayerferryError(Exception):
    """Base of every error layerferry raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(LayerferryError):
    exit_code = 2


class NotFoundError(LayerferryError):
    exit_code = 3


class IntegrityError(LayerferryError):
    exit_code = 4


class ArchiveError(IntegrityError):
    """The input is not an image archive layerferry can read, or it is malformed."""


class LimitExceeded(ArchiveError):
    """A size, nesting or decompression limit kept against hostile input was exceeded."""


class RemoteError(LayerferryError):
    exit_code = 5


class HostKeyError(RemoteError):
    pass


class UnreachableError(RemoteError):
    pass


class RegistryError(RemoteError):
    """A registry answered with an error (or not at all) to a distribution API request."""


class AuthError(RegistryError):
    """A registry asked for credentials that are missing, or refused the ones given."""


class EngineError(LayerferryError):
    exit_code = 6


class ConflictError(LayerferryError):
    exit_code = 7


class PartialFailure(LayerferryError):
    exit_code = 8

    def __init__(
        self,
        message: str,
        *,
        failed: dict[str, str],
        result: object = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.failed = failed
        #: What did complete (for ``send``: a ``SendResult``).
        self.result = result


class Interrupted(LayerferryError):
    """The user interrupted (Ctrl-C); work in flight was stopped and cleaned up."""

    exit_code = 130


EXIT_INTERRUPTED = 130

__all__ = [
    "EXIT_INTERRUPTED",
    "ArchiveError",
    "AuthError",
    "ConflictError",
    "EngineError",
    "HostKeyError",
    "IntegrityError",
    "Interrupted",
    "LayerferryError",
    "LimitExceeded",
    "NotFoundError",
    "PartialFailure",
    "RegistryError",
    "RemoteError",
    "UnreachableError",
    "UsageError",
]
