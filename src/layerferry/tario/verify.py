"""One verifying reader for every place untrusted bytes enter."""

from __future__ import annotations

import hashlib

from ..errors import IntegrityError
from ..oci.digest import Digest
from .stream import Readable


class VerifyingReader:
    """Hashes and counts while streaming; raises :class:`IntegrityError` at EOF on any mismatch.

    With no expected digest it only measures, and :attr:`digest` tells what was read.
    """

    def __init__(
        self,
        inner: Readable,
        *,
        expected: Digest | None = None,
        size: int | None = None,
        what: str = "blob",
    ) -> None:
        self._inner = inner
        self._expected = expected
        self._size = size
        self._what = what
        self._hash = hashlib.sha256()
        self.count = 0
        self._checked = False

    def read(self, n: int = -1) -> bytes:
        data = self._inner.read(n)
        if data:
            self._hash.update(data)
            self.count += len(data)
            if self._size is not None and self.count > self._size:
                raise IntegrityError(f"{self._what}: more than the declared {self._size} bytes")
        elif n != 0:
            self.check()
        return data

    @property
    def digest(self) -> Digest:
        return Digest("sha256", self._hash.hexdigest())

    def check(self) -> None:
        if self._checked:
            return
        self._checked = True
        if self._size is not None and self.count != self._size:
            raise IntegrityError(
                f"{self._what}: truncated, declared {self._size} bytes, only {self.count} present"
            )
        if self._expected is not None and self.digest != self._expected:
            raise IntegrityError(
                f"{self._what}: digest mismatch, expected {self._expected}, got {self.digest}",
                hint="the data was damaged; transfer it again",
            )
