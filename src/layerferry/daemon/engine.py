"""A Docker engine, reached through the Docker SDK; the SDK's exceptions stop here.

The same class serves the local daemon (``DOCKER_HOST`` or the default socket) and a remote one
whose socket is forwarded over SSH (see :mod:`layerferry.remote.session`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions

from ..errors import ConflictError, EngineError, LayerferryError, NotFoundError, UnreachableError
from ..oci.digest import Digest, chain_ids
from .progress import LoadResult, parse_load_messages

# Saves and loads can be silent for minutes (20.10 copies the whole image before the first byte),
# so there is no deadline per request, only this limit on silence (case C28).
IDLE_TIMEOUT = 900
IDLE_TIMEOUT_ENV = "LAYERFERRY_ENGINE_IDLE_TIMEOUT"
#: What the engine gives a container after its stop signal when the container sets no
#: ``--stop-timeout`` of its own.
DEFAULT_STOP_TIMEOUT = 10


def idle_timeout() -> float:
    """Seconds an engine may stay silent mid-request: ``$LAYERFERRY_ENGINE_IDLE_TIMEOUT``, or
    15 minutes."""
    raw = os.environ.get(IDLE_TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else IDLE_TIMEOUT
    except ValueError:
        value = IDLE_TIMEOUT
    return value if value > 0 else IDLE_TIMEOUT


CHUNK = 1024 * 1024


@dataclass(frozen=True)
class EngineInfo:
    name: str
    version: str
    api_version: str
    os: str
    architecture: str
    driver: str
    containerd_store: bool
    engine_id: str
    root_dir: str = ""


@dataclass(frozen=True)
class ImageRecord:
    id: str
    tags: list[str]
    diff_ids: list[Digest]

    @property
    def config_digest(self) -> Digest | None:
        try:
            return Digest.parse(self.id)
        except LayerferryError:
            return None


@contextlib.contextmanager
def _translated(where: str, what: str) -> Iterator[None]:
    """Map the SDK's and requests' exceptions to ours, naming the daemon and the operation."""
    try:
        yield
    except docker.errors.NotFound as exc:
        raise NotFoundError(f"{where}: {what}: {_explanation(exc)}") from exc
    except docker.errors.APIError as exc:
        if exc.status_code == 409:
            raise ConflictError(f"{where}: {what}: {_explanation(exc)}") from exc
        raise EngineError(f"{where}: {what}: {_explanation(exc)}") from exc
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
        if not _is_read_timeout(exc):
            raise _unreachable(where, exc) from exc
        raise _silent(where, what) from exc
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise _silent(where, what) from exc
    except (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError) as exc:
        raise EngineError(
            f"{where}: {what}: the engine's stream was cut short ({exc})",
            hint="the engine may have failed or restarted: see its log, then run the same "
            "command again",
        ) from exc
    except docker.errors.DockerException as exc:
        raise _unreachable(where, exc) from exc
    except requests.exceptions.RequestException as exc:
        raise EngineError(f"{where}: {what}: {exc}") from exc


def _is_read_timeout(exc: BaseException) -> bool:
    """requests wraps urllib3's read timeout in ConnectionError while a body streams."""
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    return any(
        "ReadTimeoutError" in type(arg).__name__ or "Read timed out" in str(arg) for arg in exc.args
    )


def _silent(where: str, what: str) -> EngineError:
    return EngineError(
        f"{where}: {what}: the engine sent nothing for {idle_timeout():g} s",
        hint=f"a busy engine may need longer: set {IDLE_TIMEOUT_ENV} (seconds)",
    )


def _unreachable(where: str, exc: BaseException) -> UnreachableError:
    return UnreachableError(
        f"{where}: cannot reach the Docker engine ({type(exc).__name__}: {exc})",
        hint="is dockerd running, and is DOCKER_HOST right?",
    )


def _explanation(exc: docker.errors.APIError) -> str:
    text = exc.explanation if exc.explanation else str(exc)
    return str(text).strip()


