"""Layers as directory changes: compute one from two trees, apply one to a tree, safely."""

from .apply import ApplyResult, apply_layer
from .diff import TreeDiff, compare, iter_diff
from .entry import Entry, Kind, iter_member, whiteout_entry
from .paths import OPAQUE_MARKER, WHITEOUT_PREFIX, UnsafePathError, normalize, resolve_in_root
from .tree import canonical, scan

__all__ = [
    "OPAQUE_MARKER",
    "WHITEOUT_PREFIX",
    "ApplyResult",
    "Entry",
    "Kind",
    "TreeDiff",
    "UnsafePathError",
    "apply_layer",
    "canonical",
    "compare",
    "iter_diff",
    "iter_member",
    "normalize",
    "resolve_in_root",
    "scan",
    "whiteout_entry",
]
