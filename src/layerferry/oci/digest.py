"""Content digests (``sha256:<hex>``) and the chain IDs a graphdriver engine keys layers by."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import UsageError

_HEX = {"sha256": re.compile(r"^[0-9a-f]{64}$"), "sha512": re.compile(r"^[0-9a-f]{128}$")}


@dataclass(frozen=True, order=True)
class Digest:
    """A validated content digest. ``str(d)`` is the canonical ``algorithm:hex`` form."""

    algorithm: str
    hex: str

    def __post_init__(self) -> None:
        pattern = _HEX.get(self.algorithm)
        if pattern is None or not pattern.match(self.hex):
            raise UsageError(f"invalid digest {self.algorithm}:{self.hex!r}")

    @classmethod
    def parse(cls, text: str) -> Digest:
        algorithm, sep, hexpart = text.partition(":")
        if not sep:
            raise UsageError(f"invalid digest {text!r}: expected 'sha256:<hex>'")
        return cls(algorithm, hexpart)

    @classmethod
    def of(cls, data: bytes) -> Digest:
        return cls("sha256", hashlib.sha256(data).hexdigest())

    @property
    def short(self) -> str:
        return self.hex[:12]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def chain_ids(diff_ids: Sequence[Digest]) -> list[Digest]:
    """Chain IDs of a layer stack: ``chain[0] = diff[0]``, ``chain[n] = sha256(chain[n-1] + " " + diff[n])``.

    A classic-store engine has layer *n* exactly when it has chain ID *n*; the diff ID alone says
    nothing, because the same layer content on another parent is another layer.
    """
    chains: list[Digest] = []
    for diff_id in diff_ids:
        if not chains:
            chains.append(diff_id)
        else:
            chains.append(Digest.of(f"{chains[-1]} {diff_id}".encode()))
    return chains