class Engine:
    """One Docker daemon. ``where`` names it in every error ("local engine", "host lf-b")."""

    def __init__(self, client: docker.DockerClient, where: str) -> None:
        self._client = client
        self._api = client.api
        self.where = where

    def close(self) -> None:
        self._client.close()

    # -- facts --------------------------------------------------------------------------------
    def info(self) -> EngineInfo:
        with _translated(self.where, "querying engine"):
            version = self._api.version()
            info = self._api.info()
        status = dict((k, v) for k, v in (info.get("DriverStatus") or []) if isinstance(k, str))
        return EngineInfo(
            name=str(info.get("Name", "")),
            version=str(version.get("Version", "")),
            api_version=str(version.get("ApiVersion", "")),
            os=str(info.get("OSType", "")),
            architecture=_normalise_arch(str(info.get("Architecture", ""))),
            driver=str(info.get("Driver", "")),
            containerd_store="io.containerd.snapshotter.v1" in str(status.get("driver-type", "")),
            engine_id=str(info.get("ID", "")),
            root_dir=str(info.get("DockerRootDir", "")),
        )

    def image(self, ref: str) -> ImageRecord:
        try:
            with _translated(self.where, f"image {ref}"):
                data = self._api.inspect_image(ref)
        except NotFoundError as exc:
            raise NotFoundError(f"{self.where}: no such image {ref!r}") from exc
        return _image_record(data)

    def find_image(self, ref: str) -> ImageRecord | None:
        try:
            return self.image(ref)
        except NotFoundError:
            return None

    def images(self) -> list[ImageRecord]:
        with _translated(self.where, "listing images"):
            listed = self._api.images(all=False)
            records = []
            for summary in listed:
                try:
                    records.append(_image_record(self._api.inspect_image(summary["Id"])))
                except docker.errors.NotFound:
                    continue  # removed between the list and the inspect
        return records

    def layer_chains(self) -> set[Digest]:
        """Every chain ID this engine's images are built of: what it already has."""
        chains: set[Digest] = set()
        for record in self.images():
            chains.update(chain_ids(record.diff_ids))
        return chains

    # -- images -------------------------------------------------------------------------------
    def save(self, ref: str, name: str | None = None) -> Iterator[bytes]:
        """``docker save`` of *ref* (an ID); *name* is what the user called it, for messages."""
        # Read the raw response, not the SDK's get_image: the SDK switches the socket's timeout
        # off for streams, so an engine gone silent would hang a save for ever.
        what = f"saving image {name or ref}"
        url = self._api._url("/images/{0}/get", ref)
        with _translated(self.where, what):
            response = self._api._get(url, stream=True, headers={"Accept-Encoding": "identity"})
            try:
                self._api._raise_for_status(response)
                yield from self._chunks(response, what)
            finally:
                response.close()

    def load(self, chunks: Iterable[bytes]) -> LoadResult:
        with _translated(self.where, "loading image"):
            messages = self._api.load_image(chunks)
            return parse_load_messages(messages, self.where)

    def pull(self, repository: str, reference: str, auth: dict[str, str] | None = None) -> None:
        """The engine pulls ``repository:tag`` (or ``@digest``) itself; errors inside the
        progress stream fail it."""
        sep = "@" if reference.startswith("sha256:") else ":"
        with _translated(self.where, f"pulling {repository}{sep}{reference}"):
            messages = self._api.pull(
                repository, tag=reference, stream=True, decode=True, auth_config=auth
            )
            for message in messages:
                error = isinstance(message, dict) and (
                    message.get("error") or (message.get("errorDetail") or {}).get("message")
                )
                if error:
                    raise EngineError(f"{self.where}: pull of {repository} failed: {error}")

    def tag(self, image_id: str, name: str) -> None:
        repository, _, tag = name.rpartition(":")
        with _translated(self.where, f"tagging {image_id[:19]} as {name}"):
            self._api.tag(image_id, repository, tag, force=True)

    def commit(
        self,
        container: str,
        *,
        repository: str | None,
        tag: str | None,
        message: str | None,
        author: str | None,
        changes: list[str],
        pause: bool = True,
    ) -> str:
        with _translated(self.where, f"committing container {container}"):
            result = self._api.commit(
                container,
                repository=repository,
                tag=tag,
                message=message,
                author=author,
                changes=changes or None,
                pause=pause,
            )
        return str(result["Id"])

    def inspect_image(self, ref: str) -> dict[str, Any]:
        """The engine's whole inspect document of an image (its ``Config`` among it)."""
        try:
            with _translated(self.where, f"image {ref}"):
                return dict(self._api.inspect_image(ref))
        except NotFoundError as exc:
            raise NotFoundError(f"{self.where}: no such image {ref!r}") from exc

    # -- a container's files ------------------------------------------------------------------
    def changes(self, container: str) -> list[tuple[str, int]]:
        """``GET /containers/{id}/changes``: (path, kind), kind 0 changed, 1 added, 2 deleted."""
        with _translated(self.where, f"changes of container {container}"):
            listed = self._api.diff(container) or []
        return [(str(c["Path"]), int(c["Kind"])) for c in listed]

    def path_stat(self, container: str, path: str) -> PathStat | None:
        """``HEAD /containers/{id}/archive``: what is at *path* (None: nothing)."""
        url = self._api._url("/containers/{0}/archive", container)
        with _translated(self.where, f"stat of {path} in container {container}"):
            response = self._api.head(url, params={"path": path})
            if response.status_code == 404:
                return None
            self._api._raise_for_status(response)
        return _path_stat(response.headers.get("X-Docker-Container-Path-Stat", ""))

    @contextlib.contextmanager
    def archive(self, container: str, path: str) -> Iterator[Iterator[bytes]]:
        """``GET /containers/{id}/archive?path=``: the tar of *path* (a directory with all
        below it), streamed uncompressed; leaving the block early closes the stream."""
        url = self._api._url("/containers/{0}/archive", container)
        with _translated(self.where, f"reading {path} from container {container}"):
            response = self._api._get(
                url, params={"path": path}, stream=True, headers={"Accept-Encoding": "identity"}
            )
            try:
                self._api._raise_for_status(response)
                yield self._chunks(response, f"reading {path} from container {container}")
            finally:
                response.close()

    @contextlib.contextmanager
    def export(self, container: str) -> Iterator[Iterator[bytes]]:
        """``GET /containers/{id}/export``: the container's whole filesystem as one tar."""
        url = self._api._url("/containers/{0}/export", container)
        with _translated(self.where, f"exporting container {container}"):
            response = self._api._get(url, stream=True, headers={"Accept-Encoding": "identity"})
            try:
                self._api._raise_for_status(response)
                yield self._chunks(response, f"exporting container {container}")
            finally:
                response.close()

    def _chunks(self, response: Any, what: str) -> Iterator[bytes]:
        with _translated(self.where, what):
            while chunk := response.raw.read(CHUNK):
                yield chunk

    def pause(self, container: str) -> None:
        with _translated(self.where, f"pausing container {container}"):
            self._api.pause(container)

    def unpause(self, container: str) -> None:
        with _translated(self.where, f"unpausing container {container}"):
            self._api.unpause(container)

    # -- containers ---------------------------------------------------------------------------
    def container(self, name: str) -> dict[str, Any]:
        try:
            with _translated(self.where, f"container {name}"):
                return dict(self._api.inspect_container(name))
        except NotFoundError as exc:
            raise NotFoundError(f"{self.where}: no container named {name!r}") from exc

    def container_named(self, name: str) -> dict[str, Any] | None:
        """The container whose name is exactly *name* (never an ID-prefix match, unlike inspect)."""
        with _translated(self.where, f"looking up container {name}"):
            found = self._api.containers(all=True, filters={"name": f"^/{re.escape(name)}$"})
        for summary in found:
            if f"/{name}" in (summary.get("Names") or []):
                return self.container(str(summary["Id"]))
        return None

    def find_container(self, name: str) -> dict[str, Any] | None:
        try:
            return self.container(name)
        except NotFoundError:
            return None

    def create_container(self, config: dict[str, Any], name: str) -> str:
        with _translated(self.where, f"creating container {name}"):
            result = self._api.create_container_from_config(config, name=name)
        return str(result["Id"])

    def start(self, container: str) -> None:
        with _translated(self.where, f"starting container {container}"):
            self._api.start(container)

    def stop(self, container: str, timeout: int | None = None) -> None:
        """Stop *container*, giving it *timeout* seconds after its stop signal; by default its
        own ``--stop-timeout`` (a database may need more than the engine's 10 s to shut down
        cleanly: never cut that short)."""
        with _translated(self.where, f"stopping container {container}"):
            if timeout is None:
                own = (self._api.inspect_container(container).get("Config") or {}).get(
                    "StopTimeout"
                )
                timeout = int(own) if own is not None else DEFAULT_STOP_TIMEOUT
            self._api.stop(container, timeout=timeout)

    def remove_container(self, container: str, force: bool = False, volumes: bool = False) -> None:
        """Remove *container*; with *volumes*, its anonymous volumes too (named ones stay)."""
        with _translated(self.where, f"removing container {container}"):
            self._api.remove_container(container, force=force, v=volumes)

    def rename(self, container: str, name: str) -> None:
        with _translated(self.where, f"renaming container {container}"):
            self._api.rename(container, name)

    def logs(self, container: str, tail: int = 20) -> str:
        with _translated(self.where, f"logs of {container}"):
            raw = self._api.logs(container, tail=tail)
        return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)

    def network_names(self) -> set[str]:
        with _translated(self.where, "listing networks"):
            return {str(n["Name"]) for n in self._api.networks()}

    # -- whole-container state: run state, archives, volumes, networks --------------------------
    def raw_info(self) -> dict[str, Any]:
        """``GET /info`` as the engine answers it (plugins, runtimes, swarm state)."""
        with _translated(self.where, "querying engine"):
            return dict(self._api.info())

    def image_inspect(self, ref: str) -> dict[str, Any]:
        try:
            with _translated(self.where, f"image {ref}"):
                return dict(self._api.inspect_image(ref))
        except NotFoundError as exc:
            raise NotFoundError(f"{self.where}: no such image {ref!r}") from exc

    def remove_image(self, ref: str) -> None:
        with _translated(self.where, f"removing image {ref}"):
            self._api.remove_image(ref, noprune=False)

    def containers(self, *, all: bool = False) -> list[dict[str, Any]]:
        """Container summaries (``GET /containers/json``): names, state, published ports."""
        with _translated(self.where, "listing containers"):
            return [dict(c) for c in self._api.containers(all=all)]

    def container_size(self, name: str) -> dict[str, Any]:
        """Inspect with ``SizeRw`` (the writable layer's size) filled in."""
        with _translated(self.where, f"container {name}"):
            response = self._api._get(
                self._api._url("/containers/{0}/json", name), params={"size": 1}
            )
            return dict(self._api._result(response, True))

    def wait(self, container: str, timeout: float) -> int:
        with _translated(self.where, f"waiting for container {container}"):
            result = self._api.wait(container, timeout=timeout)
        return int(result.get("StatusCode", -1))

    def get_archive(self, container: str, path: str) -> Iterator[bytes]:
        """A tar stream of *path* in the container (``GET /containers/{id}/archive``)."""
        with _translated(self.where, f"reading {path} from container {container}"):
            chunks, _stat = self._api.get_archive(container, path, chunk_size=CHUNK)
            yield from chunks

    def put_archive(self, container: str, path: str, chunks: Iterable[bytes]) -> None:
        """Unpack a tar stream into *path* in the container (``PUT /containers/{id}/archive``)."""
        with _translated(self.where, f"writing into {path} of container {container}"):
            if not self._api.put_archive(container, path, chunks):
                raise EngineError(f"{self.where}: writing into {path} of {container} failed")

    def volumes(self) -> list[dict[str, Any]]:
        with _translated(self.where, "listing volumes"):
            return [dict(v) for v in (self._api.volumes().get("Volumes") or [])]

    def volume(self, name: str) -> dict[str, Any]:
        try:
            with _translated(self.where, f"volume {name}"):
                return dict(self._api.inspect_volume(name))
        except NotFoundError as exc:
            raise NotFoundError(f"{self.where}: no volume named {name!r}") from exc

    def volume_sizes(self) -> dict[str, int]:
        """Bytes each local volume holds, as ``docker system df -v`` counts them."""
        with _translated(self.where, "measuring volumes"):
            data = self._api.df()
        sizes: dict[str, int] = {}
        for volume in data.get("Volumes") or []:
            usage = volume.get("UsageData") or {}
            size = usage.get("Size")
            if isinstance(size, int) and size >= 0:
                sizes[str(volume.get("Name"))] = size
        return sizes

    def create_volume(
        self, name: str, driver: str, options: dict[str, str], labels: dict[str, str]
    ) -> None:
        with _translated(self.where, f"creating volume {name}"):
            self._api.create_volume(
                name, driver=driver or None, driver_opts=options or None, labels=labels or None
            )

    def remove_volume(self, name: str) -> None:
        with _translated(self.where, f"removing volume {name}"):
            self._api.remove_volume(name)

    def networks(self) -> list[dict[str, Any]]:
        with _translated(self.where, "listing networks"):
            return [dict(n) for n in self._api.networks()]

    def network(self, name: str) -> dict[str, Any]:
        try:
            with _translated(self.where, f"network {name}"):
                return dict(self._api.inspect_network(name))
        except NotFoundError as exc:
            raise NotFoundError(f"{self.where}: no network named {name!r}") from exc

    def create_network(self, name: str, body: dict[str, Any]) -> str:
        """``POST /networks/create`` with *body* (Driver, IPAM, Options, Labels, …)."""
        with _translated(self.where, f"creating network {name}"):
            response = self._api._post_json(
                self._api._url("/networks/create"), data={"Name": name, **body}
            )
            return str(self._api._result(response, True)["Id"])

    def remove_network(self, name: str) -> None:
        with _translated(self.where, f"removing network {name}"):
            self._api.remove_network(name)

    def connect(self, container: str, network: str, endpoint: dict[str, Any]) -> None:
        """Attach *container* to *network* with an endpoint config (aliases, static IPs)."""
        with _translated(self.where, f"connecting {container} to network {network}"):
            response = self._api._post_json(
                self._api._url("/networks/{0}/connect", network),
                data={"Container": container, "EndpointConfig": endpoint},
            )
            self._api._raise_for_status(response)


