"""Copy locations and registry references: table-driven, each parses and prints back the same."""

from __future__ import annotations

import pytest

from layerferry.errors import UsageError
from layerferry.locations import (
    ArchiveLocation,
    DaemonLocation,
    RegistryLocation,
    SshLocation,
    parse_image_or_location,
    parse_location,
)
from layerferry.reference import RegistryReference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "reference", "name"),
    [
        ("docker://alpine", "registry-1.docker.io", "library/alpine", "latest", "alpine:latest"),
        (
            "docker://docker.io/alpine:3",
            "registry-1.docker.io",
            "library/alpine",
            "3",
            "docker.io/alpine:3",
        ),
        ("docker://team/app:1.2", "registry-1.docker.io", "team/app", "1.2", "team/app:1.2"),
        (
            "docker://127.0.0.1:5000/app",
            "127.0.0.1:5000",
            "app",
            "latest",
            "127.0.0.1:5000/app:latest",
        ),
        ("docker://localhost/a/b/c:v1", "localhost", "a/b/c", "v1", "localhost/a/b/c:v1"),
        (
            "docker://reg.example/app@" + DIGEST,
            "reg.example",
            "app",
            DIGEST,
            "reg.example/app:latest",
        ),
        (
            "docker://reg.example:443/app:1@" + DIGEST,
            "reg.example:443",
            "app",
            DIGEST,
            "reg.example:443/app:1",
        ),
        (
            "docker://Reg.Example/app_x/y-z",
            "Reg.Example",
            "app_x/y-z",
            "latest",
            "Reg.Example/app_x/y-z:latest",
        ),
    ],
)
def test_registry_references(
    text: str, registry: str, repository: str, reference: str, name: str
) -> None:
    ref = RegistryReference.parse(text)
    assert (ref.registry, ref.repository, ref.reference, str(ref.image_name)) == (
        registry,
        repository,
        reference,
        name,
    )
    assert str(ref) == text
    assert RegistryReference.parse(str(ref)) == ref


@pytest.mark.parametrize(
    "bad",
    [
        "docker://",
        "docker:///app",
        "docker://App",
        "docker://reg.example/App:1",
        "docker://app:",
        "docker://app:bad tag",
        "docker://app@sha256:short",
        "docker://app@md5:" + "0" * 32,
        "docker://-app",
        "docker://app/",
        "docker://reg..example/app",
        "docker://app:1:2",
        "alpine",
    ],
)
def test_registry_references_rejected(bad: str) -> None:
    with pytest.raises(UsageError):
        RegistryReference.parse(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("docker-daemon:app:1", DaemonLocation("app:1")),
        (
            "docker-daemon:reg:5000/team/app@" + DIGEST,
            DaemonLocation("reg:5000/team/app@" + DIGEST),
        ),
        ("docker-daemon:" + "a" * 12, DaemonLocation("a" * 12)),
        ("ssh://lf-b/app:1", None),
        ("ssh://root@10.0.0.5:2222/team/app:1", None),
        ("docker-archive:/tmp/app.tar", ArchiveLocation("docker-archive", "/tmp/app.tar")),
        ("docker-archive:app.tar:app:1", ArchiveLocation("docker-archive", "app.tar", "app:1")),
        ("docker-archive:app.tar:2", ArchiveLocation("docker-archive", "app.tar", "2")),
        ("oci-archive:/x/app.tar:v1", ArchiveLocation("oci-archive", "/x/app.tar", "v1")),
        ("oci:/x/layout", ArchiveLocation("oci", "/x/layout")),
        ("oci:layout:app:v1.2", ArchiveLocation("oci", "layout", "app:v1.2")),
        ("docker://127.0.0.1:5000/team/app:1", None),
    ],
)
def test_locations_round_trip(text: str, expected: object) -> None:
    location = parse_location(text)
    if expected is not None:
        assert location == expected
    assert str(location) == text
    assert parse_location(str(location)) == location


def test_ssh_and_registry_locations_carry_their_parts() -> None:
    ssh = parse_location("ssh://root@10.0.0.5:2222/team/app:1")
    assert isinstance(ssh, SshLocation)
    assert (ssh.target.user, ssh.target.host, ssh.target.port, ssh.image) == (
        "root",
        "10.0.0.5",
        2222,
        "team/app:1",
    )
    reg = parse_location("docker://127.0.0.1:5000/team/app:1")
    assert isinstance(reg, RegistryLocation) and reg.ref.repository == "team/app"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("app:1", "unknown transport 'app'"),
        ("app", "names no transport"),
        ("dir:/tmp/x", "unknown transport 'dir'"),
        ("docker-daemon:", "name the image"),
        ("docker-daemon:App", "invalid image name"),
        ("docker-daemon:$(id)", "invalid image name"),
        ("ssh://lf-b", "name the image after the host"),
        ("ssh://lf-b/", "name the image after the host"),
        ("ssh://-oProxyCommand=id/app", "invalid host name"),
        ("docker-archive:", "name the path"),
        ("docker-archive::app:1", "name the path"),
        ("docker-archive:x.tar:", "empty name"),
        ("docker-archive:x.tar:App", "invalid image name"),
        ("oci:dir:bad name", "invalid reference name"),
        ("oci:dir:-x", "invalid reference name"),
        ("docker://reg/App", "invalid repository"),
    ],
)
def test_locations_rejected(bad: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("$", r"\$")):
        parse_location(bad)


def test_a_bare_image_means_the_local_engine_for_push() -> None:
    assert parse_image_or_location("app:1") == DaemonLocation("app:1")
    assert parse_image_or_location("oci:/x") == ArchiveLocation("oci", "/x")
    with pytest.raises(UsageError):
        parse_image_or_location("App:1")
