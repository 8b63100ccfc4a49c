"""layerferry: move a container's state between Docker hosts, with or without a registry.

The library is the product; the ``layerferry`` command is a thin layer over it. Library code
never prints: pass a :class:`~layerferry.reporting.Reporter` to hear what happens.
"""

from .errors import (
    ArchiveError,
    AuthError,
    ConflictError,
    EngineError,
    HostKeyError,
    IntegrityError,
    LayerferryError,
    LimitExceeded,
    NotFoundError,
    PartialFailure,
    RegistryError,
    RemoteError,
    UnreachableError,
    UsageError,
)
from .locations import Location, parse_location
from .reference import ImageName, RegistryReference
from .registry.transport import RegistryOptions
from .remote.target import SshTarget
from .reporting import NullReporter, RecordingReporter, Reporter
from .settings import Settings
from .tario.compression import Compression
from .workflows.commit import CommitResult, commit
from .workflows.copy import CopyResult, copy, pull, push
from .workflows.diff import DiffReport, diff
from .workflows.inspect import VerifyResult, inspect_archive, verify_archive
from .workflows.inventory import Inventory, inventory
from .workflows.migrate import MigrateResult, migrate
from .workflows.transfer import LoadResult, SaveResult, SendResult, load, save, send

__version__ = "0.1.0"

__all__ = [
    "ArchiveError",
    "AuthError",
    "CommitResult",
    "DiffReport",
    "Compression",
    "ConflictError",
    "CopyResult",
    "EngineError",
    "HostKeyError",
    "ImageName",
    "Inventory",
    "IntegrityError",
    "LayerferryError",
    "LimitExceeded",
    "LoadResult",
    "Location",
    "MigrateResult",
    "NotFoundError",
    "NullReporter",
    "PartialFailure",
    "RecordingReporter",
    "RegistryError",
    "RegistryOptions",
    "RegistryReference",
    "RemoteError",
    "Reporter",
    "SaveResult",
    "SendResult",
    "Settings",
    "SshTarget",
    "UnreachableError",
    "UsageError",
    "VerifyResult",
    "__version__",
    "commit",
    "copy",
    "diff",
    "inspect_archive",
    "inventory",
    "load",
    "migrate",
    "parse_location",
    "pull",
    "push",
    "save",
    "send",
    "verify_archive",
]
