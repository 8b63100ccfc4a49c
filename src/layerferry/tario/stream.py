"""Adapters between chunk iterators and file-like readers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol


class Readable(Protocol):
    """Anything with ``read(n)`` returning bytes: a file, a pipe, a decompressor, an HTTP body."""

    def read(self, n: int = -1, /) -> bytes: ...


class IterStream:
    """A read-only file over an iterator of byte chunks (a streamed HTTP body, a generator)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            data = self._buffer[self._pos :] + b"".join(self._chunks)
            self._buffer, self._pos = b"", 0
            return data
        available = len(self._buffer) - self._pos
        if available >= n:
            data = self._buffer[self._pos : self._pos + n]
            self._pos += n
            return data
        parts = [self._buffer[self._pos :]]
        for chunk in self._chunks:
            if not chunk:
                continue
            need = n - available
            if len(chunk) >= need:
                parts.append(chunk[:need])
                self._buffer, self._pos = chunk, need
                return b"".join(parts)
            parts.append(chunk)
            available += len(chunk)
        self._buffer, self._pos = b"", 0
        return b"".join(parts)
