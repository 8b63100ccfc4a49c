"""Blob uploads: one request for small blobs, PATCH chunks with ``Content-Range`` for large ones.

A chunked upload is resumable: after a failed chunk the upload URL is asked (``GET``) for the
offset the registry holds, and sending goes on from there. The upload URL is also remembered on
disk after each chunk (:class:`UploadMemory`), so a run that was killed continues where it
stopped. Whatever arrives, the registry checks the digest when the upload is closed (``PUT
?digest=``) and refuses a blob that does not hash to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..errors import AuthError, RegistryError, UnreachableError
from ..oci.digest import Digest
from ..reporting import Meter, NullReporter, Reporter
from ..units import human_bytes
from .client import RegistryClient, push_scope

ATTEMPTS = 3
_RANGE = re.compile(r"^(?:bytes=)?0-(\d+)$")


@dataclass(frozen=True)
class BlobSource:
    """A blob to upload: its digest, size, and its bytes from any offset (a local file)."""

    digest: Digest
    size: int
    open_at: Callable[[int], Iterator[bytes]]
    label: str = "blob"


class UploadMemory:
    """Upload URLs of unfinished uploads, by registry, repository and digest (one file each)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, registry: str, repo: str, digest: Digest) -> Path:
        key = hashlib.sha256(f"{registry}/{repo}@{digest}".encode()).hexdigest()
        return self.root / f"{key}.json"

    def recall(self, registry: str, repo: str, digest: Digest) -> str | None:
        try:
            value = json.loads(self._path(registry, repo, digest).read_text()).get("location")
        except (OSError, ValueError, AttributeError):
            return None
        return value if isinstance(value, str) else None

    def remember(self, registry: str, repo: str, digest: Digest, location: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path(registry, repo, digest)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"location": location}))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)

    def forget(self, registry: str, repo: str, digest: Digest) -> None:
        self._path(registry, repo, digest).unlink(missing_ok=True)


