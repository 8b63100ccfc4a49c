"""Where an image is, as ``copy`` names it: ``TRANSPORT:ADDRESS`` (skopeo's forms, plus ssh).

=========================================  ===============================================
``docker-daemon:IMAGE``                    the local engine (``DOCKER_HOST``)
``ssh://[user@]host[:port]/IMAGE``         a remote engine, over SSH
``docker-archive:PATH[:IMAGE]``            a ``docker save`` archive (any form layerferry reads)
``oci-archive:PATH[:REF]``                 a tarred OCI image layout
``oci:DIR[:REF]``                          an OCI image layout directory
``docker://[REGISTRY/]REPO[:TAG|@DIGEST]`` a registry (distribution API)
=========================================  ===============================================

The path of the archive forms ends at the first ``:`` (as skopeo reads it). Every location
prints back exactly as it was parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .errors import UsageError
from .reference import ImageName, RegistryReference, check_image_ref
from .remote.target import SshTarget

ArchiveKind = Literal["docker-archive", "oci-archive", "oci"]
_ARCHIVE_KINDS: tuple[ArchiveKind, ...] = ("docker-archive", "oci-archive", "oci")
_REF_NAME = re.compile(r"^[A-Za-z0-9]+(?:[-._:@/+]+[A-Za-z0-9]+)*$")
_FORMS = (
    "docker-daemon:IMAGE, ssh://[user@]host[:port]/IMAGE, docker-archive:PATH[:IMAGE], "
    "oci-archive:PATH[:REF], oci:DIR[:REF] or docker://REGISTRY/REPO[:TAG|@DIGEST]"
)


@dataclass(frozen=True)
class DaemonLocation:
    image: str

    def __str__(self) -> str:
        return f"docker-daemon:{self.image}"


@dataclass(frozen=True)
class SshLocation:
    target: SshTarget
    image: str

    def __str__(self) -> str:
        return f"{self.target}/{self.image}"


@dataclass(frozen=True)
class ArchiveLocation:
    kind: ArchiveKind
    path: str
    name: str | None = None
    """docker-archive: an image name (or a 1-based position when reading); OCI: a ``ref.name``."""

    def __str__(self) -> str:
        return f"{self.kind}:{self.path}" + (f":{self.name}" if self.name is not None else "")


@dataclass(frozen=True)
class RegistryLocation:
    ref: RegistryReference

    def __str__(self) -> str:
        return str(self.ref)


Location = DaemonLocation | SshLocation | ArchiveLocation | RegistryLocation


def parse_location(text: str) -> Location:
    """One of the forms above; anything else is a usage error naming them."""
    if text.startswith("docker://"):
        return RegistryLocation(RegistryReference.parse(text))
    if text.startswith("ssh://"):
        return _ssh(text)
    transport, sep, address = text.partition(":")
    if not sep:
        raise UsageError(f"{text!r} names no transport", hint=f"use one of {_FORMS}")
    if transport == "docker-daemon":
        if not address:
            raise UsageError(f"{text!r}: name the image, e.g. docker-daemon:app:1")
        return DaemonLocation(check_image_ref(address))
    if transport in _ARCHIVE_KINDS:
        return _archive(transport, address, text)
    raise UsageError(f"unknown transport {transport!r} in {text!r}", hint=f"use one of {_FORMS}")


def parse_image_or_location(text: str) -> Location:
    """As :func:`parse_location`, and a bare ``name[:tag]`` means the local engine (push, pull)."""
    if text.startswith(("docker://", "ssh://")) or text.split(":", 1)[0] in (
        "docker-daemon",
        *_ARCHIVE_KINDS,
    ):
        return parse_location(text)
    return DaemonLocation(check_image_ref(text))


def _ssh(text: str) -> SshLocation:
    rest = text[len("ssh://") :]
    host, sep, image = rest.partition("/")
    if not sep or not image:
        raise UsageError(
            f"{text!r}: name the image after the host, e.g. ssh://root@web2/app:1",
        )
    return SshLocation(SshTarget.parse(f"ssh://{host}"), check_image_ref(image))


def _archive(kind: str, address: str, text: str) -> ArchiveLocation:
    path, sep, name = address.partition(":")
    if not path:
        raise UsageError(f"{text!r}: name the path, e.g. {kind}:/tmp/app.tar")
    if "\0" in path:
        raise UsageError(f"{text!r}: invalid path")
    chosen: str | None = None
    if sep:
        if not name:
            raise UsageError(f"{text!r}: empty name after the path")
        if kind == "docker-archive" and not name.isdigit():
            ImageName.parse(name)
        elif kind != "docker-archive" and not _REF_NAME.match(name):
            raise UsageError(f"invalid reference name {name!r} in {text!r}")
        chosen = name
    checked: ArchiveKind = (
        "docker-archive"
        if kind == "docker-archive"
        else ("oci-archive" if kind == "oci-archive" else "oci")
    )
    return ArchiveLocation(checked, path, chosen)
