"""``send --via docker://REGISTRY/PREFIX``: push once, and let every host's engine pull.

For a fleet the client's uplink is the bottleneck of a plain ``send``: each host gets the
layers it lacks from the client. With a registry between, the client uploads each blob at most
once (none the registry has), and each host's own engine pulls the image by digest (``docker
pull`` semantics: it skips the blobs it has pulled before, but a layer it got by ``docker load``
has no blob digest it knows, so it downloads that once more), then the image is tagged with its
names and re-read. A host that holds the image already is not asked to pull.
The registry must be reachable, and trusted, from the hosts as it is named here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..archive.writer import ArchiveImage
from ..copy.destinations import SshDaemonDestination
from ..copy.engine import CopyReport, copy_images
from ..copy.plan import plan_copy
from ..errors import UsageError
from ..oci.digest import Digest
from ..reference import RegistryReference
from ..registry.client import RegistryClient
from ..registry.credentials import lookup
from ..registry.push import RegistryDestination
from ..remote.host import RemoteHost
from ..remote.target import SshTarget
from ..reporting import Reporter
from ..settings import Settings


@dataclass(frozen=True)
class Pinned:
    """Where one image was pushed: the repository and its manifest digest."""

    ref: RegistryReference
    manifest: Digest

    @property
    def repository(self) -> str:
        domain = self.ref.domain or self.ref.registry
        return f"{domain}/{self.ref.path}"


def via_reference(text: str) -> RegistryReference:
    ref = RegistryReference.parse(text)
    if ref.tag is not None or ref.digest is not None:
        raise UsageError(
            f"--via {text}: name a registry and a path prefix, without a tag",
            hint="each image goes to PREFIX/NAME:TAG, e.g. --via docker://reg:5000/fleet",
        )
    return ref


def push_once(
    images: Sequence[ArchiveImage], via: RegistryReference, settings: Settings, reporter: Reporter
) -> dict[Digest, Pinned]:
    """Each image to ``PREFIX/NAME:TAG`` (its first tag; ``image:id-…`` for untagged ones)."""
    pinned: dict[Digest, Pinned] = {}
    cache = settings.blob_cache()
    with RegistryClient(via.registry, settings.registry) as client:
        for image in images:
            name = image.tags[0] if image.tags else None
            leaf = name.repository.rsplit("/", 1)[-1] if name else "image"
            tag = name.tag if name else f"id-{image.config.digest.short}"
            ref = RegistryReference(via.domain, f"{via.path}/{leaf}", tag)
            destination = RegistryDestination(client, ref, cache, reporter=reporter)
            copy_images([image], destination, reporter=reporter)
            pinned[image.config.digest] = Pinned(ref, destination.pushed[image.config.digest])
    return pinned


def pull_on_host(
    images: Sequence[ArchiveImage],
    pinned: dict[Digest, Pinned],
    target: SshTarget,
    settings: Settings,
    reporter: Reporter,
    *,
    dry_run: bool = False,
) -> CopyReport:
    """The host's engine pulls what it lacks from the registry; nothing passes through here."""
    with RemoteHost.connect(target, ssh_config=settings.ssh_config) as remote:
        destination = SshDaemonDestination(remote, settings.blob_cache(), reporter)
        plan = plan_copy(images, destination.inventory(images))
        if dry_run:
            return CopyReport(destination.where, plan, 0)
        for image_plan in plan.images:
            image = image_plan.image
            where = pinned[image.config.digest]
            by_digest = f"{where.repository}@{where.manifest}"
            if not image_plan.present:
                # The engine decides what it downloads: it skips only blobs it once pulled
                # itself, so layers it got by `docker load` are fetched again (and then kept).
                reporter.step(
                    f"{destination.where}: the engine pulls {where.ref} from "
                    f"{where.ref.registry} ({len(image_plan.missing)} layer(s) missing there)"
                )
                remote.engine.pull(where.repository, str(where.manifest), _auth(where, settings))
            for name in image.tags:
                remote.engine.tag(by_digest, str(name))
        destination.confirm(images)
        return CopyReport(destination.where, plan, 0)


def _auth(where: Pinned, settings: Settings) -> dict[str, str] | None:
    """The operator's login for the registry, handed to the engine's pull (as ``docker -H``
    does); None leaves the engine to its own."""
    creds = lookup(where.ref.registry, settings.registry.docker_config)
    if creds is None:
        return None
    if creds.is_identity_token:
        return {"identitytoken": creds.secret, "serveraddress": where.ref.registry}
    return {
        "username": creds.username,
        "password": creds.secret,
        "serveraddress": where.ref.registry,
    }