class _Upload:
    def __init__(
        self,
        client: RegistryClient,
        repo: str,
        blob: BlobSource,
        memory: UploadMemory | None,
        reporter: Reporter,
    ) -> None:
        self.client = client
        self.repo = repo
        self.blob = blob
        self.memory = memory
        self.reporter = reporter
        self.scopes = push_scope(repo)
        self.where = f"{client.registry}/{repo}"

    # -- the upload URL and its offset --------------------------------------------------------
    def start(self) -> str:
        response = self.client.request(
            "POST", f"/v2/{self.repo}/blobs/uploads/", scopes=self.scopes, what="starting upload"
        )
        if response.status_code != 202 or "Location" not in response.headers:
            raise self.client.fail(response, f"starting an upload to {self.repo}")
        return self._keep(response.headers["Location"])

    def _keep(self, location: str) -> str:
        location = self.client.url(_absolute(self.client.base, location))
        if self.memory is not None:
            self.memory.remember(self.client.registry, self.repo, self.blob.digest, location)
        return location

    def offset(self, location: str) -> int | None:
        """What the registry holds of this upload, or None when it no longer knows it."""
        try:
            response = self.client.request(
                "GET", location, scopes=self.scopes, what="asking an upload's offset"
            )
        except (RegistryError, UnreachableError) as exc:
            if isinstance(exc, AuthError):
                raise
            return None
        if response.status_code != 204:
            return None
        match = _RANGE.match(response.headers.get("Range", "").strip())
        if "Location" in response.headers:
            self._keep(response.headers["Location"])
        return int(match.group(1)) + 1 if match else 0

    # -- sending ------------------------------------------------------------------------------
    def run(self, meter: Meter) -> int:
        """Upload; returns the bytes sent in this run."""
        sent = 0
        location, offset = self._resume_or_start()
        if offset == 0 and self.blob.size <= self.client.options.chunk_size:
            return self._whole(location, meter)
        failures = 0
        while True:
            try:
                while offset < self.blob.size:
                    location, done = self._chunk(location, offset, meter)
                    sent += done - offset
                    offset = done
                self._close(location, b"")
                return sent
            except (RegistryError, UnreachableError) as exc:
                failures += 1
                if isinstance(exc, AuthError) or failures >= ATTEMPTS:
                    raise
                location, offset = self._recover(location, exc)

    def _resume_or_start(self) -> tuple[str, int]:
        memory = self.memory
        if memory is not None:
            known = memory.recall(self.client.registry, self.repo, self.blob.digest)
            if known is not None:
                held = self.offset(known)
                if held is not None and 0 < held <= self.blob.size:
                    location = memory.recall(self.client.registry, self.repo, self.blob.digest)
                    self._resumed(held)
                    return location or known, held
                memory.forget(self.client.registry, self.repo, self.blob.digest)
        return self.start(), 0

    def _recover(self, location: str, exc: Exception) -> tuple[str, int]:
        held = self.offset(location)
        if held is None or held > self.blob.size:
            self.reporter.warn(
                f"{self.where}: upload of {self.blob.label} broke ({exc}); restarting"
            )
            return self.start(), 0
        self._resumed(held)
        latest = None
        if self.memory is not None:
            latest = self.memory.recall(self.client.registry, self.repo, self.blob.digest)
        return latest or location, held

    def _resumed(self, held: int) -> None:
        self.client.traffic.resumed.append((self.blob.digest, held))
        self.reporter.step(
            f"{self.where}: resuming the upload of {self.blob.label} at {human_bytes(held)} "
            f"of {human_bytes(self.blob.size)}"
        )

    def _chunk(self, location: str, offset: int, meter: Meter) -> tuple[str, int]:
        length = min(self.client.options.chunk_size, self.blob.size - offset)
        response = self.client.request(
            "PATCH",
            location,
            scopes=self.scopes,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + length - 1}",
                "Content-Length": str(length),
            },
            body=lambda: self._counted(_limited(self.blob.open_at(offset), length), meter),
            what=f"uploading {self.blob.label}",
        )
        if response.status_code != 202 or "Location" not in response.headers:
            raise self.client.fail(response, f"uploading {self.blob.label}")
        match = _RANGE.match(response.headers.get("Range", "").strip())
        done = int(match.group(1)) + 1 if match else offset + length
        if done != offset + length:
            raise RegistryError(
                f"{self.where}: the registry holds {done} bytes after a chunk that ended at "
                f"{offset + length}"
            )
        return self._keep(response.headers["Location"]), done

    def _whole(self, location: str, meter: Meter) -> int:
        self._close(location, lambda: self._counted(self.blob.open_at(0), meter))
        return self.blob.size

    def _close(self, location: str, body: bytes | Callable[[], Iterator[bytes]]) -> None:
        sep = "&" if "?" in location else "?"
        url = f"{location}{sep}digest={quote(str(self.blob.digest), safe='')}"
        length = 0 if isinstance(body, bytes) else self.blob.size
        response = self.client.request(
            "PUT",
            url,
            scopes=self.scopes,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(length)},
            body=body,
            what=f"finishing the upload of {self.blob.label}",
        )
        if response.status_code not in (201, 204):
            raise self.client.fail(response, f"finishing the upload of {self.blob.label}")
        if self.memory is not None:
            self.memory.forget(self.client.registry, self.repo, self.blob.digest)

    def _counted(self, chunks: Iterator[bytes], meter: Meter) -> Iterator[bytes]:
        for chunk in chunks:
            self.client.traffic.bytes_uploaded += len(chunk)
            meter.advance(len(chunk))
            yield chunk


def upload_blob(
    client: RegistryClient,
    repo: str,
    blob: BlobSource,
    *,
    memory: UploadMemory | None = None,
    reporter: Reporter | None = None,
) -> int:
    """Upload *blob* into *repo*; returns the bytes sent. Checks nothing first (see push)."""
    reporter = reporter or NullReporter()
    meter = reporter.meter(f"{client.registry} {blob.label}", blob.size)
    try:
        sent = _Upload(client, repo, blob, memory, reporter).run(meter)
    finally:
        meter.close()
    client.traffic.blobs_uploaded += 1
    return sent


def _limited(chunks: Iterator[bytes], length: int) -> Iterator[bytes]:
    left = length
    for chunk in chunks:
        if left <= 0:
            break
        piece = chunk[:left]
        left -= len(piece)
        yield piece
    if left > 0:
        raise RegistryError(f"local blob ended {left} bytes early")


def _absolute(base: str, location: str) -> str:
    if location.startswith(("http://", "https://")):
        return location
    return f"{base}{location if location.startswith('/') else '/' + location}"
