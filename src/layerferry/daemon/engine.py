"""A Docker engine, reached through the Docker SDK; the SDK's exceptions stop here.

The same class serves the local daemon (``DOCKER_HOST`` or the default socket) and a remote one
whose socket is forwarded over SSH (see :mod:`layerferry.remote.session`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests.exceptions

from ..errors import ConflictError, EngineError, LayerferryError, NotFoundError, UnreachableError
from ..oci.digest import Digest, chain_ids
from .progress import LoadResult, parse_load_messages

# Saves and loads can be silent for minutes (20.10 copies the whole image before the first byte).
IDLE_TIMEOUT = 900
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
    except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
        raise UnreachableError(
            f"{where}: cannot reach the Docker engine ({type(exc).__name__}: {exc})",
            hint="is dockerd running, and is DOCKER_HOST right?",
        ) from exc
    except requests.exceptions.RequestException as exc:
        raise EngineError(f"{where}: {what}: {exc}") from exc


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
    def save(self, ref: str) -> Iterator[bytes]:
        with _translated(self.where, f"saving image {ref}"):
            yield from self._api.get_image(ref, chunk_size=CHUNK)

    def load(self, chunks: Iterable[bytes]) -> LoadResult:
        with _translated(self.where, "loading image"):
            messages = self._api.load_image(chunks)
            return parse_load_messages(messages, self.where)

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

    # -- containers ---------------------------------------------------------------------------
    def container(self, name: str) -> dict[str, Any]:
        try:
            with _translated(self.where, f"container {name}"):
                return dict(self._api.inspect_container(name))
        except NotFoundError as exc:
            raise NotFoundError(f"{self.where}: no container named {name!r}") from exc

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

    def stop(self, container: str, timeout: int = 10) -> None:
        with _translated(self.where, f"stopping container {container}"):
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

    def pause(self, container: str) -> None:
        with _translated(self.where, f"pausing container {container}"):
            self._api.pause(container)

    def unpause(self, container: str) -> None:
        with _translated(self.where, f"unpausing container {container}"):
            self._api.unpause(container)

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
    try:
        if docker_host:
            client = docker.DockerClient(base_url=docker_host, timeout=IDLE_TIMEOUT)
        else:
            client = docker.from_env(timeout=IDLE_TIMEOUT)
    except docker.errors.DockerException as exc:
        raise UnreachableError(
            f"local engine: cannot connect ({exc})",
            hint="is dockerd running, and is DOCKER_HOST right?",
        ) from exc
    return Engine(client, "local engine")


def connect_socket(path: str, where: str) -> Engine:
    """An engine behind a unix socket (a remote one forwarded over SSH)."""
    try:
        client = docker.DockerClient(base_url=f"unix://{path}", timeout=IDLE_TIMEOUT)
    except docker.errors.DockerException as exc:
        raise UnreachableError(f"{where}: cannot reach the Docker engine ({exc})") from exc
    return Engine(client, where)
