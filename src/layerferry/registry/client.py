"""The OCI distribution API, one registry at a time: manifests, blobs, mounts, uploads.

Every request goes through :meth:`RegistryClient.request`, which answers authentication
challenges (see :mod:`.auth`) and retries once; a body that streams is given as a factory so it
can be sent again. Status codes become our errors here; httpx's exceptions in :mod:`.transport`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..errors import AuthError, IntegrityError, NotFoundError, RegistryError
from ..oci import mediatypes as mt
from ..oci.digest import Digest
from ..oci.manifest import RawManifest
from ..tario.stream import IterStream, Readable
from .auth import Authenticator
from .credentials import Credentials, lookup
from .transport import RegistryOptions, new_client, translated

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
CHUNK = 1024 * 1024
MANIFEST_TYPES = (mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST)
Body = bytes | Callable[[], Iterator[bytes]] | None


def manifest_json(raw: RawManifest, where: str) -> dict[str, Any]:
    try:
        data = json.loads(raw.data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{where}: manifest is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise IntegrityError(f"{where}: manifest is not a JSON object")
    return data


@dataclass
class Traffic:
    """What this client moved: blobs uploaded and mounted, bytes sent (for reports and tests)."""

    blobs_uploaded: int = 0
    blobs_mounted: int = 0
    bytes_uploaded: int = 0
    resumed: list[tuple[Digest, int]] = field(default_factory=list)


def pull_scope(repo: str) -> frozenset[str]:
    return frozenset({f"repository:{repo}:pull"})


def push_scope(repo: str, *mount_from: str) -> frozenset[str]:
    return frozenset(
        {f"repository:{repo}:pull,push"} | {f"repository:{r}:pull" for r in mount_from}
    )


class RegistryClient:
    """One registry (``host[:port]``). Use as a context manager; not shared between threads
    while an upload runs (tokens are)."""

    def __init__(
        self,
        registry: str,
        options: RegistryOptions | None = None,
        *,
        credentials: Callable[[], Credentials | None] | None = None,
    ) -> None:
        self.registry = registry
        self.options = options or RegistryOptions()
        self.base = f"{self.options.scheme(registry)}://{registry}"
        self.http = new_client(self.options)
        self.auth = Authenticator(
            registry,
            self.http,
            credentials or (lambda: lookup(registry, self.options.docker_config)),
        )
        self.traffic = Traffic()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests -----------------------------------------------------------------------------
    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return f"{self.base}{path_or_url}"

    def request(
        self,
        method: str,
        path: str,
        *,
        scopes: frozenset[str],
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        body: Body = None,
        stream: bool = False,
        what: str = "request",
    ) -> httpx.Response:
        """Send, answering one authentication challenge. With *stream*, the caller closes."""
        url = self.url(path)
        auth = self.auth.header(scopes)
        for attempt in (1, 2):
            sent = dict(headers or {})
            if auth:
                sent["Authorization"] = auth
            content = body() if callable(body) else body
            with translated(self.registry, what):
                request = self.http.build_request(
                    method, url, headers=sent, params=params, content=content
                )
                response = self.http.send(request, stream=stream)
            if response.status_code != 401 or attempt == 2:
                break
            challenge = response.headers.get("WWW-Authenticate", "")
            response.close()
            if not challenge:
                raise AuthError(f"{self.registry}: {what}: 401 without a challenge")
            auth = self.auth.answer(challenge, scopes, auth)
        if response.status_code in (401, 403):
            response.close()
            raise AuthError(
                f"{self.registry}: {what}: access denied ({response.status_code})",
                hint=f"check your login for {self.registry} (~/.docker/config.json)",
            )
        return response

    def fail(self, response: httpx.Response, what: str) -> RegistryError:
        """The error for an unexpected status, with the registry's own code and message."""
        detail = ""
        with contextlib.suppress(Exception):
            response.read()
            errors = response.json().get("errors") or []
            if errors:
                first = errors[0]
                detail = f": {first.get('code', '')} {first.get('message', '')}".rstrip()
        response.close()
        return RegistryError(f"{self.registry}: {what}: HTTP {response.status_code}{detail}")

    # -- manifests ----------------------------------------------------------------------------
    def get_manifest(self, repo: str, reference: str) -> RawManifest:
        what = f"manifest {repo}:{reference}" if ":" not in reference else f"{repo}@{reference}"
        response = self.request(
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            scopes=pull_scope(repo),
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
            stream=True,
            what=f"reading {what}",
        )
        try:
            if response.status_code == 404:
                raise NotFoundError(f"{self.registry}: no such image {repo}:{reference}")
            if response.status_code != 200:
                raise self.fail(response, f"reading {what}")
            data = _read_capped(response, MAX_MANIFEST_BYTES, f"{self.registry}: {what}")
        finally:
            response.close()
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        raw = RawManifest(media_type or _sniff_media_type(data), data)
        if not raw.media_type or raw.media_type not in MANIFEST_TYPES:
            raw = RawManifest(_sniff_media_type(data), data)
        _check_manifest_digest(raw, reference, response.headers.get("Docker-Content-Digest"), what)
        return raw

    def head_manifest(self, repo: str, reference: str, *, push: bool = False) -> Digest | None:
        response = self.request(
            "HEAD",
            f"/v2/{repo}/manifests/{reference}",
            scopes=push_scope(repo) if push else pull_scope(repo),
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
            what=f"checking {repo}:{reference}",
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.fail(response, f"checking {repo}:{reference}")
        header = response.headers.get("Docker-Content-Digest")
        return Digest.parse(header) if header else None

    def put_manifest(self, repo: str, reference: str, raw: RawManifest) -> Digest:
        response = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            scopes=push_scope(repo),
            headers={"Content-Type": raw.media_type},
            body=raw.data,
            what=f"writing manifest {repo}:{reference}",
        )
        if response.status_code not in (200, 201):
            raise self.fail(response, f"writing manifest {repo}:{reference}")
        header = response.headers.get("Docker-Content-Digest")
        if header and Digest.parse(header) != raw.digest:
            raise IntegrityError(
                f"{self.registry}: stored manifest {repo}:{reference} as {header}, not {raw.digest}"
            )
        return raw.digest

    # -- blobs --------------------------------------------------------------------------------
    def blob_size(self, repo: str, digest: Digest, *, push: bool = False) -> int | None:
        """The blob's size when *repo* holds it (HEAD), else None."""
        response = self.request(
            "HEAD",
            f"/v2/{repo}/blobs/{digest}",
            scopes=push_scope(repo) if push else pull_scope(repo),
            what=f"checking blob {digest.short}",
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.fail(response, f"checking blob {digest.short} in {repo}")
        try:
            return int(response.headers.get("Content-Length", "-1"))
        except ValueError:
            return -1

    @contextlib.contextmanager
    def open_blob(self, repo: str, digest: Digest) -> Iterator[Readable]:
        """The blob's bytes as the registry sends them; the caller verifies them."""
        response = self.request(
            "GET",
            f"/v2/{repo}/blobs/{digest}",
            scopes=pull_scope(repo),
            stream=True,
            what=f"reading blob {digest.short}",
        )
        try:
            if response.status_code == 404:
                raise NotFoundError(f"{self.registry}: {repo} has no blob {digest}")
            if response.status_code != 200:
                raise self.fail(response, f"reading blob {digest.short} of {repo}")
            yield IterStream(_raw_chunks(response, self.registry, digest))
        finally:
            response.close()

    def mount(self, repo: str, digest: Digest, source_repo: str) -> bool:
        """Ask the registry to link *digest* from *source_repo* into *repo* (no bytes move)."""
        response = self.request(
            "POST",
            f"/v2/{repo}/blobs/uploads/",
            scopes=push_scope(repo, source_repo),
            params={"mount": str(digest), "from": source_repo},
            what=f"mounting blob {digest.short}",
        )
        if response.status_code == 201:
            self.traffic.blobs_mounted += 1
            return True
        if response.status_code == 202:
            # Not mountable (another repo's blob we may not read): it opened an upload instead.
            location = response.headers.get("Location")
            if location:
                with contextlib.suppress(RegistryError):
                    self.request("DELETE", location, scopes=push_scope(repo), what="cancel")
            return False
        raise self.fail(response, f"mounting blob {digest.short} into {repo}")


def _read_capped(response: httpx.Response, cap: int, what: str) -> bytes:
    data = bytearray()
    for chunk in response.iter_raw():
        data += chunk
        if len(data) > cap:
            raise IntegrityError(f"{what}: over the {cap}-byte limit for a manifest")
    return bytes(data)


def _raw_chunks(response: httpx.Response, registry: str, digest: Digest) -> Iterator[bytes]:
    with translated(registry, f"reading blob {digest.short}"):
        yield from response.iter_raw(CHUNK)


def _sniff_media_type(data: bytes) -> str:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(doc, dict):
        return ""
    declared = doc.get("mediaType")
    if isinstance(declared, str) and declared in MANIFEST_TYPES:
        return declared
    return mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST


def _check_manifest_digest(raw: RawManifest, reference: str, header: str | None, what: str) -> None:
    expected: Digest | None = None
    if reference.startswith("sha256:"):
        expected = Digest.parse(reference)
    elif header:
        expected = Digest.parse(header)
    if expected is not None and expected != raw.digest:
        raise IntegrityError(
            f"{what}: manifest digest mismatch, expected {expected}, got {raw.digest}",
            hint="the registry or something between served other bytes than it names",
        )