@dataclass(frozen=True)
class PathStat:
    """The archive endpoint's stat header: Go's ``os.FileMode`` bits decoded."""

    name: str
    size: int
    mode: int
    link_target: str

    @property
    def is_dir(self) -> bool:
        return bool(self.mode & _GO_MODE_DIR)

    @property
    def is_symlink(self) -> bool:
        return bool(self.mode & _GO_MODE_SYMLINK)

    @property
    def is_regular(self) -> bool:
        return not self.mode & _GO_MODE_TYPE


_GO_MODE_DIR = 1 << 31
_GO_MODE_SYMLINK = 1 << 27
# Go's ModeType: dir, symlink, named pipe, socket, device, char device, irregular.
_GO_MODE_TYPE = (1 << 31) | (1 << 27) | (1 << 25) | (1 << 24) | (1 << 26) | (1 << 21) | (1 << 19)


def _path_stat(header: str) -> PathStat | None:
    try:
        data = json.loads(base64.b64decode(header))
        return PathStat(
            name=str(data["name"]),
            size=int(data["size"]),
            mode=int(data["mode"]),
            link_target=str(data.get("linkTarget") or ""),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _image_record(data: dict[str, Any]) -> ImageRecord:
    layers = (data.get("RootFS") or {}).get("Layers") or []
    return ImageRecord(
        id=str(data["Id"]),
        tags=[str(t) for t in (data.get("RepoTags") or [])],
        diff_ids=[Digest.parse(d) for d in layers],
    )


def _normalise_arch(arch: str) -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(arch, arch)


def connect_local(docker_host: str | None = None) -> Engine:
    """The local engine: *docker_host*, else ``DOCKER_HOST``, else the default socket."""
    address = docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        if docker_host:
            client = docker.DockerClient(base_url=docker_host, timeout=idle_timeout())
        else:
            client = docker.from_env(timeout=idle_timeout())
    except docker.errors.DockerException as exc:
        # The local engine is not a remote host: an engine failure (exit 6), said plainly.
        raise EngineError(
            f"local engine: cannot connect to {address}: {_root_cause(exc)}",
            hint="is dockerd running, and is DOCKER_HOST right?",
        ) from exc
    return Engine(client, "local engine")


def _root_cause(exc: BaseException) -> str:
    """The innermost OS error's text ("No such file or directory"), else the message as is:
    the SDK wraps it in requests' and urllib3's reprs, which say nothing to an operator."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, OSError) and item.strerror:
            return item.strerror.lower()
        todo.extend([item.__cause__, item.__context__, *item.args])
    return str(exc)


def connect_socket(path: str, where: str) -> Engine:
    """An engine behind a unix socket (a remote one forwarded over SSH)."""
    try:
        client = docker.DockerClient(base_url=f"unix://{path}", timeout=idle_timeout())
    except docker.errors.DockerException as exc:
        raise UnreachableError(
            f"{where}: cannot reach the Docker engine: {_root_cause(exc)}"
        ) from exc
    return Engine(client, where)
