"""Image references in Docker's familiar form (``app:hotfix``, ``reg:5000/team/app@sha256:…``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import UsageError
from .oci.digest import Digest

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?"
_NAME_RE = re.compile(rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_CONTAINER_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


@dataclass(frozen=True)
class ImageName:
    """A repository name with a tag, normalised the way Docker prints it (``name:tag``)."""

    repository: str
    tag: str = "latest"

    @classmethod
    def parse(cls, text: str) -> ImageName:
        if not text or text.startswith("-") or any(c.isspace() for c in text):
            raise UsageError(f"invalid image name {text!r}")
        name, tag = text, "latest"
        slash = text.rfind("/")
        colon = text.rfind(":")
        if "@" in text:
            raise UsageError(f"{text!r}: a digest reference cannot be used as a tag")
        if colon > slash:
            name, tag = text[:colon], text[colon + 1 :]
        match = _NAME_RE.match(name)
        if not match:
            raise UsageError(
                f"invalid image name {text!r}",
                hint="names are lowercase letters, digits and separators, e.g. app:hotfix",
            )
        first = name.split("/", 1)[0]
        # "team/app": the first part is a path component, not a registry; lowercase only.
        if match.group("domain") and not _looks_like_domain(first) and first.lower() != first:
            raise UsageError(f"invalid image name {text!r}: repository must be lowercase")
        if not _TAG_RE.match(tag):
            raise UsageError(f"invalid tag {tag!r} in {text!r}")
        return cls(name, tag)

    @property
    def full(self) -> str:
        """Fully qualified (``docker.io/library/app:tag``), as containerd names images."""
        first, _, rest = self.repository.partition("/")
        if not rest:
            return f"docker.io/library/{self.repository}:{self.tag}"
        if _looks_like_domain(first):
            return f"{self.repository}:{self.tag}"
        return f"docker.io/{self.repository}:{self.tag}"

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}"


_ID_RE = re.compile(r"^(sha256:)?[0-9a-f]{12,64}$")


def check_image_ref(ref: str) -> str:
    """An image as the user names it for an engine: ``name[:tag]``, ``name@digest`` or an ID."""
    if _ID_RE.match(ref):
        return ref
    name, at, digest = ref.partition("@")
    if at:
        Digest.parse(digest)
        ImageName.parse(name)
        return ref
    ImageName.parse(ref)
    return ref


def _looks_like_domain(part: str) -> bool:
    return "." in part or ":" in part or part == "localhost"


def validate_container_name(name: str) -> str:
    """Container names as Docker accepts them; anything else never reaches a command line."""
    if not _CONTAINER_RE.match(name):
        raise UsageError(
            f"invalid container name {name!r}",
            hint="container names are letters, digits, '_', '.', '-' and start with a letter or digit",
        )
    return name.lstrip("/")


DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_REGISTRY_PREFIX = "docker://"


@dataclass(frozen=True)
class RegistryReference:
    """``docker://[REGISTRY/]REPO[:TAG][@DIGEST]``, kept as written so it prints back the same.

    Without a registry the name is Docker Hub's (``docker://alpine`` is
    ``registry-1.docker.io/library/alpine:latest``), as the Docker client reads it.
    """

    domain: str | None
    path: str
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str) -> RegistryReference:
        if not text.startswith(_REGISTRY_PREFIX):
            raise UsageError(
                f"invalid registry reference {text!r}: expected docker://REGISTRY/REPO[:TAG]"
            )
        rest = text[len(_REGISTRY_PREFIX) :]
        if not rest or any(c.isspace() for c in rest) or rest.startswith(("-", "/")):
            raise UsageError(f"invalid registry reference {text!r}")
        name, at, digest_text = rest.partition("@")
        digest = Digest.parse(digest_text) if at else None
        tag: str | None = None
        slash, colon = name.rfind("/"), name.rfind(":")
        if colon > slash:
            name, tag = name[:colon], name[colon + 1 :]
            if not _TAG_RE.match(tag):
                raise UsageError(f"invalid tag {tag!r} in {text!r}")
        first, sep, remainder = name.partition("/")
        domain = first if sep and _looks_like_domain(first) else None
        path = remainder if domain else name
        if not re.match(rf"^{_COMPONENT}(?:/{_COMPONENT})*$", path):
            raise UsageError(
                f"invalid repository {path!r} in {text!r}",
                hint="repositories are lowercase letters, digits and separators, e.g. team/app",
            )
        if domain is not None and not re.match(rf"^{_DOMAIN}$", domain):
            raise UsageError(f"invalid registry {domain!r} in {text!r}")
        return cls(domain, path, tag, digest)

    @property
    def registry(self) -> str:
        """Where to connect (``host[:port]``); Docker Hub's API host for a bare name."""
        if self.domain in (None, DOCKER_HUB, "index.docker.io"):
            return DOCKER_HUB_API
        return str(self.domain)

    @property
    def repository(self) -> str:
        """The repository as the API names it (``library/alpine`` on Docker Hub)."""
        if self.registry == DOCKER_HUB_API and "/" not in self.path:
            return f"library/{self.path}"
        return self.path

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when given, else the tag (``latest``)."""
        if self.digest is not None:
            return str(self.digest)
        return self.tag or "latest"

    @property
    def image_name(self) -> ImageName:
        """The name an engine gives the pulled image (``docker pull`` names it the same)."""
        repository = f"{self.domain}/{self.path}" if self.domain else self.path
        return ImageName(repository, self.tag or "latest")

    def with_tag(self, tag: str) -> RegistryReference:
        return RegistryReference(self.domain, self.path, tag, None)

    def __str__(self) -> str:
        text = _REGISTRY_PREFIX + (f"{self.domain}/" if self.domain else "") + self.path
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text
