from __future__ import annotations

import pytest

from layerferry.errors import UsageError
from layerferry.reference import ImageName, validate_container_name
from layerferry.remote.target import SshTarget


@pytest.mark.parametrize(
    ("text", "repository", "tag", "full"),
    [
        ("app", "app", "latest", "docker.io/library/app:latest"),
        ("app:hotfix", "app", "hotfix", "docker.io/library/app:hotfix"),
        ("team/app:1.2", "team/app", "1.2", "docker.io/team/app:1.2"),
        (
            "reg.example:5000/team/app:v1",
            "reg.example:5000/team/app",
            "v1",
            "reg.example:5000/team/app:v1",
        ),
        ("localhost/app", "localhost/app", "latest", "localhost/app:latest"),
        (
            "layerferry/web:migrate-20260101-000000",
            "layerferry/web",
            "migrate-20260101-000000",
            "docker.io/layerferry/web:migrate-20260101-000000",
        ),
    ],
)
def test_image_names(text: str, repository: str, tag: str, full: str) -> None:
    name = ImageName.parse(text)
    assert (name.repository, name.tag, name.full) == (repository, tag, full)
    assert ImageName.parse(str(name)) == name


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "App",
        "-app",
        "app tag",
        "app:",
        "app:bad tag",
        "app@sha256:" + "0" * 64,
        "a$(id)",
        "app:`x`",
        "app\n",
    ],
)
def test_image_names_rejected(bad: str) -> None:
    with pytest.raises(UsageError):
        ImageName.parse(bad)


@pytest.mark.parametrize(
    ("url", "host", "user", "port", "destination"),
    [
        ("ssh://web2", "web2", None, None, "web2"),
        ("ssh://root@web2", "web2", "root", None, "root@web2"),
        ("ssh://deploy@10.0.0.5:2222", "10.0.0.5", "deploy", 2222, "deploy@10.0.0.5"),
        ("ssh://[fe80::1]:22", "[fe80::1]", None, 22, "fe80::1"),
        ("ssh://lf-b/", "lf-b", None, None, "lf-b"),
    ],
)
def test_ssh_targets(
    url: str, host: str, user: str | None, port: int | None, destination: str
) -> None:
    target = SshTarget.parse(url)
    assert (target.host, target.user, target.port, target.destination) == (
        host,
        user,
        port,
        destination,
    )
    assert SshTarget.parse(str(target)) == target


@pytest.mark.parametrize(
    "bad",
    [
        "web2",
        "ssh://",
        "ssh://-oProxyCommand=id",
        "ssh://a b",
        "ssh://host:0",
        "ssh://host:99999",
        "ssh://host:x",
        "ssh://$(id)@host",
        "ssh://us er@host",
        "ssh://-l@host",
        "ssh://host;id",
    ],
)
def test_ssh_targets_rejected(bad: str) -> None:
    with pytest.raises(UsageError):
        SshTarget.parse(bad)


@pytest.mark.parametrize("bad", ["", "-rf", "a b", "x;y", "$(id)", "na/me", ".hidden"])
def test_container_names_rejected(bad: str) -> None:
    with pytest.raises(UsageError):
        validate_container_name(bad)


def test_container_name_accepted() -> None:
    assert validate_container_name("/web_1.a-b") == "web_1.a-b"
